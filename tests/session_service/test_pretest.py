"""Pretest slots through the real services: delivered like any item, balanced by session_service's tally, left out
of every score, and exported for calibration."""

from __future__ import annotations

from collections import Counter

import pytest
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from session_service.blueprint import load_blueprint
from tests.item_service.test_pretest import pretested
from tests.session_service.scoring_flow import (
    ScoringStub,
    expected_section,
    report,
    section_of,
    take_session,
)
from tests.support.exam import admin, as_user, new_user, request_id
from tests.support.tokens import metadata
from toefl_core.auth import Role

READING = item_pb2.SECTION_READING
CTW = item_pb2.TASK_TYPE_COMPLETE_THE_WORDS


def test_the_current_blueprint_reserves_pretest_slots() -> None:
    blueprint = load_blueprint()
    assert all(plan.pretest_counts for section in blueprint.sections for plan in section.modules)
    # Versions already in use keep their meaning.
    assert not any(
        plan.pretest_counts for section in load_blueprint("toefl2026-v2").sections for plan in section.modules
    )


def test_pretest_items_are_delivered_balanced_unscored_and_exported(
    stub: session_service_pb2_grpc.SessionServiceStub,
    scoring: ScoringStub,
    item_stub: item_service_pb2_grpc.ItemServiceStub,
) -> None:
    pool = {pretested(item_stub, CTW).item_id for _ in range(2)}
    given: Counter[str] = Counter()
    for seed in (1, 2):
        student = new_user(stub)
        taken = take_session(stub, item_stub, student, section=READING, seed=seed)
        seen = taken.items[READING]
        pretest = [item for item in seen if item.status == item_pb2.ITEM_STATUS_PRETEST]
        # One pretest slot in each of the two modules taken, from the pool.
        assert len(pretest) == 2 and {item.item_id for item in pretest} <= pool
        given.update(item.item_id for item in pretest)
        score = section_of(report(scoring, taken.session_id, admin()).score, READING)
        theta, se, band = expected_section(taken, READING)
        assert score.theta == pytest.approx(theta, abs=1e-9) and score.standard_error == pytest.approx(
            se, abs=1e-9
        )
        assert score.band == band and score.items_used == len(seen) - len(pretest)
        records = [
            r
            for r in scoring.ExportResponses(
                spb.ExportResponsesRequest(), metadata=metadata(Role.SERVICE, "tests")
            )
            if r.session_id == taken.session_id
        ]
        assert {r.item_id for r in records if r.pretest} == {item.item_id for item in pretest}
        assert all(r.score >= 0 for r in records if r.pretest)
    # Least administered first: two sessions, four slots, each of the two pretest items given twice.
    assert given == Counter(dict.fromkeys(pool, 2))


def test_a_student_cannot_tell_a_pretest_item(
    stub: session_service_pb2_grpc.SessionServiceStub, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    pool = {pretested(item_stub, CTW).item_id}
    pool |= {
        i.item_id
        for i in item_stub.ListItems(
            item_service_pb2.ListItemsRequest(task_type=CTW, status=item_pb2.ITEM_STATUS_PRETEST),
            metadata=metadata(Role.AUTHOR, "tests"),
        ).items
    }
    student = new_user(stub)
    session = stub.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=READING, request_id=request_id()),
        metadata=as_user(student),
    )
    items = session.current_module.items
    assert {item.item_id for item in items} & pool
    assert {item.status for item in items} == {item_pb2.ITEM_STATUS_ACTIVE}
