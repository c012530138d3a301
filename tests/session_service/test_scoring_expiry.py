"""A section closed by its deadline is scored at once, while the session is still in progress."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from toefl.item.v1 import item_pb2
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import scoring_service_pb2_grpc, session_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb

from launcher.procs import ServiceProcess
from tests.session_service.scoring_flow import start_session_service
from tests.session_service.test_exam_flow import without_clock
from tests.support.exam import as_user, new_user, request_id

# Speaking (8 minutes) lasts about a second; the sweep looks every 0.2 s.
FAST = {"SESSION_TIME_SCALE": "0.002", "SESSION_SWEEP_SECONDS": "0.2"}


@pytest.fixture(scope="module")
def proc(item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    started = start_session_service(tmp_path_factory, item_service_proc, second_rating_share="0", env=FAST)
    yield started
    started.terminate()


def test_the_sweep_scores_a_section_whose_time_ran_out(proc: ServiceProcess) -> None:
    with grpc.insecure_channel(proc.address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        scoring = scoring_service_pb2_grpc.ScoringServiceStub(channel)
        student = new_user(stub)
        md = as_user(student)
        session = stub.CreateSession(
            pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_SPEAKING), metadata=md
        )
        request = spb.GetScoreReportRequest(session_id=session.session_id)
        assert not scoring.GetScoreReport(request, metadata=md).HasField("score")
        deadline = time.monotonic() + 30
        while not scoring.GetScoreReport(request, metadata=md).HasField("score"):
            assert time.monotonic() < deadline, "the expired section was never scored"
            time.sleep(0.1)
        report = scoring.GetScoreReport(request, metadata=md)
        (section,) = report.score.sections
        # Nothing was answered: every item scores 0, no response waits for a rating.
        assert section.section == item_pb2.SECTION_SPEAKING and section.status == spb.SCORE_STATUS_FINAL
        assert section.items_used == 11 and report.score.reason == "section_closed"
        assert list(report.pending_sections) == []
        state = stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
        assert state.state == pb.SESSION_STATE_IN_PROGRESS
        assert state.modules[0].status == pb.MODULE_STATUS_EXPIRED
        # Finishing later scores nothing twice.
        stub.FinishSession(pb.FinishSessionRequest(session_id=session.session_id), metadata=md)
        versions = scoring.ListScoreVersions(
            spb.ListScoreVersionsRequest(session_id=session.session_id), metadata=md
        )
        assert len(versions.versions) == 1


def test_an_advance_from_a_module_the_sweep_expired_replies_with_the_session_as_stored(
    proc: ServiceProcess,
) -> None:
    with grpc.insecure_channel(proc.address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        md = as_user(new_user(stub))
        session = stub.CreateSession(
            pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING), metadata=md
        )
        router = session.current_module.module_id
        deadline = time.monotonic() + 30
        while (
            stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md).modules[0].status
            != pb.MODULE_STATUS_EXPIRED
        ):
            assert time.monotonic() < deadline, "the router's deadline was never swept"
            time.sleep(0.1)
        advanced = stub.AdvanceModule(
            pb.AdvanceModuleRequest(session_id=session.session_id, request_id=request_id()), metadata=md
        )
        stored = stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=md)
        assert advanced.current_module.module_id != router
        assert [m.status for m in advanced.modules] == [pb.MODULE_STATUS_EXPIRED, pb.MODULE_STATUS_OPEN]
        assert without_clock(advanced) == without_clock(stored)
