"""ScoringService: score reports, rating tasks and ratings, rater statistics, rosters, analytics, scoring jobs."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import grpc
from toefl.item.v1 import item_pb2
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import scoring_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb

from session_service import accounts, writer
from session_service.access import JOB_ROLES, MAX_REQUEST_ID, RATER_ROLES, AccessPolicy, check_session_id
from session_service.blueprint import load_blueprint
from session_service.config import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from session_service.convert import (
    rating_result,
    rating_task_proto,
    rescore_result,
    task_type_summaries,
    version_proto,
)
from session_service.domain.modules import now_ms
from session_service.domain.scores import (
    RescoreInputs,
    RescorePlan,
    plan_rescore,
)
from session_service.item_client import ItemClient, call_budget
from session_service.scoring import SessionScorer, response_records
from session_service.section_scoring import PendingScores
from session_service.storage import accounts as accounts_store
from session_service.storage import reports, scores, sessions
from session_service.storage.audit import AuditRecord
from session_service.workers import Workers
from toefl_core import paging
from toefl_core.auth import Principal, Role
from toefl_core.errors import DomainError, InvalidArgument, NotFound
from toefl_core.grpc_errors import status_proto
from toefl_core.rating import RUBRIC_MAX, RatingRecord, rater_statistics

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]
MAX_COMMENT = 2000
MAX_DIMENSIONS = 12
MAX_DIMENSION_NAME = 60
MAX_ANALYTICS_DAYS = 366
DEFAULT_ANALYTICS_DAYS = 30
EXPORT_SESSIONS_PER_READ = 100
# BatchRescoreSessions takes at most this many sessions: one write transaction holds the writer this long.
MAX_BATCH_RESCORE = 500


def _response_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidArgument("response_id must be the id of a rating task", field="response_id")
    return int(raw)


def _date(raw: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidArgument(f"{field} must be a date YYYY-MM-DD, not {raw!r}", field=field) from exc


def _day_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


class ScoringServicer(scoring_service_pb2_grpc.ScoringServiceServicer):
    def __init__(
        self,
        *,
        access: AccessPolicy,
        pages: paging.PageTokens,
        workers: Workers,
        items: ItemClient,
        scorer: SessionScorer,
        pending: PendingScores,
    ) -> None:
        self._access = access
        self._pages = pages
        self._workers = workers
        self._items = items
        self._scorer = scorer
        self._pending = pending

    def _principal(self, context: Context, roles: Sequence[Role] | None = None, action: str = "") -> Principal:
        return self._access.principal(context.invocation_metadata(), roles, action)

    async def _reported_session(self, context: Context, session_id: str) -> tuple[sessions.SessionRecord, bool]:
        """The session after checking the caller may read its scores (its student, their teachers, admins), and
        whether the caller sees the detail of a score (AccessPolicy.sees_score_detail)."""
        principal = self._principal(context)
        check_session_id(session_id)
        record = await self._workers.read(sessions.get_session, session_id=session_id)
        if record is None:
            raise NotFound(f"session {session_id} not found")
        await self._access.may_read_student(principal, record.student_id, what="scores", services=False)
        # A section this process closed and has not scored yet is scored now: a report never lags its own advance.
        await self._pending.settled(record.session_id)
        return record, self._access.sees_score_detail(principal)

    # ---- reports

    async def GetScoreReport(self, request: spb.GetScoreReportRequest, context: Context) -> spb.ScoreReport:
        record, detail = await self._reported_session(context, request.session_id)
        latest = await self._workers.read(scores.latest_version, session_id=record.session_id)
        section = item_pb2.Section.Value(record.section) if record.section else None
        expected = [s.section for s in load_blueprint(record.blueprint_version).sections_for(section)]
        scored = {item_pb2.Section.Value(f.section) for f in latest.sections} if latest is not None else set()
        report = spb.ScoreReport(
            session_id=record.session_id,
            student_id=record.student_id,
            pending_sections=[s for s in expected if s not in scored],
            voided=record.voided_ms is not None,
        )
        # A voided session's scores are withheld from its student; staff see them, marked voided.
        if latest is not None and (detail or record.voided_ms is None):
            report.score.CopyFrom(version_proto(latest, detail=detail))
            if detail:
                # Points per task type: with one answered item, whether that answer was the key.
                report.task_types.extend(task_type_summaries(latest))
        if detail:
            report.module_estimates.extend(
                spb.ModuleEstimate(
                    module_id=m.module_id,
                    sequence=m.sequence,
                    section=item_pb2.Section.Value(m.section),
                    stage=m.stage,
                    theta=m.theta,
                    standard_error=m.theta_se or 0.0,
                )
                for m in record.modules
                if m.theta is not None
            )
        return report

    async def ListScoreVersions(
        self, request: spb.ListScoreVersionsRequest, context: Context
    ) -> spb.ListScoreVersionsResponse:
        record, detail = await self._reported_session(context, request.session_id)
        if record.voided_ms is not None and not detail:
            # Withheld from the student, as in their report.
            return spb.ListScoreVersionsResponse()
        versions = await self._workers.read(scores.list_versions, session_id=record.session_id)
        return spb.ListScoreVersionsResponse(versions=[version_proto(v, detail=detail) for v in versions])

    async def GetClassRoster(self, request: spb.GetClassRosterRequest, context: Context) -> spb.ClassRoster:
        principal = self._principal(context, (Role.TEACHER, Role.ADMIN), "reading a class roster")
        if not request.class_id:
            raise InvalidArgument("class_id is required", field="class_id")
        found = await self._workers.read(accounts_store.class_teacher, class_id=request.class_id)
        if found is None:
            raise NotFound(f"class {request.class_id} not found")
        await self._pending.settled_all()
        teacher_id, name = found
        AccessPolicy.may_read_class(principal, teacher_id)
        rows = await self._workers.read(reports.class_roster, class_id=request.class_id)
        roster = spb.ClassRoster(class_id=request.class_id, name=name)
        for row in rows:
            entry = spb.RosterEntry(
                student_id=row.student_id,
                display_name=row.display_name,
                sessions_in_progress=row.in_progress,
                sessions_finished=row.finished,
            )
            if row.latest is not None:
                entry.latest_score.CopyFrom(version_proto(row.latest))
            roster.students.append(entry)
        return roster

    async def GetAnalytics(self, request: spb.GetAnalyticsRequest, context: Context) -> spb.Analytics:
        self._principal(context, (Role.ADMIN,), "analytics")
        await self._pending.settled_all()
        today = dt.datetime.now(dt.UTC).date()
        end = _date(request.end_date, "end_date") if request.end_date else today
        start = (
            _date(request.start_date, "start_date")
            if request.start_date
            else end - dt.timedelta(days=DEFAULT_ANALYTICS_DAYS - 1)
        )
        if start > end:
            raise InvalidArgument("start_date is after end_date", field="start_date")
        if (end - start).days >= MAX_ANALYTICS_DAYS:
            raise InvalidArgument(f"a range spans at most {MAX_ANALYTICS_DAYS} days", field="start_date")
        data = await self._workers.read(
            reports.analytics, start_ms=_day_ms(start), end_ms=_day_ms(end + dt.timedelta(days=1))
        )
        reply = spb.Analytics()
        epoch = dt.date(1970, 1, 1)
        day = start
        while day <= end:
            number = (day - epoch).days
            reply.days.append(
                spb.DailyCount(
                    date=day.isoformat(),
                    sessions_started=data.started.get(number, 0),
                    sessions_finished=data.finished.get(number, 0),
                )
            )
            day += dt.timedelta(days=1)
        by_section: dict[int, spb.SectionDistribution] = {}
        for (section, band), count in sorted(data.bands.items()):
            value = item_pb2.Section.Value(section)
            distribution = by_section.setdefault(value, spb.SectionDistribution(section=value))
            distribution.bands.append(spb.BandCount(band=band, count=count))
        reply.band_distributions.extend(by_section[k] for k in sorted(by_section))
        for task_type, (responses, total_ms) in sorted(
            data.task_times.items(), key=lambda kv: item_pb2.TaskType.Value(kv[0])
        ):
            reply.task_times.append(
                spb.TaskTime(
                    task_type=item_pb2.TaskType.Value(task_type),
                    mean_seconds=total_ms / responses / 1000 if responses else 0.0,
                    responses=responses,
                )
            )
        routing: dict[int, spb.RoutingRate] = {}
        for (section, stage), count in data.routing.items():
            value = item_pb2.Section.Value(section)
            rate = routing.setdefault(value, spb.RoutingRate(section=value))
            if stage == pb.ModuleStage.Name(pb.MODULE_STAGE_LOWER):
                rate.routed_lower += count
            elif stage == pb.ModuleStage.Name(pb.MODULE_STAGE_UPPER):
                rate.routed_upper += count
        reply.routing.extend(r for k, r in sorted(routing.items()) if r.routed_lower or r.routed_upper)
        return reply

    # ---- ratings

    async def ListRatingTasks(
        self, request: spb.ListRatingTasksRequest, context: Context
    ) -> spb.ListRatingTasksResponse:
        principal = self._principal(context, RATER_ROLES, "rating")
        size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        query = ("ListRatingTasks", principal.subject, request.task_type)
        position = self._pages.decode(request.page_token, query=query, shape=(int, int))
        after = (int(position[0]), int(position[1])) if position else None
        task_type = item_pb2.TaskType.Name(request.task_type) if request.task_type else None
        if request.task_type and request.task_type not in item_pb2.TaskType.values():
            raise InvalidArgument("task_type is not a task type", field="task_type")
        # The tasks of sections closed but not yet scored are made now: a rater never misses a response written.
        await self._pending.settled_all()
        rows = await self._workers.read(
            scores.list_rating_tasks, rater_id=principal.subject, task_type=task_type, after=after, limit=size + 1
        )
        page, next_token = self._pages.page(
            rows, size, query=query, position=lambda r: [r.submit_ms, r.response_id]
        )
        return spb.ListRatingTasksResponse(tasks=[rating_task_proto(r) for r in page], next_page_token=next_token)

    async def SubmitRating(self, request: spb.SubmitRatingRequest, context: Context) -> spb.RatingResult:
        principal = self._principal(context, RATER_ROLES, "rating")
        response_id = _response_id(request.response_id)
        if not 0 <= request.score <= RUBRIC_MAX:
            raise InvalidArgument(f"score must lie in 0..{RUBRIC_MAX}", field="score")
        if len(request.dimension_scores) > MAX_DIMENSIONS:
            raise InvalidArgument(f"at most {MAX_DIMENSIONS} dimension scores", field="dimension_scores")
        for name, value in request.dimension_scores.items():
            if not name or len(name) > MAX_DIMENSION_NAME:
                raise InvalidArgument("a dimension needs a name of 1-60 characters", field="dimension_scores")
            if not 0 <= value <= RUBRIC_MAX:
                raise InvalidArgument(f"dimension {name!r} must lie in 0..{RUBRIC_MAX}", field="dimension_scores")
        if len(request.comment) > MAX_COMMENT:
            raise InvalidArgument(f"comment is longer than {MAX_COMMENT} characters", field="comment")
        if len(request.request_id) > MAX_REQUEST_ID:
            raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID} characters", field="request_id")
        outcome = await self._workers.write(
            writer.rate,
            response_id=response_id,
            rater_id=principal.subject,
            score=request.score,
            dimension_scores_json=json.dumps(dict(request.dimension_scores), sort_keys=True),
            comment=request.comment,
            request_id=request.request_id or None,
            rating_id=accounts.new_id("rtg"),
            scorer=self._scorer,
            now_ms=now_ms(),
        )
        return rating_result(outcome)

    async def ListRaterStatistics(
        self, request: spb.ListRaterStatisticsRequest, context: Context
    ) -> spb.ListRaterStatisticsResponse:
        principal = self._principal(context, RATER_ROLES, "rater statistics")
        rater_id = self._access.may_read_rater_statistics(principal, request.rater_id)
        pairs = await self._workers.read(reports.rating_pairs)
        records = [RatingRecord(str(p.response_id), p.rater_id, p.score) for p in pairs]
        statistics = await self._workers.cpu(rater_statistics, records)
        reply = spb.ListRaterStatisticsResponse()
        for entry in statistics:
            if rater_id and entry.rater_id != rater_id:
                continue
            stats = spb.RaterStatistics(
                rater_id=entry.rater_id,
                double_rated=entry.pairs,
                exact_agreement=entry.exact_agreement,
                adjacent_agreement=entry.adjacent_agreement,
            )
            if entry.quadratic_weighted_kappa is not None:
                stats.quadratic_weighted_kappa = entry.quadratic_weighted_kappa
            reply.raters.append(stats)
        return reply

    # ---- scoring jobs

    async def RescoreSession(self, request: spb.RescoreSessionRequest, context: Context) -> spb.RescoreResult:
        principal = self._principal(context, JOB_ROLES, "rescoring")
        outcome = (await self._rescore([request], context, principal))[0]
        if isinstance(outcome, DomainError):
            raise outcome
        return spb.RescoreResult.FromString(outcome)

    async def BatchRescoreSessions(
        self, request: spb.BatchRescoreSessionsRequest, context: Context
    ) -> spb.BatchRescoreSessionsResponse:
        principal = self._principal(context, JOB_ROLES, "rescoring")
        count = len(request.requests)
        if count == 0:
            raise InvalidArgument(
                f"requests is empty; send 1 to {MAX_BATCH_RESCORE} RescoreSessionRequests", field="requests"
            )
        if count > MAX_BATCH_RESCORE:
            raise InvalidArgument(
                f"{count} requests in one call; at most {MAX_BATCH_RESCORE}: split the batch", field="requests"
            )
        outcomes = await self._rescore(request.requests, context, principal)
        failed = sum(isinstance(outcome, DomainError) for outcome in outcomes)
        # One line per call: a scoring job's page, so the log shows how a run went without a line per session.
        log.info("BatchRescoreSessions: %d sessions, %d failed", count, failed)
        reply = spb.BatchRescoreSessionsResponse()
        for one, outcome in zip(request.requests, outcomes, strict=True):
            entry = reply.entries.add(session_id=one.session_id)
            if isinstance(outcome, DomainError):
                entry.error.CopyFrom(status_proto(outcome))
            else:
                entry.result.MergeFromString(outcome)
        return reply

    async def _rescore(
        self, requests: Sequence[spb.RescoreSessionRequest], context: Context, principal: Principal
    ) -> list[bytes | DomainError]:
        """The outcome of each request, in order: an encoded RescoreResult, or the error for that session alone.

        For the whole batch: one read of request-id replays, states and seen item ids; one fetch of the current
        items, during one read of the scoring inputs; the plans on a reader thread; one write transaction.
        """
        # A rescore compares with the session's newest version: its first scores are written before.
        await self._pending.settled_all()
        outcomes: list[bytes | DomainError | None] = [None] * len(requests)
        unique: dict[str, spb.RescoreSessionRequest] = {}
        for position, one in enumerate(requests):
            if not one.session_id:
                outcomes[position] = InvalidArgument("session_id is required", field="session_id")
            elif len(one.request_id) > MAX_REQUEST_ID:
                outcomes[position] = InvalidArgument(
                    f"request_id is longer than {MAX_REQUEST_ID} characters", field="request_id"
                )
            else:
                first = unique.setdefault(one.session_id, one)
                if (first.request_id, first.dry_run) != (one.request_id, one.dry_run):
                    # Two different rescores of one session in one call have no order to be applied in.
                    raise InvalidArgument(
                        f"session {one.session_id} is named twice with a different request_id or dry_run",
                        field="requests",
                    )
        # A dry run leaves no trace, not even a remembered request id.
        request_ids = {sid: None if r.dry_run else (r.request_id or None) for sid, r in unique.items()}
        done: dict[str, bytes | DomainError] = {}
        if unique:
            targets = await self._workers.read(scores.rescore_targets, requests=list(request_ids.items()))
            todo: list[str] = []
            for session_id, target in targets.by_session.items():
                if target.replay is not None:
                    done[session_id] = target.replay
                elif target.error is not None:
                    done[session_id] = target.error
                else:
                    todo.append(session_id)
            if todo:
                item_ids = targets.item_ids
                budget = call_budget(context.time_remaining())
                # The current items come over the network while a reader reads what the scores are computed from.
                fetch = asyncio.create_task(self._items.current_items(item_ids, budget_seconds=budget))
                try:
                    found = await self._workers.read(scores.read_rescore_inputs, session_ids=todo)
                except BaseException:
                    fetch.cancel()
                    raise
                current_items = {item.item_id: item.SerializeToString() for item in await fetch}
                await self._plan_and_apply(found, unique, request_ids, current_items, done, principal)
        return [
            outcome if outcome is not None else done[one.session_id]
            for one, outcome in zip(requests, outcomes, strict=True)
        ]

    def _plans(
        self, found: Mapping[str, RescoreInputs | DomainError], current_items: Mapping[str, bytes]
    ) -> dict[str, RescorePlan | DomainError]:
        planned_ms = now_ms()
        return {
            session_id: inputs
            if isinstance(inputs, DomainError)
            else plan_rescore(
                inputs, current_items=current_items, scorer=self._scorer, encode=rescore_result, now_ms=planned_ms
            )
            for session_id, inputs in found.items()
        }

    async def _plan_and_apply(
        self,
        found: Mapping[str, RescoreInputs | DomainError],
        unique: Mapping[str, spb.RescoreSessionRequest],
        request_ids: Mapping[str, str | None],
        current_items: Mapping[str, bytes],
        done: dict[str, bytes | DomainError],
        principal: Principal,
    ) -> None:
        while True:
            # One CPU task for the whole batch: split across the readers, the threads would only take turns
            # at the GIL (and the SQLite reads of the others would wait for it at every row).
            plans = await self._workers.cpu(self._plans, found, current_items)
            writes: list[scores.RescoreWrite] = []
            for session_id, plan in plans.items():
                if isinstance(plan, DomainError):
                    done[session_id] = plan
                elif unique[session_id].dry_run:
                    done[session_id] = plan.result
                else:
                    entry = _rescore_entry(principal, session_id, plan, request_ids[session_id])
                    writes.append(scores.RescoreWrite(session_id, plan, request_ids[session_id], entry))
            if not writes:
                return
            applied = await self._workers.write(scores.apply_rescores, writes=writes, now_ms=now_ms())
            moved: list[str] = []
            for write, outcome in zip(writes, applied, strict=True):
                if outcome is None:
                    # Another writer (a rating, another rescore) added a score version meanwhile: compute again.
                    moved.append(write.session_id)
                else:
                    done[write.session_id] = outcome
            if not moved:
                return
            found = await self._workers.read(scores.read_rescore_inputs, session_ids=moved)

    async def ListFinishedSessions(
        self, request: spb.ListFinishedSessionsRequest, context: Context
    ) -> spb.ListFinishedSessionsResponse:
        self._principal(context, JOB_ROLES, "listing finished sessions")
        await self._pending.settled_all()
        size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        finished_after_ms = request.finished_after.ToMilliseconds() if request.HasField("finished_after") else None
        query = ("ListFinishedSessions", finished_after_ms, request.blueprint_version)
        position = self._pages.decode(request.page_token, query=query, shape=(int, str))
        after = (int(position[0]), str(position[1])) if position else None
        rows = await self._workers.read(
            reports.list_finished_sessions,
            finished_after_ms=finished_after_ms,
            blueprint_version=request.blueprint_version or None,
            after=after,
            limit=size + 1,
        )
        page, next_token = self._pages.page(rows, size, query=query, position=lambda r: r)
        return spb.ListFinishedSessionsResponse(session_ids=[sid for _, sid in page], next_page_token=next_token)

    async def ExportResponses(
        self, request: spb.ExportResponsesRequest, context: Context
    ) -> AsyncIterator[spb.ResponseRecord]:
        self._principal(context, JOB_ROLES, "exporting responses")
        await self._pending.settled_all()
        finished_after = request.finished_after.ToMilliseconds() if request.HasField("finished_after") else None
        after: tuple[int, str] | None = None
        while True:
            page = await self._workers.read(
                reports.list_finished_sessions,
                finished_after_ms=finished_after,
                blueprint_version=None,
                after=after,
                limit=EXPORT_SESSIONS_PER_READ,
            )
            if not page:
                return
            after = page[-1]
            exports = await self._workers.read(reports.export_inputs, session_ids=[sid for _, sid in page])
            for export in exports:
                for record in await self._workers.cpu(response_records, export):
                    yield record


def _rescore_entry(
    principal: Principal, session_id: str, plan: RescorePlan, request_id: str | None
) -> AuditRecord | None:
    """An admin's rescore that writes a new score version changes a student's score: a staff action, on record. A
    scoring job's (the service role) is the job's own, told by its log line per call, not one entry per session."""
    if principal.role is not Role.ADMIN or plan.new_version is None:
        return None
    result = spb.RescoreResult.FromString(plan.result)
    return AuditRecord(
        audit_id=accounts.new_id("aud"),
        time_ms=now_ms(),
        actor=principal.subject,
        actor_role=principal.role.value,
        action="rescore_session",
        target_type="session",
        target=session_id,
        student_id=None,
        reason="",
        detail={
            "from_version": plan.base_version,
            "to_version": plan.new_version.version,
            "changes": list(result.changes),
            "request_id": request_id or "",
        },
        # The rescore's own request ids make it idempotent; the log's (target, request id) index is the proctors'.
        request_id=None,
    )
