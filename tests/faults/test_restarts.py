"""An item_service deploy and a gateway restart in the middle of an exam: answering goes on, nothing is lost."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from launcher.stack import Stack
from tests.faults.exactly_once import check_exactly_once, fault_round
from tests.support.exam import CLIENT_TIMEOUT, UNTIL_STOPPED, Student, answer_stream, call
from tests.support.tokens import token
from toefl_core.auth import Role

STUDENTS = 40
UNAVAILABLE = 14
# Reads the bank while item_service is down: staff, since students do not read the bank directly.
TEACHER = token(Role.TEACHER, "usr-faults-teacher")


async def until_ok(http: aiohttp.ClientSession, method: str, url: str, access: str, body: object = None) -> object:
    """Call until 200: the gateway and session_service find a restarted item_service again on their own."""
    deadline = time.monotonic() + 30
    while True:
        status, reply = await call(http, method, url, access, body)
        if status == 200 or time.monotonic() > deadline:
            assert status == 200, reply
            return reply
        await asyncio.sleep(0.2)


async def test_item_service_deploy_mid_module(stack: Stack, students: list[Student]) -> None:
    assert stack.item is not None and stack.gateway is not None
    base = stack.gateway.url
    router, answering = students[0], students[1:]
    item_id = router.answers[0][0]
    stop = asyncio.Event()
    stream = asyncio.create_task(answer_stream(lambda: base, answering, UNTIL_STOPPED, stop))
    await asyncio.sleep(0.3)
    # As `make deploy` recreates the container: SIGTERM, then a new process on the same address.
    port = stack.item.port
    await asyncio.to_thread(stack.item.terminate)
    down_from = time.monotonic()
    advance = {"requestId": uuid.uuid4().hex}
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as http:
        status, body = await call(http, "GET", f"{base}/api/items/{item_id}", TEACHER)
        assert (status, body["code"]) == (503, UNAVAILABLE), body
        status, body = await call(
            http, "POST", f"{base}/api/sessions/{router.session_id}:advance", router.token, advance
        )
        assert (status, body["code"]) == (503, UNAVAILABLE), body
        assert "item" in body["message"].lower(), body
        await asyncio.sleep(0.5)
        down_until = time.monotonic()
        stack.item.env["ITEM_SERVICE_ADDR"] = f"127.0.0.1:{port}"
        await asyncio.to_thread(stack.item.start)
        item = await until_ok(http, "GET", f"{base}/api/items/{item_id}", TEACHER)
        session = await until_ok(
            http, "POST", f"{base}/api/sessions/{router.session_id}:advance", router.token, advance
        )
    assert isinstance(item, dict) and item["itemId"] == item_id
    assert isinstance(session, dict) and session["currentModule"]["stage"] in (
        "MODULE_STAGE_LOWER",
        "MODULE_STAGE_UPPER",
    )
    await asyncio.sleep(0.3)
    stop.set()
    attempts = await stream
    # Answers need nothing from item_service: none failed, during the outage either.
    assert [(a.status, a.reply) for a in attempts if not a.acknowledged] == []
    during = sum(down_from < a.finished < down_until for a in attempts)
    assert during > 0
    counts = check_exactly_once(attempts, stack.user_db)
    print(f"deploy: {counts}, {during} acknowledged while item_service was down ({down_until - down_from:.2f}s)")


async def test_gateway_killed_mid_exam(stack: Stack, students: list[Student]) -> None:
    assert stack.gateway is not None
    counts = await fault_round(stack, students[1:], 0.4, stack.gateway.kill, stack.start_gateway)
    print(f"gateway restart: {counts}")
