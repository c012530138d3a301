"""The item-statistics job: classical item figures from exported responses, written to the item bank."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import grpc
from toefl.item.v1 import item_pb2, item_service_pb2
from toefl.session.v1 import scoring_service_pb2

from scoring_jobs.common import JobError, Services, StateError, StateFile, progress, say

log = logging.getLogger(__name__)
JOB = "item-stats"
# Bumped whenever the formulas change, so that new figures never reuse an old run id.
FORMULA_VERSION = 1


class Response(NamedTuple):
    """One administration of an item, as ExportResponses reports it."""

    session_id: str
    section: int
    item_id: str
    # -1: not (yet) scored; 0 for an unanswered item.
    score: int
    max_score: int
    answered: bool
    elapsed_ms: int


@dataclass(frozen=True)
class ItemFigures:
    item_id: str
    administrations: int
    p_value: float
    # None when undefined: fewer than two scored administrations, or no spread in the item or rest scores.
    point_biserial: float | None
    exposure_rate: float
    mean_response_seconds: float

    def to_proto(self) -> item_pb2.ItemStatistics:
        statistics = item_pb2.ItemStatistics(
            item_id=self.item_id,
            administrations=self.administrations,
            p_value=self.p_value,
            exposure_rate=self.exposure_rate,
            mean_response_seconds=self.mean_response_seconds,
        )
        if self.point_biserial is not None:
            statistics.point_biserial = self.point_biserial
        return statistics


def from_record(record: scoring_service_pb2.ResponseRecord) -> Response:
    return Response(
        session_id=record.session_id,
        section=record.section,
        item_id=record.item_id,
        score=record.score,
        max_score=record.max_score,
        answered=record.answered,
        elapsed_ms=record.elapsed_ms,
    )


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r, or None when it is undefined (fewer than two pairs, or a constant series)."""
    n = len(xs)
    if n < 2:
        return None
    mean_x, mean_y = math.fsum(xs) / n, math.fsum(ys) / n
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    syy = math.fsum((y - mean_y) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    # Rounding can push |r| a hair past 1 for perfectly related series.
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def compute_statistics(responses: Iterable[Response]) -> tuple[list[ItemFigures], list[str]]:
    """Figures per item (sorted by item id), and the items left out because none of their responses is scored.

    - administrations: sessions in which the item was given (a repeated record of one session counts once);
    - p-value: points over maximum points across the scored administrations (unanswered counts as 0);
    - point-biserial: correlation of the item's score with the rest score, the points of the other scored items
      of the same session and section;
    - exposure rate: administrations over the sessions that took the item's section;
    - mean response time: over the answered administrations, in seconds (0 when none was answered).
    """
    # Sorted input and keyed records make the result independent of the order the export arrives in.
    by_key = {(r.session_id, r.item_id): r for r in sorted(responses)}
    section_sessions: dict[int, set[str]] = defaultdict(set)
    raw_scores: dict[tuple[str, int], int] = defaultdict(int)
    per_item: dict[str, list[Response]] = defaultdict(list)
    for response in by_key.values():
        section_sessions[response.section].add(response.session_id)
        per_item[response.item_id].append(response)
        if _scored(response):
            raw_scores[(response.session_id, response.section)] += response.score
    figures: list[ItemFigures] = []
    unscored: list[str] = []
    for item_id in sorted(per_item):
        given = per_item[item_id]
        scored = [r for r in given if _scored(r)]
        if not scored:
            unscored.append(item_id)
            continue
        answered = [r.elapsed_ms / 1000 for r in given if r.answered]
        section = given[0].section
        figures.append(
            ItemFigures(
                item_id=item_id,
                administrations=len(given),
                p_value=sum(r.score for r in scored) / sum(r.max_score for r in scored),
                point_biserial=correlation(
                    [float(r.score) for r in scored],
                    [float(raw_scores[(r.session_id, r.section)] - r.score) for r in scored],
                ),
                exposure_rate=len(given) / len(section_sessions[section]),
                mean_response_seconds=math.fsum(answered) / len(answered) if answered else 0.0,
            )
        )
    return figures, unscored


def _scored(response: Response) -> bool:
    return response.score >= 0 and response.max_score > 0


def run_id_of(figures: Sequence[ItemFigures]) -> str:
    """Same figures, same run id: a re-run or a resumed run writes under the run that computed them first."""
    canonical = json.dumps([FORMULA_VERSION, [asdict(f) for f in figures]], sort_keys=True).encode()
    return "stats-" + hashlib.sha256(canonical).hexdigest()[:16]


async def export_responses(services: Services) -> list[Response]:
    """Every exported response; the stream is read again from the start if the service drops it."""

    async def attempt(metadata: tuple[tuple[str, str], ...], _seconds: float) -> list[Response]:
        responses: list[Response] = []
        with progress("reading responses", unit="response") as bar:
            # No deadline: the stream lasts as long as the export does; a dropped connection still ends it at once.
            call = services.scoring.ExportResponses(
                scoring_service_pb2.ExportResponsesRequest(), metadata=metadata
            )
            async for record in call:
                responses.append(from_record(record))
                bar.update()
        return responses

    return await services.call("session_service", "ExportResponses", attempt)


@dataclass
class StatsSummary:
    run_id: str
    responses: int
    sessions: int
    items: int
    without_scored_response: int
    dry_run: bool
    written: int = 0
    unchanged: int = 0

    def describe(self) -> str:
        head = "item statistics (dry run, nothing written)" if self.dry_run else "item statistics"
        counts = (
            f"{self.responses} responses from {self.sessions} sessions; {self.items} items"
            f" ({self.without_scored_response} more without a scored response)"
        )
        if self.dry_run:
            return f"{head} run {self.run_id}: {counts}"
        return f"{head} run {self.run_id}: {counts}; written {self.written}, unchanged {self.unchanged}"


def print_figures(figures: Sequence[ItemFigures]) -> None:
    say("item_id\tadministrations\tp_value\tpoint_biserial\texposure_rate\tmean_response_seconds")
    for f in figures:
        pbis = "-" if f.point_biserial is None else f"{f.point_biserial:.4f}"
        say(
            f"{f.item_id}\t{f.administrations}\t{f.p_value:.4f}\t{pbis}\t{f.exposure_rate:.4f}\t"
            f"{f.mean_response_seconds:.1f}"
        )


async def write_batch(
    services: Services, batch: Sequence[ItemFigures], run_id: str
) -> item_service_pb2.WriteItemStatisticsResponse:
    request = item_service_pb2.WriteItemStatisticsRequest(statistics=[f.to_proto() for f in batch], run_id=run_id)

    async def attempt(
        metadata: tuple[tuple[str, str], ...], seconds: float
    ) -> item_service_pb2.WriteItemStatisticsResponse:
        reply: item_service_pb2.WriteItemStatisticsResponse = await services.items.WriteItemStatistics(
            request, metadata=metadata, timeout=seconds
        )
        return reply

    try:
        return await services.call("item_service", "WriteItemStatistics", attempt)
    except grpc.aio.AioRpcError as error:
        raise JobError(
            f"item_service refused a batch of statistics: {error.code().name} {error.details()}"
        ) from error


async def run_item_stats(
    services: Services, *, batch_size: int, dry_run: bool, state_file: StateFile
) -> StatsSummary:
    """Export, compute, write in batches; an interrupted run with the same figures resumes where it stopped."""
    responses = await export_responses(services)
    figures, unscored = compute_statistics(responses)
    summary = StatsSummary(
        run_id=run_id_of(figures),
        responses=len(responses),
        sessions=len({r.session_id for r in responses}),
        items=len(figures),
        without_scored_response=len(unscored),
        dry_run=dry_run,
    )
    if dry_run:
        print_figures(figures)
        return summary
    state = state_file.load()
    done = 0
    if state is not None and state.get("run_id") == summary.run_id and not state.get("completed"):
        # Same figures as the interrupted run, in the same order (by item id): the first ones are in the bank.
        try:
            done = min(int(state["items_done"]), len(figures))
            summary.written, summary.unchanged = int(state["written"]), int(state["unchanged"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"--state-file {state_file.path} is damaged ({exc!r}); name another file") from exc
        log.info("resuming run %s after %d of %d items", summary.run_id, done, len(figures))

    def checkpoint(items_done: int, *, completed: bool = False) -> None:
        state_file.save({**asdict(summary), "items_done": items_done, "completed": completed})

    checkpoint(done)
    with progress("writing statistics", unit="item", total=len(figures)) as bar:
        bar.update(done)
        for start in range(done, len(figures), batch_size):
            batch = figures[start : start + batch_size]
            reply = await write_batch(services, batch, summary.run_id)
            summary.written += reply.written
            summary.unchanged += reply.unchanged
            checkpoint(start + len(batch))
            bar.update(len(batch))
    checkpoint(len(figures), completed=True)
    return summary


def default_state_file() -> Path:
    return Path(".scoring-jobs") / "item-stats.json"
