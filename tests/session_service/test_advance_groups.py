"""Advances written in groups (writer.advance_group): one transaction for a room's module changes, where a refused
advance leaves the others and a broken one fails only itself; the sections they and finishes close are scored
later (writer.score_sessions); SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

from sqlalchemy import event, func, insert, select
from toefl.item.v1 import item_pb2

from session_service import writer
from session_service.domain.modules import Closing
from session_service.domain.states import (
    SCOPE_FULL_TEST,
    STAGE_ROUTER,
    STAGE_UPPER,
    STATE_IN_PROGRESS,
    STATUS_CLOSED,
    STATUS_OPEN,
)
from session_service.scoring import SessionScorer
from session_service.storage import content, scores, sessions
from session_service.storage.engine import Conflict, Database
from session_service.storage.models import AdvanceRequest, ExamSession, Module, Response, ScoreVersion, User
from session_service.storage.sessions import NewModule, PinnedItem, RouterScore
from toefl_core.errors import Aborted, FailedPrecondition
from toefl_core.scoring_rules import load_cut_table

T0 = 1_780_000_000_000
SCORER = SessionScorer(cut_table=load_cut_table(), second_rating_share=0.0, second_rating_salt="test")


def seat(db: Database, n: int) -> None:
    """Students 0..n-1, each in a session whose Reading router module mod-<i>-1 is open."""
    with db.unit_of_work() as tx:
        for i in range(n):
            tx.execute(
                insert(User).values(
                    user_id=f"usr-{i}", username=f"s{i}", role="STUDENT", password_hash="x", create_ms=T0
                )
            )
            tx.execute(
                insert(ExamSession).values(
                    session_id=f"ses-{i}",
                    student_id=f"usr-{i}",
                    scope=SCOPE_FULL_TEST,
                    state=STATE_IN_PROGRESS,
                    blueprint_version="toefl2026-v2",
                    created_by=f"usr-{i}",
                    create_ms=T0,
                    current_module_id=f"mod-{i}-1",
                )
            )
            tx.execute(
                insert(Module).values(
                    module_id=f"mod-{i}-1",
                    session_id=f"ses-{i}",
                    sequence=1,
                    plan_key="reading-router",
                    section="SECTION_READING",
                    stage=STAGE_ROUTER,
                    status=STATUS_OPEN,
                    seed=1,
                    assembly_record=b"",
                    start_ms=T0,
                    deadline_ms=T0 + 600_000,
                )
            )


def next_module(i: int, module_id: str | None = None) -> NewModule:
    return NewModule(
        module_id=module_id or f"mod-{i}-2",
        sequence=2,
        plan_key="reading-upper",
        section="SECTION_READING",
        stage=STAGE_UPPER,
        seed=2,
        assembly_record=b"",
        start_ms=T0 + 1_000,
        deadline_ms=T0 + 601_000,
        items=(
            PinnedItem(
                item_id=f"itm-{i}",
                revision=1,
                task_type="TASK_TYPE_COMPLETE_THE_WORDS",
                full_item=item_pb2.Item(
                    item_id=f"itm-{i}", task_type=item_pb2.TASK_TYPE_COMPLETE_THE_WORDS
                ).SerializeToString(),
            ),
        ),
        passages=(),
    )


def move(
    i: int, *, request_id: str | None = None, from_module: str | None = None, to: str | None = None
) -> writer.Advance:
    return writer.Advance(
        session_id=f"ses-{i}",
        request_id=request_id,
        from_module_id=from_module or f"mod-{i}-1",
        now_ms=T0 + 1_000,
        router_score=None,
        next_module=next_module(i, to),
    )


def current_modules(db: Database) -> dict[str, str | None]:
    with db.read_statement() as conn:
        return dict(conn.execute(select(ExamSession.session_id, ExamSession.current_module_id)).all())


def test_a_room_advances_in_one_group(db: Database) -> None:
    seat(db, 5)
    jobs = [
        move(0, request_id="rq-0"),
        move(1, request_id="rq-1"),
        move(2),
        move(3, request_id="rq-3"),
        # A client's retry racing its first try, in the same group: applied once, the second says so.
        move(0, request_id="rq-0"),
        # A stale request: the module it closes is not the current one.
        move(4, from_module="mod-4-0"),
    ]
    commits: list[object] = []
    count = commits.append
    event.listen(db.write_engine, "commit", count)
    results = writer.advance_group(db, jobs=jobs)
    event.remove(db.write_engine, "commit", count)
    assert len(commits) == 1, "one transaction for the whole group"
    closed_now = writer.Advanced(applied=True, closing=Closing(status=STATUS_CLOSED, close_ms=T0 + 1_000))
    assert results[:5] == [closed_now] * 4 + [writer.Advanced(applied=False)]
    refused = results[5]
    assert isinstance(refused, FailedPrecondition) and refused.reason == "SESSION_MOVED_ON"
    assert current_modules(db) == {
        "ses-0": "mod-0-2",
        "ses-1": "mod-1-2",
        "ses-2": "mod-2-2",
        "ses-3": "mod-3-2",
        "ses-4": "mod-4-1",
    }
    with db.read_statement() as conn:
        assert conn.execute(select(func.count()).select_from(AdvanceRequest)).scalar() == 3
        closed = conn.execute(select(Module.module_id).where(Module.status != STATUS_OPEN)).scalars()
        assert sorted(closed) == ["mod-0-1", "mod-1-1", "mod-2-1", "mod-3-1"]


def test_a_broken_advance_fails_alone(db: Database) -> None:
    seat(db, 3)
    # Session 2's next module reuses session 0's module id: its insert breaks the group's transaction.
    jobs = [move(0), move(1), move(2, to="mod-0-2")]
    results = writer.advance_group(db, jobs=jobs)
    assert [r.applied for r in results[:2] if isinstance(r, writer.Advanced)] == [True, True]
    assert isinstance(results[2], Conflict)
    assert current_modules(db) == {"ses-0": "mod-0-2", "ses-1": "mod-1-2", "ses-2": "mod-2-1"}


def test_a_router_score_that_missed_an_answer_is_refused_and_one_that_saw_them_all_routes(db: Database) -> None:
    seat(db, 2)
    with db.unit_of_work() as tx:
        for i in range(2):
            tx.execute(
                insert(Response).values(
                    session_id=f"ses-{i}",
                    module_id=f"mod-{i}-1",
                    item_id="itm-1",
                    revision=1,
                    answer_json="{}",
                    request_id=f"ans-{i}",
                    saved_ms=T0 + 500,
                )
            )
        newest = dict(tx.execute(select(Response.session_id, Response.response_id)).all())

    def routed(i: int, scored_through: int) -> writer.Advance:
        score = RouterScore(theta=0.5, theta_se=0.4, decision="upper", scored_through=scored_through)
        return dataclasses.replace(move(i), router_score=score)

    # Session 0's estimate was computed before its answer arrived; session 1's saw it.
    results = writer.advance_group(db, jobs=[routed(0, 0), routed(1, newest["ses-1"])])
    stale = results[0]
    assert isinstance(stale, Aborted) and stale.reason == "ANSWERED_WHILE_SCORING"
    assert results[1] == writer.Advanced(applied=True, closing=Closing(status=STATUS_CLOSED, close_ms=T0 + 1_000))
    assert current_modules(db) == {"ses-0": "mod-0-1", "ses-1": "mod-1-2"}
    with db.read_statement() as conn:
        kept = conn.execute(
            select(Module.module_id, Module.theta, Module.routing_decision).where(Module.sequence == 1)
        )
        assert sorted(kept) == [("mod-0-1", None, None), ("mod-1-1", 0.5, "upper")]
        # A move within the section closes none: no score yet.
        assert conn.execute(select(func.count()).select_from(ScoreVersion)).scalar() == 0


def test_an_advance_out_of_a_section_says_so_and_leaves_its_score_to_a_later_write(db: Database) -> None:
    seat(db, 2)
    writer.advance_group(db, jobs=[move(0), move(1)])
    listening = dataclasses.replace(
        next_module(0, "mod-0-3"), sequence=3, plan_key="listening-router", section="SECTION_LISTENING"
    )
    out_of_reading = dataclasses.replace(move(0, from_module="mod-0-2"), next_module=listening)
    within_reading = dataclasses.replace(
        move(1, from_module="mod-1-2"), next_module=dataclasses.replace(next_module(1, "mod-1-3"), sequence=3)
    )
    left, stayed = writer.advance_group(db, jobs=[out_of_reading, within_reading])
    assert isinstance(left, writer.Advanced) and left.applied and left.section_closed
    assert isinstance(stayed, writer.Advanced) and stayed.applied and not stayed.section_closed
    with db.read_statement() as conn:
        # The group's transaction wrote the module changes only: Reading's score is left to section_scoring.
        assert conn.execute(select(func.count()).select_from(ScoreVersion)).scalar() == 0


def test_a_finish_marks_its_session_and_the_idle_scoring_clears_the_mark(db: Database) -> None:
    seat(db, 2)
    # Past the router, on a module with an item: the finish closes a section there is something to score of.
    writer.advance_group(db, jobs=[move(0)])
    writer.finish(db, session_id="ses-0", now_ms=T0 + 2_000)
    with db.read_statement() as conn:
        assert conn.execute(select(func.count()).select_from(ScoreVersion)).scalar() == 0
    assert scores.pending_session_ids(db) == ["ses-0"]
    writer.score_sessions(db, session_ids=["ses-0", "ses-1"], scorer=SCORER, now_ms=T0 + 3_000)
    assert scores.pending_session_ids(db) == []
    with db.read_statement() as conn:
        # The finished session's Reading, closed by the finish; the other session has nothing closed to score.
        scored = conn.execute(select(ScoreVersion.session_id, ScoreVersion.version, ScoreVersion.reason)).all()
    assert scored == [("ses-0", 1, "section_closed")]


def test_a_module_whose_bodies_were_found_stored_writes_none_of_them_and_reads_back_whole(db: Database) -> None:
    seat(db, 2)
    writer.advance_group(db, jobs=[move(0)])
    stored_body = next_module(0).items[0].full_item
    new_body = next_module(1).items[0].full_item
    # What the preparer asks before the advance: the body session 0's module stored is found, the other is not.
    stored = content.stored_digests(db, bodies=[stored_body, new_body])
    assert stored == {content.digest_of(stored_body)}
    same_items = dataclasses.replace(next_module(0, "mod-1-2"), stored_digests=stored)
    sent: list[str] = []

    def watch(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "pinned_content" in statement:
            sent.append(statement)

    event.listen(db.write_engine, "before_cursor_execute", watch)
    [advanced] = writer.advance_group(db, jobs=[dataclasses.replace(move(1), next_module=same_items)])
    event.remove(db.write_engine, "before_cursor_execute", watch)
    assert isinstance(advanced, writer.Advanced) and advanced.applied
    assert sent == [], "a body known stored is not sent again"
    [item] = sessions.module_content(db, module_id="mod-1-2").items
    assert item.full_item == stored_body


def test_the_head_an_advance_leaves_for_the_next_answer_is_the_head_a_read_finds(db: Database) -> None:
    # The servicer keeps `record.advanced(...).head` for the session's next answer instead of reading it.
    seat(db, 1)
    record = sessions.get_session(db, session_id="ses-0")
    assert record is not None and record.head == sessions.session_head(db, session_id="ses-0")
    for job in (move(0), dataclasses.replace(move(0, from_module="mod-0-2"), next_module=None)):
        [advanced] = writer.advance_group(db, jobs=[job])
        assert isinstance(advanced, writer.Advanced) and advanced.applied
        record = record.advanced(closing=advanced.closing, opened=job.next_module)
        assert record.head == sessions.session_head(db, session_id="ses-0")
    # After the last module: no current module, as the read says.
    assert record.head.module_id is None
