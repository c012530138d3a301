"""The scoring jobs' RPCs: rescoring after a recalibration, finished sessions page by page, the response export."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from tests.session_service.scoring_flow import (
    RATED,
    ScoringStub,
    TakenSession,
    report,
    section_of,
    service,
    take_session,
)
from tests.support.exam import as_user, expect_code, new_user, request_id
from tests.support.tokens import metadata
from toefl_core.auth import Role

CODE = grpc.StatusCode
READING = item_pb2.SECTION_READING
AUTHOR = metadata(Role.AUTHOR, "usr-test-author")


@pytest.fixture(scope="module")
def sessions(
    stub: session_service_pb2_grpc.SessionServiceStub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> list[TakenSession]:
    """Three finished sessions (reading, writing, reading), in finishing order; nothing changes them."""
    return [
        take_session(stub, item_stub, new_user(stub), section=section, seed=seed)
        for seed, section in enumerate((READING, item_pb2.SECTION_WRITING, READING))
    ]


def rescore(scoring: ScoringStub, session_id: str, *, rid: str = "", dry_run: bool = False) -> spb.RescoreResult:
    return scoring.RescoreSession(
        spb.RescoreSessionRequest(session_id=session_id, request_id=rid, dry_run=dry_run), metadata=service()
    )


def versions(scoring: ScoringStub, session_id: str) -> list[spb.ScoreVersion]:
    admin = metadata(Role.ADMIN, "usr-admin")
    return list(
        scoring.ListScoreVersions(spb.ListScoreVersionsRequest(session_id=session_id), metadata=admin).versions
    )


def test_finished_sessions_oldest_first_page_by_page(scoring: ScoringStub, sessions: list[TakenSession]) -> None:
    found: list[str] = []
    token = ""
    while True:
        page = scoring.ListFinishedSessions(
            spb.ListFinishedSessionsRequest(page_size=2, page_token=token), metadata=service()
        )
        assert len(page.session_ids) <= 2
        found.extend(page.session_ids)
        token = page.next_page_token
        if not token:
            break
    assert found == [s.session_id for s in sessions]
    later = Timestamp()
    later.GetCurrentTime()
    after = scoring.ListFinishedSessions(spb.ListFinishedSessionsRequest(finished_after=later), metadata=service())
    assert list(after.session_ids) == []
    other = scoring.ListFinishedSessions(
        spb.ListFinishedSessionsRequest(blueprint_version="no-such-blueprint"), metadata=service()
    )
    assert list(other.session_ids) == []
    expect_code(
        CODE.INVALID_ARGUMENT,
        lambda: scoring.ListFinishedSessions(spb.ListFinishedSessionsRequest(page_token="!!"), metadata=service()),
    )


def test_a_finished_sessions_token_serves_only_its_own_filters(
    scoring: ScoringStub, sessions: list[TakenSession]
) -> None:
    first = scoring.ListFinishedSessions(spb.ListFinishedSessionsRequest(page_size=1), metadata=service())
    assert first.next_page_token
    blueprint = spb.ListFinishedSessionsRequest(
        page_size=1, blueprint_version="toefl2026-v1", page_token=first.next_page_token
    )
    expect_code(CODE.INVALID_ARGUMENT, lambda: scoring.ListFinishedSessions(blueprint, metadata=service()))
    expect_code(
        CODE.INVALID_ARGUMENT,
        lambda: scoring.ListRatingTasks(
            spb.ListRatingTasksRequest(page_token=first.next_page_token), metadata=metadata(Role.RATER, "usr-r")
        ),
    )
    for size in (-1, 201):
        expect_code(
            CODE.INVALID_ARGUMENT,
            lambda size=size: scoring.ListFinishedSessions(  # type: ignore[misc]
                spb.ListFinishedSessionsRequest(page_size=size), metadata=service()
            ),
        )


def test_export_has_every_item_scored_and_no_personal_data(
    scoring: ScoringStub, sessions: list[TakenSession]
) -> None:
    records = list(scoring.ExportResponses(spb.ExportResponsesRequest(), metadata=service()))
    expected = {(s.session_id, i.item_id) for s in sessions for items in s.items.values() for i in items}
    assert {(r.session_id, r.item_id) for r in records} == expected and len(records) == len(expected)
    # Two reading sessions may share items: key by session too.
    items = {(s.session_id, i.item_id): i for s in sessions for section in s.items.values() for i in section}
    correct = {(s.session_id, k): v for s in sessions for k, v in s.correct.items()}
    for record in records:
        key = (record.session_id, record.item_id)
        item = items[key]
        assert record.item_revision == item.revision and record.answered and record.elapsed_ms == 0
        if item.task_type in RATED:
            assert (record.score, record.max_score) == (-1, 5)
        elif item.task_type == item_pb2.TASK_TYPE_COMPLETE_THE_WORDS:
            assert record.max_score == 10 and record.score == (len(item.answer_key.completions) * correct[key])
        else:
            assert (record.score, record.max_score) == (int(correct[key]), 1)
    # Nothing in a record names the student.
    assert {f.name for f in spb.ResponseRecord.DESCRIPTOR.fields}.isdisjoint({"student_id", "username", "user_id"})
    student_ids = {s.student.user_id for s in sessions}
    assert not any(sid in str(r) for r in records for sid in student_ids)


def test_rescore_writes_a_version_only_when_parameters_change(
    scoring: ScoringStub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
    sessions: list[TakenSession],
) -> None:
    taken = sessions[0]
    before = versions(scoring, taken.session_id)
    unchanged = rescore(scoring, taken.session_id, rid=request_id())
    assert not unchanged.changed and list(unchanged.changes) == [] and unchanged.current == before[0]
    assert versions(scoring, taken.session_id) == before

    # Recalibrate one item the session saw (only irt.* may change on an ACTIVE item).
    target = taken.items[READING][0]
    current = item_stub.GetItem(
        item_service_pb2.GetItemRequest(item_id=target.item_id, view=item_pb2.ITEM_VIEW_FULL), metadata=AUTHOR
    )
    irt = item_pb2.IrtParameters()
    irt.CopyFrom(current.irt)
    irt.a += 0.4
    updated = item_stub.UpdateItem(
        item_service_pb2.UpdateItemRequest(
            item=item_pb2.Item(item_id=target.item_id, etag=current.etag, irt=irt),
            update_mask=FieldMask(paths=["irt.a"]),
            note="recalibration",
        ),
        metadata=AUTHOR,
    )
    assert updated.revision == current.revision + 1

    dry = rescore(scoring, taken.session_id, dry_run=True)
    assert dry.changed and versions(scoring, taken.session_id) == before
    rid = request_id()
    applied = rescore(scoring, taken.session_id, rid=rid)
    assert applied.changed and applied.previous == before[0]
    assert applied.current.version == before[0].version + 1 and applied.current.reason == "rescore"
    assert applied.current.parameter_revisions[target.item_id] == updated.revision
    assert applied.previous.parameter_revisions[target.item_id] == target.revision
    assert section_of(applied.current, READING).theta != section_of(applied.previous, READING).theta
    assert any(target.item_id in change for change in applied.changes)
    after = versions(scoring, taken.session_id)
    assert after[1:] == before and after[0] == applied.current
    # A retry with the same request id acts once; another rescore finds nothing new.
    assert rescore(scoring, taken.session_id, rid=rid) == applied
    assert not rescore(scoring, taken.session_id, rid=request_id()).changed
    assert versions(scoring, taken.session_id) == after
    assert report(scoring, taken.session_id, metadata(Role.ADMIN, "usr-admin")).score == applied.current


def test_rescore_refuses_an_unfinished_or_unknown_session(
    stub: session_service_pb2_grpc.SessionServiceStub, scoring: ScoringStub
) -> None:
    student = new_user(stub)
    session = stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_FULL_TEST), metadata=as_user(student)
    )
    expect_code(CODE.FAILED_PRECONDITION, lambda: rescore(scoring, session.session_id), "not finished")
    expect_code(CODE.NOT_FOUND, lambda: rescore(scoring, "ses-missing"))
