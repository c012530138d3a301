"""Speaking recordings through the gateway: upload, answer, a rater hears it; who else may; the refusals."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sqlite3
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from launcher.procs import ServiceProcess, session_service_process
from tests.gateway.conftest import gateway_settings
from tests.support.audio import SPEAKING_TASK_TYPES, WAV, WEBM_OPUS, spoken_answer
from tests.support.tokens import TEST_TOKEN_KEY, token
from toefl_core.auth import Role

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = {"Authorization": f"Bearer {token(Role.ADMIN, 'usr-rec-admin')}"}
RATER = {"Authorization": f"Bearer {token(Role.RATER, 'usr-rec-rater')}"}
# Small limits, so that the oversize refusals need no large bodies.
RECORDING_MAX_BYTES = 2 * 1024 * 1024
UPLOAD_MAX_BYTES = 3 * 1024 * 1024


@dataclass
class Sitting:
    student_id: str
    headers: dict[str, str]
    session_id: str
    items: list[dict[str, Any]]

    @property
    def speaking(self) -> list[dict[str, Any]]:
        return [item for item in self.items if item["taskType"] in SPEAKING_TASK_TYPES]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


def _session_proc(workdir: Path, item_address: str, **env: str) -> ServiceProcess:
    return session_service_process(
        workdir,
        item_address=item_address,
        token_key=TEST_TOKEN_KEY,
        env={"SESSION_RECORDING_MAX_BYTES": str(RECORDING_MAX_BYTES), **env},
    )


@pytest.fixture(scope="module")
def session_proc(item_service_proc: ServiceProcess, workdir: Path) -> Iterator[ServiceProcess]:
    proc = _session_proc(workdir, item_service_proc.address).start()
    try:
        yield proc
    finally:
        proc.terminate()


@pytest.fixture(scope="module")
def hurried_proc(
    item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A session_service whose clock runs 100 times fast: the Speaking module's 8 minutes last 4.8 s."""
    proc = _session_proc(
        tmp_path_factory.mktemp("hurried"), item_service_proc.address, SESSION_TIME_SCALE="0.01"
    ).start()
    try:
        yield proc
    finally:
        proc.terminate()


async def _client(item_address: str, session_address: str) -> TestClient[Any, Any]:
    settings = gateway_settings(
        item_service_addr=item_address, session_service_addr=session_address, max_upload_bytes=UPLOAD_MAX_BYTES
    )
    return TestClient(TestServer(create_app(settings)))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client(
    item_service_proc: ServiceProcess, session_proc: ServiceProcess
) -> AsyncIterator[TestClient[Any, Any]]:
    async with await _client(item_service_proc.address, session_proc.address) as test_client:
        yield test_client


async def _call(
    client: TestClient[Any, Any], method: str, url: str, headers: dict[str, str], **kwargs: Any
) -> tuple[int, Any]:
    async with client.request(method, url, headers=headers, **kwargs) as reply:
        raw = await reply.read()
        is_json = reply.headers.get("Content-Type", "").startswith("application/json")
        return reply.status, json.loads(raw) if is_json else raw


async def _user(client: TestClient[Any, Any], role: str, class_id: str = "") -> str:
    user = {"username": f"rec-{uuid.uuid4().hex[:10]}", "role": role, "password": "speak up clearly"}
    url = f"/api/users?classId={class_id}" if class_id else "/api/users"
    status, created = await _call(client, "POST", url, ADMIN, json=user)
    assert status == 200, created
    return str(created["userId"])


async def _teacher_with_class(client: TestClient[Any, Any]) -> tuple[dict[str, str], str]:
    teacher_id = await _user(client, "ROLE_TEACHER")
    status, created = await _call(
        client, "POST", "/api/classes", ADMIN, json={"name": "Speaking 1", "teacherId": teacher_id}
    )
    assert status == 200, created
    return {"Authorization": f"Bearer {token(Role.TEACHER, teacher_id)}"}, str(created["classId"])


async def _sitting(client: TestClient[Any, Any], class_id: str = "") -> Sitting:
    student_id = await _user(client, "ROLE_STUDENT", class_id)
    headers = {"Authorization": f"Bearer {token(Role.STUDENT, student_id)}"}
    body = {"scope": "SESSION_SCOPE_SECTION", "section": "SECTION_SPEAKING", "requestId": uuid.uuid4().hex}
    status, session = await _call(client, "POST", "/api/sessions", headers, json=body)
    assert status == 200, session
    return Sitting(student_id, headers, session["sessionId"], session["currentModule"]["items"])


async def _upload(
    client: TestClient[Any, Any],
    sitting: Sitting,
    item_id: str,
    content_type: str | None,
    data: bytes,
    request_id: str | None = None,
) -> tuple[int, Any]:
    headers = dict(sitting.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    url = f"/api/sessions/{sitting.session_id}/recordings/{item_id}?requestId={request_id or uuid.uuid4().hex}"
    # Without skip_auto_headers aiohttp would send bytes as application/octet-stream.
    return await _call(client, "POST", url, headers, data=data, skip_auto_headers=["Content-Type"])


def _reason(body: dict[str, Any]) -> str:
    return next((d["reason"] for d in body.get("details", []) if d.get("reason")), "")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def class_of(client: TestClient[Any, Any]) -> tuple[dict[str, str], str]:
    return await _teacher_with_class(client)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sitting(client: TestClient[Any, Any], class_of: tuple[dict[str, str], str]) -> Sitting:
    return await _sitting(client, class_of[1])


async def test_a_spoken_answer_as_webm_and_as_wav_reaches_a_rater_byte_for_byte(
    client: TestClient[Any, Any], sitting: Sitting, class_of: tuple[dict[str, str], str]
) -> None:
    speaking = sitting.speaking
    assert len(speaking) >= 2, sitting.items
    uploaded: dict[str, tuple[str, bytes]] = {}
    for item, kind in zip(speaking[:2], (WEBM_OPUS, WAV), strict=True):
        content_type, data = spoken_answer(kind)
        request_id = uuid.uuid4().hex
        status, recording = await _upload(client, sitting, item["itemId"], content_type, data, request_id)
        assert status == 200, recording
        assert recording["audioRef"].startswith("rec-") and recording["sha256"] == hashlib.sha256(data).hexdigest()
        assert recording["contentType"] == content_type and int(recording["byteSize"]) == len(data)
        assert 2000 < recording["durationMs"] < 4000 and not recording["replayed"]
        # The same request id again: the same recording, nothing stored twice.
        status, again = await _upload(client, sitting, item["itemId"], content_type, data, request_id)
        assert status == 200 and again["audioRef"] == recording["audioRef"] and again["replayed"]
        answer = {"answer": {"speech": {"audioRef": recording["audioRef"]}}, "requestId": uuid.uuid4().hex}
        url = f"/api/sessions/{sitting.session_id}/responses/{item['itemId']}"
        status, saved = await _call(client, "PUT", url, sitting.headers, json=answer)
        assert status == 200, saved
        uploaded[recording["audioRef"]] = (content_type, data)
    # The ref of one item does not answer another.
    wrong = {"answer": {"speech": {"audioRef": next(iter(uploaded))}}, "requestId": uuid.uuid4().hex}
    url = f"/api/sessions/{sitting.session_id}/responses/{speaking[1]['itemId']}"
    status, body = await _call(client, "PUT", url, sitting.headers, json=wrong)
    assert (status, _reason(body)) == (400, "AUDIO_REF_UNKNOWN"), body

    # Before the section closes there is no rating task: a rater hears nothing.
    ref = next(iter(uploaded))
    status, _ = await _call(client, "GET", f"/api/recordings/{ref}", RATER)
    assert status == 404
    status, finished = await _call(
        client, "POST", f"/api/sessions/{sitting.session_id}:finish", sitting.headers, json={}
    )
    assert status == 200, finished
    heard: dict[str, bytes] = {}
    for task_type in SPEAKING_TASK_TYPES:
        status, queue = await _call(client, "GET", f"/api/ratingTasks?taskType={task_type}&pageSize=200", RATER)
        assert status == 200, queue
        for task in queue.get("tasks", []):
            if task.get("audioRef") in uploaded:
                async with client.get(f"/api/recordings/{task['audioRef']}", headers=RATER) as reply:
                    assert reply.status == 200
                    assert reply.headers["Content-Type"] == uploaded[task["audioRef"]][0]
                    # Blind: nothing of the student in the headers.
                    assert sitting.student_id not in json.dumps(dict(reply.headers))
                    heard[task["audioRef"]] = await reply.read()
    assert heard == {ref: data for ref, (_, data) in uploaded.items()}

    # The student, a teacher of their class and an admin hear it too; the ETag revalidates.
    teacher, _class_id = class_of
    for headers in (sitting.headers, teacher, ADMIN):
        async with client.get(f"/api/recordings/{ref}", headers=headers) as reply:
            assert reply.status == 200 and await reply.read() == uploaded[ref][1]
            etag = reply.headers["ETag"]
            assert reply.headers["Cache-Control"] == "private, no-cache"
    async with client.get(f"/api/recordings/{ref}", headers={**ADMIN, "If-None-Match": etag}) as reply:
        assert reply.status == 304

    # Another student, a teacher of another class: the answer of a recording that does not exist.
    other = await _sitting(client)
    other_teacher, _ = await _teacher_with_class(client)
    for headers in (other.headers, other_teacher):
        for audio_ref in (ref, "rec-0000000000000000"):
            status, body = await _call(client, "GET", f"/api/recordings/{audio_ref}", headers)
            assert status == 404 and body["message"] == f"recording {audio_ref} not found", body
    status, _ = await _call(client, "GET", f"/api/recordings/{ref}", {})
    assert status == 401
    # Nor may another student name it in an answer.
    answer = {"answer": {"speech": {"audioRef": ref}}, "requestId": uuid.uuid4().hex}
    url = f"/api/sessions/{other.session_id}/responses/{other.speaking[0]['itemId']}"
    status, body = await _call(client, "PUT", url, other.headers, json=answer)
    assert (status, _reason(body)) == (400, "AUDIO_REF_UNKNOWN"), body


async def test_what_is_not_a_recording_is_refused(client: TestClient[Any, Any], workdir: Path) -> None:
    sitting = await _sitting(client)
    item = sitting.speaking[0]
    item_id = item["itemId"]
    cases: list[tuple[str | None, bytes, int, str]] = [
        # No Content-Type: the gateway refuses; a type the service does not take: the service does.
        (None, b"RIFF....WAVE", 415, ""),
        ("text/plain", b"I said it well", 415, "RECORDING_TYPE_UNSUPPORTED"),
        ("video/webm", spoken_answer(WEBM_OPUS)[1], 415, "RECORDING_TYPE_UNSUPPORTED"),
        # A text file renamed .wav, and a WAV header with nothing after it.
        ("audio/wav", b"Dear rater, please give me a five.\n" * 40, 400, "RECORDING_UNDECODABLE"),
        ("audio/wav", spoken_answer(WAV)[1][:44], 400, "RECORDING_UNDECODABLE"),
        # WAV bytes said to be WebM.
        ("audio/webm;codecs=opus", spoken_answer(WAV)[1], 400, "RECORDING_UNDECODABLE"),
        # Over the service's per-recording limit (413 from its refusal), over the gateway's upload limit.
        ("audio/wav", b"\0" * (RECORDING_MAX_BYTES + 1), 413, "RECORDING_TOO_LARGE"),
        ("audio/wav", b"\0" * (UPLOAD_MAX_BYTES + 1), 413, ""),
    ]
    for content_type, data, expected, reason in cases:
        status, body = await _upload(client, sitting, item_id, content_type, data)
        assert (status, _reason(body)) == (expected, reason), (content_type, len(data), body)
    # Longer than the item's response window and the margin.
    window = int(item["content"]["responseSeconds"])
    content_type, data = spoken_answer(WEBM_OPUS, seconds=window + 5)
    status, body = await _upload(client, sitting, item_id, content_type, data)
    assert (status, _reason(body)) == (400, "RECORDING_TOO_LONG"), body
    # An item that is not a speaking item, and one not in the module.
    status, body = await _upload(client, sitting, "itm-not-here", *spoken_answer(WEBM_OPUS))
    assert (status, _reason(body)) == (400, "NOT_IN_MODULE"), body
    # Another student's session.
    other = await _sitting(client)
    status, body = await _upload(client, other, other.speaking[0]["itemId"], *spoken_answer(WEBM_OPUS))
    assert status == 200
    status, body = await _call(
        client,
        "POST",
        f"/api/sessions/{other.session_id}/recordings/{other.speaking[0]['itemId']}?requestId=x1",
        {**sitting.headers, "Content-Type": "audio/wav"},
        data=spoken_answer(WAV)[1],
    )
    assert status == 403, body
    # Nothing refused was stored.
    with sqlite3.connect(workdir / "user_data.db") as conn:
        rows = conn.execute("SELECT count(*) FROM recordings WHERE session_id = ?", (sitting.session_id,))
        assert rows.fetchall() == [(0,)]


async def test_an_upload_after_the_deadline_is_refused_with_the_deadline_reason(
    item_service_proc: ServiceProcess, hurried_proc: ServiceProcess
) -> None:
    async with await _client(item_service_proc.address, hurried_proc.address) as client:
        sitting = await _sitting(client)
        item_id = sitting.speaking[0]["itemId"]
        status, early = await _upload(client, sitting, item_id, *spoken_answer(WEBM_OPUS))
        assert status == 200, early
        await asyncio.sleep(5.2)
        status, body = await _upload(client, sitting, item_id, *spoken_answer(WEBM_OPUS))
        assert (status, _reason(body)) == (400, "MODULE_TIME_UP"), body


async def test_the_export_holds_the_recordings_and_erasure_leaves_none(
    client: TestClient[Any, Any], workdir: Path
) -> None:
    sitting = await _sitting(client)
    stored: dict[str, bytes] = {}
    for item, kind in zip(sitting.speaking[:2], (WEBM_OPUS, WAV), strict=True):
        content_type, data = spoken_answer(kind)
        status, recording = await _upload(client, sitting, item["itemId"], content_type, data)
        assert status == 200, recording
        stored[recording["audioRef"]] = data
    async with client.get(f"/api/students/{sitting.student_id}:exportArchive", headers=sitting.headers) as reply:
        assert reply.status == 200 and reply.headers["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(await reply.read()))
    document = json.loads(archive.read("student.json"))
    listed = {r["audio_ref"]: r for s in document["sessions"] for r in s["recordings"]}
    assert set(listed) == set(stored)
    for audio_ref, data in stored.items():
        assert archive.read(listed[audio_ref]["archive_path"]) == data
        assert listed[audio_ref]["sha256"] == hashlib.sha256(data).hexdigest()
    # The JSON export lists them too.
    status, exported = await _call(client, "GET", f"/api/students/{sitting.student_id}:export", sitting.headers)
    assert status == 200 and set(json.loads(exported["jsonDocument"])["sessions"][0]["recordings"][0]) >= {
        "audio_ref"
    }

    status, erased = await _call(client, "POST", f"/api/students/{sitting.student_id}:erase", ADMIN, json={})
    assert status == 200, erased
    assert erased["recordingsErased"] == 2
    assert int(erased["recordingBytesErased"]) == sum(len(d) for d in stored.values())
    with sqlite3.connect(workdir / "user_data.db") as conn:
        left = conn.execute(
            f"SELECT count(*) FROM recordings WHERE recording_id IN ({','.join('?' * len(stored))})", list(stored)
        ).fetchone()
    assert left == (0,)
    for audio_ref in stored:
        status, _ = await _call(client, "GET", f"/api/recordings/{audio_ref}", ADMIN)
        assert status == 404


async def test_the_document_describes_the_upload_with_its_media_types(client: TestClient[Any, Any]) -> None:
    async with client.get("/openapi.json") as reply:
        document = await reply.json()
    operation = document["paths"]["/api/sessions/{session_id}/recordings/{item_id}"]["post"]
    binary = {"schema": {"type": "string", "format": "binary"}}
    assert operation["requestBody"]["content"] == dict.fromkeys(
        ["audio/webm", "audio/mp4", "audio/ogg", "audio/wav"], binary
    )
    assert {"400", "413", "415"} <= set(operation["responses"])
    assert "request_id" in {p["name"] for p in operation["parameters"]}
    archive = document["paths"]["/api/students/{student_id}:exportArchive"]["get"]
    assert archive["responses"]["200"]["content"] == {"*/*": binary}
