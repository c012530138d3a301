"""user_data.db on a small filesystem filled while students answer: 429 with a message, recovery, nothing lost."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from launcher.stack import Stack
from tests.faults.conftest import new_stack
from tests.faults.exactly_once import check_exactly_once
from tests.support.exam import CLIENT_TIMEOUT, UNTIL_STOPPED, Attempt, Student, answer_stream, call, put, retry

STUDENTS = 20
# Room for the database of 20 students and its WAL; the test fills the rest.
DISK_SIZE = "48m"
# Answers sent one by one on the full disk until one is refused: a bound, not an expectation.
MAX_PROBES = 5000
# What a full disk may answer: RESOURCE_EXHAUSTED (429) or UNAVAILABLE (503), never 500 or a broken connection.
FULL_STATUSES = {429, 503}


def mount_tmpfs(directory: Path, size: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("disk-full test needs root to mount a small tmpfs for user_data.db (mount -t tmpfs)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here ({done.stderr.strip()}); disk-full test not run")


@pytest.fixture(scope="module")
def stack(demo_bank_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The fault stack with session_service's folder (user_data.db, its WAL, its log) on a small tmpfs."""
    running = new_stack(tmp_path_factory.mktemp("stack"), demo_bank_template)
    mount_tmpfs(running.user_db.parent, DISK_SIZE)
    try:
        yield running.start()
    finally:
        running.stop()
        subprocess.run(["umount", str(running.user_db.parent)], check=True)


def fill(directory: Path) -> Path:
    """A ballast file that takes every free byte of the filesystem (large writes, then page-sized ones)."""
    ballast = directory / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096, 512):
            try:
                while True:
                    os.write(fd, b"\1" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return ballast


async def probe_until_refused(base: str, student: Student) -> list[Attempt]:
    """Answers one at a time until the full disk refuses one (the WAL may first absorb a few)."""
    probes: list[Attempt] = []
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
        for n in range(MAX_PROBES):
            item_id, answer = student.answers[n % len(student.answers)]
            attempt = Attempt(student, item_id, answer, uuid.uuid4().hex)
            probes.append(attempt)
            await put(http, base, attempt)
            if not attempt.acknowledged:
                break
    return probes


def integrity(database: Path) -> str:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


async def test_disk_full_is_429_with_a_message_then_recovers_losing_nothing(
    stack: Stack, students: list[Student]
) -> None:
    assert stack.gateway is not None and stack.session is not None
    base = stack.gateway.url
    stop = asyncio.Event()
    stream = asyncio.create_task(answer_stream(lambda: base, students, UNTIL_STOPPED, stop))
    await asyncio.sleep(0.5)
    ballast = await asyncio.to_thread(fill, stack.user_db.parent)
    await asyncio.sleep(1.0)
    stop.set()
    attempts = await stream
    attempts += await probe_until_refused(base, students[0])

    refused = [a for a in attempts if not a.acknowledged]
    assert refused, f"the full disk refused none of {len(attempts)} answers"
    statuses = Counter(a.status for a in refused)
    assert set(statuses) <= FULL_STATUSES, {(a.status, str(a.reply)) for a in refused}
    messages = Counter(a.reply["message"] for a in refused)
    assert {a.reply["code"] for a in refused} <= {8, 14}, refused[0].reply
    assert all("database" in a.reply["message"] for a in refused), refused[0].reply
    assert any(a.status == 429 and "full" in a.reply["message"] for a in refused), refused[0].reply
    # Reading what was saved does not need space: the student can still resume.
    status, session = await asyncio.wait_for(_get_session(base, students[0]), timeout=CLIENT_TIMEOUT.total)
    assert status == 200, session
    counts = check_exactly_once(attempts, stack.user_db)

    ballast.unlink()
    await retry(base, refused)
    assert [a.reply for a in refused if not a.acknowledged] == []
    # A refusal said "nothing was saved": its retry is stored now, not replayed.
    assert [a.request_id for a in refused if a.reply["replayed"]] == []
    after = check_exactly_once(attempts, stack.user_db)
    assert after["acknowledged"] == len(attempts)
    assert integrity(stack.user_db) == "ok"
    print(f"disk full: {counts}, refused {dict(statuses)}: {dict(messages)}; every refused answer stored on retry")


async def _get_session(base: str, student: Student) -> tuple[int, object]:
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
        return await call(http, "GET", f"{base}/api/sessions/{student.session_id}", student.token)
