"""SIGKILL session_service during 20 concurrent recording uploads: every acknowledged one stays, intact, once."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from launcher.procs import child_pids, processes_ended
from launcher.stack import Stack
from tests.faults.conftest import new_stack
from tests.support.audio import SPEAKING_TASK_TYPES, WAV, WEBM_OPUS, spoken_answer
from tests.support.exam import CLIENT_TIMEOUT, bearer
from tests.support.tokens import token
from toefl_core.auth import Role

UPLOADS = 20


@dataclass
class Upload:
    token: str
    session_id: str
    item_id: str
    content_type: str
    data: bytes
    request_id: str
    status: int | None = None
    reply: Any = None

    @property
    def url(self) -> str:
        return f"/api/sessions/{self.session_id}/recordings/{self.item_id}?requestId={self.request_id}"


@pytest.fixture(scope="module")
def stack(demo_bank_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = new_stack(tmp_path_factory.mktemp("recordings-stack"), demo_bank_template)
    try:
        yield running.start()
    finally:
        running.stop()


async def _send(http: aiohttp.ClientSession, base: str, upload: Upload) -> None:
    headers = {**bearer(upload.token), "Content-Type": upload.content_type}
    try:
        async with http.post(base + upload.url, data=upload.data, headers=headers) as reply:
            upload.status, upload.reply = reply.status, await reply.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError) as exc:
        upload.status, upload.reply = None, repr(exc)


async def _uploads(http: aiohttp.ClientSession, base: str) -> list[Upload]:
    admin = bearer(token(Role.ADMIN, "usr-faults-admin"))
    kinds = [spoken_answer(WEBM_OPUS), spoken_answer(WAV)]

    async def one(n: int) -> Upload:
        user = {
            "username": f"rec-kill-{uuid.uuid4().hex[:10]}",
            "role": "ROLE_STUDENT",
            "password": "say it twice",
        }
        async with http.post(f"{base}/api/users", json=user, headers=admin) as reply:
            created = await reply.json()
            assert reply.status == 200, created
        access = token(Role.STUDENT, created["userId"])
        body = {"scope": "SESSION_SCOPE_SECTION", "section": "SECTION_SPEAKING", "requestId": uuid.uuid4().hex}
        async with http.post(f"{base}/api/sessions", json=body, headers=bearer(access)) as reply:
            session = await reply.json()
            assert reply.status == 200, session
        item = next(i for i in session["currentModule"]["items"] if i["taskType"] in SPEAKING_TASK_TYPES)
        content_type, data = kinds[n % 2]
        return Upload(access, session["sessionId"], item["itemId"], content_type, data, uuid.uuid4().hex)

    return list(await asyncio.gather(*(one(n) for n in range(UPLOADS))))


async def test_sigkill_during_uploads_loses_and_duplicates_no_recording(stack: Stack) -> None:
    assert stack.gateway is not None and stack.session is not None
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
        uploads = await _uploads(http, stack.gateway.url)

        async def staggered(n: int, upload: Upload) -> None:
            assert stack.gateway is not None
            # Spread over the kill: some are acknowledged before it, some are cut off, some never arrive.
            await asyncio.sleep(0.03 * n)
            await _send(http, stack.gateway.url, upload)

        sending = asyncio.gather(*(staggered(n, u) for n, u in enumerate(uploads)))
        # Killed just after a few acknowledgements: some stored and answered, the rest in flight or to come.
        for _ in range(1000):
            if sum(u.status == 200 for u in uploads) >= 3:
                break
            await asyncio.sleep(0.005)
        assert stack.session.proc is not None
        decoders = child_pids(stack.session.proc.pid)
        stack.session.kill()
        await sending
        # Its decoder processes (and multiprocessing's resource tracker) end with it: none is left holding memory.
        assert decoders
        assert await asyncio.to_thread(processes_ended, decoders)
        acknowledged = {u.request_id: u.reply for u in uploads if u.status == 200}
        await asyncio.to_thread(stack.restart_session)
        # Every client retries what it has no answer for, and what it has (a lost reply looks the same to it).
        for upload in uploads:
            await _send(http, stack.gateway.url, upload)
            assert upload.status == 200, upload.reply
            first = acknowledged.get(upload.request_id)
            if first is not None:
                assert upload.reply["audioRef"] == first["audioRef"] and upload.reply["replayed"]
    print(f"recordings acknowledged before the kill: {len(acknowledged)} of {UPLOADS}")
    assert 0 < len(acknowledged) < UPLOADS
    with sqlite3.connect(stack.user_db) as conn:
        rows = conn.execute("SELECT recording_id, session_id, request_id, sha256, data FROM recordings").fetchall()
    by_request = {
        (session_id, request_id): (ref, digest, data) for ref, session_id, request_id, digest, data in rows
    }
    # Once each, every one of them intact.
    assert len(rows) == len(by_request) == UPLOADS
    for upload in uploads:
        ref, digest, data = by_request[upload.session_id, upload.request_id]
        assert ref == upload.reply["audioRef"]
        assert digest == hashlib.sha256(upload.data).hexdigest() == hashlib.sha256(data).hexdigest()
