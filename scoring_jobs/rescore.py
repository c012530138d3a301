"""The rescore job: re-score finished sessions through session_service, page by page, resumable and idempotent."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from toefl.session.v1 import scoring_service_pb2

from scoring_jobs.common import JobError, Services, StateError, StateFile, progress, say
from toefl_core.grpc_errors import status_code_name

log = logging.getLogger(__name__)
CHANGED, UNCHANGED, FAILED = "changed", "unchanged", "failed"
# The most sessions ListFinishedSessions sends per page; a page size above it is refused, so a larger batch
# is asked for in pages of this size (the service's pages were always at most this long).
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class RescoreFilters:
    since: datetime | None = None
    blueprint: str = ""

    def to_json(self) -> dict[str, str]:
        return {"since": self.since.isoformat() if self.since else "", "blueprint": self.blueprint}

    def request(self, page_token: str, page_size: int) -> scoring_service_pb2.ListFinishedSessionsRequest:
        request = scoring_service_pb2.ListFinishedSessionsRequest(
            blueprint_version=self.blueprint, page_size=min(page_size, MAX_PAGE_SIZE), page_token=page_token
        )
        if self.since is not None:
            stamp = Timestamp()
            stamp.FromDatetime(self.since)
            request.finished_after.CopyFrom(stamp)
        return request


@dataclass
class RescoreSummary:
    run_id: str
    dry_run: bool
    seen: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0

    def count(self, outcome: str) -> None:
        self.seen += 1
        if outcome == CHANGED:
            self.changed += 1
        elif outcome == UNCHANGED:
            self.unchanged += 1
        else:
            self.failed += 1

    def describe(self) -> str:
        head = "rescore (dry run, nothing written)" if self.dry_run else "rescore"
        changed = "would change" if self.dry_run else "changed"
        return (
            f"{head} run {self.run_id}: {self.seen} sessions seen, {self.changed} {changed}, "
            f"{self.unchanged} unchanged, {self.failed} failed"
        )


def new_run_id() -> str:
    return f"rescore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def request_id_for(run_id: str, session_id: str) -> str:
    """One request id per session and run: a retry, or a resumed run, re-sends it and the service acts once."""
    return f"{run_id}/{session_id}"


# BatchRescoreSessions takes at most this many sessions per call; a larger page is sent in parts.
BATCH_LIMIT = 500


def report(session_id: str, entry: scoring_service_pb2.BatchRescoreSessionsEntry, *, dry_run: bool) -> str:
    """The outcome for one session; what changed (or why it failed) goes to the report as it happens."""
    if entry.HasField("error"):
        # This session cannot be rescored; the others can, and a new run tries it again.
        say(f"{session_id}: failed: {status_code_name(entry.error)} {entry.error.message}".rstrip())
        return FAILED
    if not entry.result.changed:
        return UNCHANGED
    verb = "would change" if dry_run else "changed"
    say(f"{session_id}: {verb}: " + ("; ".join(entry.result.changes) or "new score version"))
    return CHANGED


async def rescore_batch(services: Services, session_ids: list[str], *, run_id: str, dry_run: bool) -> list[str]:
    """The outcome of each session, in order, from one BatchRescoreSessions call (retried whole when the service
    is unavailable: the request ids make a retry act once)."""
    request = scoring_service_pb2.BatchRescoreSessionsRequest(
        requests=[
            scoring_service_pb2.RescoreSessionRequest(
                session_id=session_id,
                # A dry run leaves no trace, not even a remembered request id.
                request_id="" if dry_run else request_id_for(run_id, session_id),
                dry_run=dry_run,
            )
            for session_id in session_ids
        ]
    )

    async def attempt(
        metadata: tuple[tuple[str, str], ...], seconds: float
    ) -> scoring_service_pb2.BatchRescoreSessionsResponse:
        reply: scoring_service_pb2.BatchRescoreSessionsResponse = await services.scoring.BatchRescoreSessions(
            request, metadata=metadata, timeout=seconds
        )
        return reply

    what = f"BatchRescoreSessions({len(session_ids)} sessions from {session_ids[0]})"
    try:
        reply = await services.call("session_service", what, attempt)
    except grpc.aio.AioRpcError as error:
        # The service refused the whole call (e.g. item_service refused the items): none of these sessions was
        # rescored, and a new run tries them again.
        for session_id in session_ids:
            say(f"{session_id}: failed: {error.code().name} {error.details() or ''}".rstrip())
        return [FAILED] * len(session_ids)
    if [entry.session_id for entry in reply.entries] != session_ids:
        raise JobError(f"session_service answered {what} with entries that do not match the sessions sent")
    return [
        report(session_id, entry, dry_run=dry_run)
        for session_id, entry in zip(session_ids, reply.entries, strict=True)
    ]


async def list_page(
    services: Services, filters: RescoreFilters, page_token: str, page_size: int
) -> scoring_service_pb2.ListFinishedSessionsResponse:
    request = filters.request(page_token, page_size)

    async def attempt(
        metadata: tuple[tuple[str, str], ...], seconds: float
    ) -> scoring_service_pb2.ListFinishedSessionsResponse:
        reply: scoring_service_pb2.ListFinishedSessionsResponse = await services.scoring.ListFinishedSessions(
            request, metadata=metadata, timeout=seconds
        )
        return reply

    try:
        return await services.call("session_service", "ListFinishedSessions", attempt)
    except grpc.aio.AioRpcError as error:
        raise JobError(
            f"session_service refused ListFinishedSessions: {error.code().name} {error.details()}"
        ) from error


async def rescore_page(
    services: Services,
    session_ids: list[str],
    *,
    summary: RescoreSummary,
    done: dict[str, str],
    on_done: Callable[[int], object],
) -> None:
    """Rescore the page's sessions not done yet in one BatchRescoreSessions call (or one per BATCH_LIMIT),
    recording each outcome in `done`."""
    todo = [session_id for session_id in session_ids if session_id not in done]
    for start in range(0, len(todo), BATCH_LIMIT):
        part = todo[start : start + BATCH_LIMIT]
        outcomes = await rescore_batch(services, part, run_id=summary.run_id, dry_run=summary.dry_run)
        for session_id, outcome in zip(part, outcomes, strict=True):
            done[session_id] = outcome
            summary.count(outcome)
        on_done(len(part))


async def run_rescore(
    services: Services, *, filters: RescoreFilters, batch_size: int, dry_run: bool, state_file: StateFile
) -> RescoreSummary:
    """Walk every page of finished sessions; a run interrupted for any reason saves where it was.

    A dry run neither reads nor writes the state file: it reports what a run would change, from the start.
    """
    state = None if dry_run else state_file.load()
    page_token = ""
    done: dict[str, str] = {}
    if state is not None and not state.get("completed"):
        if state.get("filters") != filters.to_json():
            raise StateError(
                f"--state-file {state_file.path} holds an interrupted run with other filters "
                f"({state.get('filters')}); resume it with those, or name another --state-file"
            )
        try:
            summary = RescoreSummary(**state["summary"])
            page_token, done = str(state["page_token"]), dict(state["done"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"--state-file {state_file.path} is damaged ({exc!r}); name another file") from exc
        log.info("resuming run %s: %d sessions done so far", summary.run_id, summary.seen)
    else:
        summary = RescoreSummary(run_id=new_run_id(), dry_run=dry_run)

    def checkpoint(*, completed: bool = False) -> None:
        if not dry_run:
            state_file.save(
                {
                    "filters": filters.to_json(),
                    "summary": asdict(summary),
                    "page_token": page_token,
                    "done": done,
                    "completed": completed,
                }
            )

    checkpoint()
    with progress("rescoring", unit="session") as bar:
        bar.update(summary.seen)
        try:
            while True:
                # A page is a batch (the service may send fewer): its sessions are rescored in one call.
                page = await list_page(services, filters, page_token, batch_size)
                await rescore_page(
                    services, list(page.session_ids), summary=summary, done=done, on_done=bar.update
                )
                if not page.next_page_token:
                    break
                page_token, done = page.next_page_token, {}
                checkpoint()
        except BaseException:
            checkpoint()
            raise
    checkpoint(completed=True)
    return summary


def default_state_file() -> Path:
    return Path(".scoring-jobs") / "rescore.json"
