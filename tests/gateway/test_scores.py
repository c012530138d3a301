"""Score reports through a real gateway in front of real item_service and session_service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from aiohttp.test_utils import TestClient
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.session_service.scoring_flow import TakenSession, start_session_service, take_session
from tests.support.exam import new_user
from tests.support.tokens import token
from toefl_core.auth import Role

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def session_proc(
    item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    started = start_session_service(tmp_path_factory, item_service_proc, second_rating_share="0")
    yield started
    started.terminate()


@pytest.fixture(scope="module")
def finished(session_proc: ServiceProcess, item_stub: item_service_pb2_grpc.ItemServiceStub) -> TakenSession:
    """A reading session taken to the end over gRPC (the exam API itself is tested in test_exam_api)."""
    with grpc.insecure_channel(session_proc.address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        return take_session(stub, item_stub, new_user(stub), section=item_pb2.SECTION_READING)


def bearer(role: Role, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, subject)}"}


async def test_score_report_of_a_finished_session(client: TestClient[Any, Any], finished: TakenSession) -> None:
    url = f"/api/sessions/{finished.session_id}/scoreReport"
    async with client.get(url, headers=bearer(Role.STUDENT, finished.student.user_id)) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["sessionId"] == finished.session_id and body["studentId"] == finished.student.user_id
    score = body["score"]
    assert score["status"] == "SCORE_STATUS_FINAL" and score["version"] == 1
    (section,) = score["sections"]
    assert section["section"] == "SECTION_READING" and section["status"] == "SCORE_STATUS_FINAL"
    assert section["band"] in {f"{half / 2:.1f}" for half in range(2, 13)} and section["cefr"]
    assert float(section["bandLow"]) <= float(section["band"]) <= float(section["bandHigh"])
    # A student's own report: no points per task type, no theta, no parameter revisions (issue 15's key oracle).
    assert not body.get("taskTypes") and not score.get("parameterRevisions"), body
    assert not section.get("theta") and not section.get("standardError"), section
    async with client.get(url, headers=bearer(Role.ADMIN, "a")) as response:
        assert response.status == 200
        staff = await response.json()
    assert {t["taskType"] for t in staff["taskTypes"]} >= {"TASK_TYPE_READ_ACADEMIC_PASSAGE"}
    assert staff["score"]["sections"][0]["theta"] and staff["score"]["parameterRevisions"]
    async with client.get(url, headers=bearer(Role.STUDENT, "usr-someone-else")) as response:
        assert response.status == 403
    async with client.get(url) as response:
        assert response.status == 401
    async with client.get(
        f"/api/sessions/{finished.session_id}/scores", headers=bearer(Role.ADMIN, "a")
    ) as response:
        assert response.status == 200
        assert [v["version"] for v in (await response.json())["versions"]] == [1]
