"""An admin's rescore that changes a score is a staff action: one audit entry, written with the new score version;
a dry run, a rescore that changes nothing, a retry and a scoring job's rescore add none."""

from __future__ import annotations

import json

import pytest
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from tests.session_service.scoring_flow import (
    ScoringStub,
    TakenSession,
    service,
    take_session,
)
from tests.session_service.test_batch_rescore import recalibrate
from tests.support.exam import new_user, request_id
from tests.support.tokens import metadata
from toefl_core.auth import Role

READING = item_pb2.SECTION_READING
ADMIN_ID = "usr-rescore-admin"
ADMIN = metadata(Role.ADMIN, ADMIN_ID)


@pytest.fixture(scope="module")
def sessions(
    stub: session_service_pb2_grpc.SessionServiceStub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> list[TakenSession]:
    """Two finished Reading sessions of two students."""
    return [take_session(stub, item_stub, new_user(stub), section=READING, seed=seed) for seed in (11, 12)]


def rescore_entries(stub: session_service_pb2_grpc.SessionServiceStub, session_id: str) -> list[dict[str, object]]:
    request = pb.ListAuditEntriesRequest(action="rescore_session", target_id=session_id)
    return [
        {
            "actor": e.actor_id,
            "role": e.actor_role,
            "student": e.student_id,
            "target_type": e.target_type,
            "detail": json.loads(e.detail_json),
        }
        for e in stub.ListAuditEntries(request, metadata=ADMIN).entries
    ]


def own_item(sessions: list[TakenSession], index: int) -> str:
    """A Reading item the session `index` saw and no other did: recalibrating it changes that session's score."""
    others = [s for i, s in enumerate(sessions) if i != index]
    return next(
        i.item_id for i in sessions[index].items[READING] if not any(i.item_id in s.correct for s in others)
    )


def test_an_admins_rescore_that_changes_a_score_is_audited_once(
    stub: session_service_pb2_grpc.SessionServiceStub,
    scoring: ScoringStub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
    sessions: list[TakenSession],
) -> None:
    first, second = sessions
    # Nothing changed yet: no new version, no entry.
    unchanged = scoring.RescoreSession(spb.RescoreSessionRequest(session_id=first.session_id), metadata=ADMIN)
    assert not unchanged.changed
    assert rescore_entries(stub, first.session_id) == []

    recalibrate(item_stub, own_item(sessions, 0))
    dry = spb.RescoreSessionRequest(session_id=first.session_id, dry_run=True)
    assert scoring.RescoreSession(dry, metadata=ADMIN).changed
    assert rescore_entries(stub, first.session_id) == [], "a dry run writes nothing, not even an entry"

    once = spb.RescoreSessionRequest(session_id=first.session_id, request_id=request_id())
    applied = scoring.RescoreSession(once, metadata=ADMIN)
    assert applied.changed
    (entry,) = rescore_entries(stub, first.session_id)
    assert entry == {
        "actor": ADMIN_ID,
        "role": "admin",
        "student": first.student.user_id,
        "target_type": "session",
        "detail": {
            "from_version": applied.previous.version,
            "to_version": applied.current.version,
            "changes": list(applied.changes),
            "request_id": once.request_id,
        },
    }
    # A retry replays the stored outcome: still one entry.
    assert scoring.RescoreSession(once, metadata=ADMIN) == applied
    assert len(rescore_entries(stub, first.session_id)) == 1

    # A scoring job's rescore (the service role) is the job's, not a staff action: no entry.
    recalibrate(item_stub, own_item(sessions, 1))
    by_job = scoring.RescoreSession(
        spb.RescoreSessionRequest(session_id=second.session_id, request_id=request_id()), metadata=service()
    )
    assert by_job.changed
    assert rescore_entries(stub, second.session_id) == []
