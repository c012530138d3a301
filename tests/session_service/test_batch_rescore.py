"""BatchRescoreSessions: the per-session results of RescoreSession, idempotency, per-entry errors, limits."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from tests.session_service.scoring_flow import (
    ScoringStub,
    TakenSession,
    service,
    take_session,
)
from tests.support.exam import as_user, expect_code, new_user, request_id
from tests.support.tokens import metadata
from toefl_core.auth import Role

CODE = grpc.StatusCode
READING = item_pb2.SECTION_READING
ADMIN = metadata(Role.ADMIN, "usr-batch-admin")
Request = spb.RescoreSessionRequest


@pytest.fixture(scope="module")
def sessions(
    stub: session_service_pb2_grpc.SessionServiceStub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> list[TakenSession]:
    """Four finished sessions (reading, writing, reading, reading)."""
    sections = (READING, item_pb2.SECTION_WRITING, READING, READING)
    return [
        take_session(stub, item_stub, new_user(stub), section=section, seed=seed)
        for seed, section in enumerate(sections)
    ]


def batch(
    scoring: ScoringStub, requests: list[spb.RescoreSessionRequest], md: tuple[tuple[str, str], ...] | None = None
) -> list[spb.BatchRescoreSessionsEntry]:
    reply = scoring.BatchRescoreSessions(
        spb.BatchRescoreSessionsRequest(requests=requests), metadata=md or service()
    )
    assert [e.session_id for e in reply.entries] == [r.session_id for r in requests]
    return list(reply.entries)


def results(entries: list[spb.BatchRescoreSessionsEntry]) -> list[spb.RescoreResult]:
    assert all(e.HasField("result") for e in entries), [e.error for e in entries if e.HasField("error")]
    return [e.result for e in entries]


def versions(scoring: ScoringStub, session_id: str) -> list[spb.ScoreVersion]:
    request = spb.ListScoreVersionsRequest(session_id=session_id)
    return list(scoring.ListScoreVersions(request, metadata=ADMIN).versions)


def recalibrate(item_stub: item_service_pb2_grpc.ItemServiceStub, item_id: str) -> int:
    """A new revision of the item with other IRT parameters; its revision."""
    item = item_stub.GetItem(
        item_service_pb2.GetItemRequest(item_id=item_id, view=item_pb2.ITEM_VIEW_FULL), metadata=ADMIN
    )
    item.irt.a = round(item.irt.a * 0.8 + 0.3, 6)
    updated = item_stub.UpdateItem(
        item_service_pb2.UpdateItemRequest(item=item, update_mask=FieldMask(paths=["irt"]), note="batch test"),
        metadata=ADMIN,
    )
    return updated.revision


def without_new_ids(result: spb.RescoreResult) -> spb.RescoreResult:
    """A dry run's candidate version gets a fresh id and time on every call: the rest must be equal."""
    copy = spb.RescoreResult()
    copy.CopyFrom(result)
    copy.current.ClearField("score_id")
    copy.current.ClearField("create_time")
    return copy


def test_batch_results_are_the_per_session_results(scoring: ScoringStub, sessions: list[TakenSession]) -> None:
    ids = [s.session_id for s in sessions]
    before = {sid: versions(scoring, sid) for sid in ids}
    one_by_one = [scoring.RescoreSession(Request(session_id=sid), metadata=service()) for sid in ids]
    together = results(batch(scoring, [Request(session_id=sid, request_id=request_id()) for sid in ids]))
    assert together == one_by_one
    for sid, result in zip(ids, together, strict=True):
        assert not result.changed and result.current == before[sid][0] == result.previous
    assert {sid: versions(scoring, sid) for sid in ids} == before


def test_after_a_recalibration_a_batch_writes_what_changed_once(
    scoring: ScoringStub, item_stub: item_service_pb2_grpc.ItemServiceStub, sessions: list[TakenSession]
) -> None:
    ids = [s.session_id for s in sessions]
    # An operational item the first session saw (a pretest item enters no score; a writing session sees no reading
    # items), seen by as few of the others as can be: the modules a session is given are drawn at random, so the
    # other reading sessions may all have seen each of the first one's items too.
    seen = [{i.item_id for i in s.items.get(READING, [])} for s in sessions]
    operational = [i.item_id for i in sessions[0].items[READING] if i.status != item_pb2.ITEM_STATUS_PRETEST]
    target = min(operational, key=lambda item_id: sum(item_id in those for those in seen))
    expected = [target in those for those in seen]
    assert expected[0] and not expected[1], "the first session is rescored, the writing one is not"
    revision = recalibrate(item_stub, target)
    before = {sid: versions(scoring, sid) for sid in ids}

    dry = results(batch(scoring, [Request(session_id=sid, dry_run=True) for sid in ids]))
    single_dry = [scoring.RescoreSession(Request(session_id=sid, dry_run=True), metadata=service()) for sid in ids]
    assert [without_new_ids(r) for r in dry] == [without_new_ids(r) for r in single_dry]
    assert [r.changed for r in dry] == expected
    assert {sid: versions(scoring, sid) for sid in ids} == before, "a dry run writes nothing"

    requests = [Request(session_id=sid, request_id=request_id()) for sid in ids]
    applied = results(batch(scoring, requests))
    assert [r.changed for r in applied] == expected
    after = {sid: versions(scoring, sid) for sid in ids}
    for sid, result, changed in zip(ids, applied, expected, strict=True):
        if not changed:
            assert after[sid] == before[sid]
            continue
        assert result.previous == before[sid][0] and result.current.version == result.previous.version + 1
        assert result.current.reason == "rescore" and result.current.parameter_revisions[target] == revision
        assert any(target in change for change in result.changes)
        assert after[sid][0] == result.current and after[sid][1:] == before[sid]
    first = applied[0]

    # The same batch again (a retry): the stored outcomes, nothing written.
    assert results(batch(scoring, requests)) == applied
    # One of its requests alone, through RescoreSession: the same stored outcome.
    assert scoring.RescoreSession(requests[0], metadata=service()) == first
    # The same request twice in one batch acts once, and both entries say so.
    again = Request(session_id=ids[0], request_id=request_id())
    twice = results(batch(scoring, [again, requests[1], again]))
    assert twice[0] == twice[2] and not twice[0].changed and twice[0].current == first.current
    assert {sid: versions(scoring, sid) for sid in ids} == after


def test_one_bad_session_does_not_fail_the_others(
    stub: session_service_pb2_grpc.SessionServiceStub, scoring: ScoringStub, sessions: list[TakenSession]
) -> None:
    student = new_user(stub)
    unfinished = stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_FULL_TEST), metadata=as_user(student)
    )
    good = [s.session_id for s in sessions[:2]]
    entries = batch(
        scoring,
        [
            Request(session_id=good[0], request_id=request_id()),
            Request(session_id="ses-missing", request_id=request_id()),
            Request(session_id=unfinished.session_id, request_id=request_id()),
            Request(session_id="", request_id=request_id()),
            Request(session_id=good[1], dry_run=True),
        ],
    )
    assert [e.WhichOneof("outcome") for e in entries] == ["result", "error", "error", "error", "result"]
    assert entries[1].error.code == CODE.NOT_FOUND.value[0] and "ses-missing" in entries[1].error.message
    assert entries[2].error.code == CODE.FAILED_PRECONDITION.value[0]
    assert "not finished" in entries[2].error.message
    assert entries[3].error.code == CODE.INVALID_ARGUMENT.value[0] and "session_id" in entries[3].error.message
    assert entries[0].result.session_id == good[0] and entries[4].result.session_id == good[1]
    # The refused ones are refused alike one by one.
    expect_code(
        CODE.FAILED_PRECONDITION,
        lambda: scoring.RescoreSession(Request(session_id=unfinished.session_id), metadata=service()),
        "not finished",
    )


def test_a_batch_holds_1_to_500_requests_each_session_once(
    scoring: ScoringStub, sessions: list[TakenSession]
) -> None:
    def send(requests: list[spb.RescoreSessionRequest]) -> object:
        return scoring.BatchRescoreSessions(spb.BatchRescoreSessionsRequest(requests=requests), metadata=service())

    expect_code(CODE.INVALID_ARGUMENT, lambda: send([]), "requests is empty")
    too_many = [Request(session_id=f"ses-{n}") for n in range(501)]
    expect_code(CODE.INVALID_ARGUMENT, lambda: send(too_many), "at most 500")
    sid = sessions[0].session_id
    expect_code(
        CODE.INVALID_ARGUMENT,
        lambda: send([Request(session_id=sid, request_id="a"), Request(session_id=sid, request_id="b")]),
        "named twice",
    )
    # 500 is allowed: the unknown ones are per-entry errors.
    entries = batch(scoring, [Request(session_id=sid, dry_run=True), *too_many[:499]])
    assert entries[0].HasField("result")
    assert all(e.error.code == CODE.NOT_FOUND.value[0] for e in entries[1:])


@pytest.mark.parametrize("role", [Role.STUDENT, Role.TEACHER, Role.RATER, Role.AUTHOR])
def test_only_jobs_and_admins_may_rescore(scoring: ScoringStub, sessions: list[TakenSession], role: Role) -> None:
    request = [Request(session_id=sessions[0].session_id, dry_run=True)]
    expect_code(CODE.PERMISSION_DENIED, lambda: batch(scoring, request, metadata(role, f"usr-{role.value}")))
    expect_code(CODE.UNAUTHENTICATED, lambda: scoring.BatchRescoreSessions(spb.BatchRescoreSessionsRequest()))


@pytest.mark.parametrize("role", [Role.SERVICE, Role.ADMIN])
def test_jobs_and_admins_may_rescore(scoring: ScoringStub, sessions: list[TakenSession], role: Role) -> None:
    request = [Request(session_id=sessions[0].session_id, dry_run=True)]
    assert results(batch(scoring, request, metadata(role, f"usr-{role.value}")))[0].session_id
