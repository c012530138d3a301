"""Storage of reports: rosters, analytics, rater agreement, and the finished sessions scoring jobs read (on the
Core connection)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, select, tuple_

from session_service.domain.scores import RatingPair, ScoreVersionRecord, SessionExport
from session_service.domain.states import STAGE_ROUTER, STATE_FINISHED
from session_service.storage.engine import Database
from session_service.storage.models import (
    Enrolment,
    ExamSession,
    Module,
    ModuleItem,
    RatingRow,
    Response,
    ScoreVersion,
    SectionScoreRow,
    User,
)
from session_service.storage.scores import section_inputs_of, version_records


def rating_pairs(db: Database) -> list[RatingPair]:
    """Every regular (not adjudication) rating, for agreement statistics."""
    with db.read_transaction() as conn:
        rows = conn.execute(
            select(RatingRow.response_id, RatingRow.rater_id, RatingRow.score)
            .where(RatingRow.adjudication.is_(False))
            .order_by(RatingRow.response_id, RatingRow.create_ms)
        ).all()
        return [RatingPair(*row) for row in rows]


def list_finished_sessions(
    db: Database,
    *,
    finished_after_ms: int | None,
    blueprint_version: str | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[tuple[int, str]]:
    """(finish_ms, session_id) of finished sessions, oldest first; `after` is the last pair seen."""
    with db.read_transaction() as conn:
        query = select(ExamSession.finish_ms, ExamSession.session_id).where(ExamSession.state == STATE_FINISHED)
        if finished_after_ms is not None:
            query = query.where(ExamSession.finish_ms >= finished_after_ms)
        if blueprint_version is not None:
            query = query.where(ExamSession.blueprint_version == blueprint_version)
        if after is not None:
            finish_ms, session_id = after
            query = query.where(tuple_(ExamSession.finish_ms, ExamSession.session_id) > (finish_ms, session_id))
        rows = conn.execute(query.order_by(ExamSession.finish_ms, ExamSession.session_id).limit(limit)).all()
        return [(int(f or 0), str(i)) for f, i in rows]


def export_inputs(db: Database, *, session_ids: Sequence[str]) -> list[SessionExport]:
    with db.read_transaction() as conn:
        finished_ms = {
            session_id: finish_ms
            for session_id, finish_ms in conn.execute(
                select(ExamSession.session_id, ExamSession.finish_ms).where(
                    ExamSession.session_id.in_(session_ids)
                )
            )
        }
        # Every section of every found session in one batched read, as a rescore batch reads them.
        inputs = section_inputs_of(conn, {sid: None for sid in session_ids if sid in finished_ms})
        return [
            SessionExport(
                session_id=sid,
                finish_ms=finished_ms[sid] or 0,
                sections=tuple(inputs[sid].values()),
            )
            for sid in session_ids
            if sid in finished_ms
        ]


# ---- reports


@dataclass(frozen=True)
class RosterRow:
    student_id: str
    display_name: str
    latest: ScoreVersionRecord | None
    in_progress: int
    finished: int


def class_roster(db: Database, *, class_id: str) -> list[RosterRow]:
    with db.read_transaction() as conn:
        students = conn.execute(
            select(User.user_id, User.display_name)
            .join(Enrolment, Enrolment.student_id == User.user_id)
            .where(Enrolment.class_id == class_id)
            .order_by(User.display_name, User.user_id)
        ).all()
        rows = []
        for student_id, display_name in students:
            counts = dict(
                conn.execute(
                    select(ExamSession.state, func.count())
                    .where(ExamSession.student_id == student_id)
                    .group_by(ExamSession.state)
                ).all()
            )
            latest_row = conn.execute(
                select(ScoreVersion.__table__)
                .join(ExamSession, ExamSession.session_id == ScoreVersion.session_id)
                # A voided session's scores are withheld: the roster shows the latest standing one.
                .where(ExamSession.student_id == student_id, ExamSession.voided_ms.is_(None))
                .order_by(ExamSession.create_ms.desc(), ScoreVersion.version.desc())
                .limit(1)
            ).first()
            rows.append(
                RosterRow(
                    student_id=student_id,
                    display_name=display_name,
                    latest=version_records(conn, [latest_row])[0] if latest_row is not None else None,
                    in_progress=sum(n for state, n in counts.items() if state != STATE_FINISHED),
                    finished=counts.get(STATE_FINISHED, 0),
                )
            )
        return rows


@dataclass(frozen=True)
class AnalyticsData:
    # Days since the epoch (UTC) -> sessions.
    started: Mapping[int, int]
    finished: Mapping[int, int]
    # (section, band) -> sessions, from the latest version of each session.
    bands: Mapping[tuple[str, str], int]
    # task type -> (responses, total elapsed ms).
    task_times: Mapping[str, tuple[int, int]]
    # (section, stage) -> modules.
    routing: Mapping[tuple[str, str], int]


DAY_MS = 86_400_000


def analytics(db: Database, *, start_ms: int, end_ms: int) -> AnalyticsData:
    """Over the sessions created in [start_ms, end_ms) (finishes counted by their own time); days are UTC."""
    with db.read_transaction() as conn:
        started_day = ExamSession.create_ms // DAY_MS
        finished_day = ExamSession.finish_ms // DAY_MS
        started: dict[int, int] = {
            int(day): int(n)
            for day, n in conn.execute(
                select(started_day, func.count())
                .where(ExamSession.create_ms >= start_ms, ExamSession.create_ms < end_ms)
                .group_by(started_day)
            )
        }
        finished: dict[int, int] = {
            int(day or 0): int(n)
            for day, n in conn.execute(
                select(finished_day, func.count())
                .where(ExamSession.finish_ms >= start_ms, ExamSession.finish_ms < end_ms)
                .group_by(finished_day)
            )
        }
        # Bands, task times and routing leave voided sessions out: their scores are withheld.
        in_range = select(ExamSession.session_id).where(
            ExamSession.create_ms >= start_ms, ExamSession.create_ms < end_ms, ExamSession.voided_ms.is_(None)
        )
        newest = (
            select(ScoreVersion.session_id, func.max(ScoreVersion.version).label("version"))
            .where(ScoreVersion.session_id.in_(in_range))
            .group_by(ScoreVersion.session_id)
            .subquery()
        )
        bands = {
            (section, band): n
            for section, band, n in conn.execute(
                select(SectionScoreRow.section, SectionScoreRow.band, func.count())
                .join(ScoreVersion, ScoreVersion.score_id == SectionScoreRow.score_id)
                .join(
                    newest,
                    and_(ScoreVersion.session_id == newest.c.session_id, ScoreVersion.version == newest.c.version),
                )
                .group_by(SectionScoreRow.section, SectionScoreRow.band)
            )
        }
        latest = (
            select(Response.module_id, Response.item_id, func.max(Response.revision).label("revision"))
            .where(Response.session_id.in_(in_range))
            .group_by(Response.module_id, Response.item_id)
            .subquery()
        )
        task_times = {
            task_type: (int(n), int(total or 0))
            for task_type, n, total in conn.execute(
                select(ModuleItem.task_type, func.count(), func.sum(Response.elapsed_ms))
                .join(
                    latest,
                    and_(
                        Response.module_id == latest.c.module_id,
                        Response.item_id == latest.c.item_id,
                        Response.revision == latest.c.revision,
                    ),
                )
                .join(
                    ModuleItem,
                    and_(ModuleItem.module_id == Response.module_id, ModuleItem.item_id == Response.item_id),
                )
                .group_by(ModuleItem.task_type)
            )
        }
        routing = {
            (section, stage): n
            for section, stage, n in conn.execute(
                select(Module.section, Module.stage, func.count())
                .where(Module.session_id.in_(in_range), Module.stage != STAGE_ROUTER)
                .group_by(Module.section, Module.stage)
            )
        }
        return AnalyticsData(
            started=started,
            finished=finished,
            bands=bands,
            task_times=task_times,
            routing=routing,
        )
