"""/readyz and the API gate: backends SERVING, each owning its own database, no two sharing one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.backends import Backend
from tests.gateway.backend import GatewayTestBackend
from tests.gateway.conftest import gateway_settings
from tests.support.tokens import token
from toefl_core.auth import Role

pytestmark = pytest.mark.asyncio(loop_scope="module")

AUTH = {"Authorization": f"Bearer {token(Role.STUDENT)}"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def alpha(gwtest_pb: ModuleType) -> AsyncIterator[GatewayTestBackend]:
    running = await GatewayTestBackend(gwtest_pb, name="alpha", owner="item_bank", fingerprint="fp-a").start()
    yield running
    await running.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def beta(gwtest_pb: ModuleType) -> AsyncIterator[GatewayTestBackend]:
    running = await GatewayTestBackend(gwtest_pb, name="beta", owner="user_data", fingerprint="fp-b").start()
    yield running
    await running.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client(
    gwtest_pb: ModuleType, alpha: GatewayTestBackend, beta: GatewayTestBackend
) -> AsyncIterator[TestClient[Any, Any]]:
    service = gwtest_pb.DESCRIPTOR.services_by_name["GatewayTest"]
    backends = [
        Backend("alpha", alpha.address, (service,), "item_bank"),
        Backend("beta", beta.address, (), "user_data"),
    ]
    async with TestClient(TestServer(create_app(gateway_settings(), backends))) as test_client:
        yield test_client


async def readyz(client: TestClient[Any, Any]) -> tuple[int, dict[str, Any]]:
    async with client.get("/readyz") as response:
        return response.status, await response.json()


async def api(client: TestClient[Any, Any]) -> tuple[int, dict[str, Any]]:
    async with client.get("/v1/things/t1", headers=AUTH) as response:
        return response.status, await response.json()


async def test_ready_when_wired_right(client: TestClient[Any, Any]) -> None:
    status, body = await readyz(client)
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["backends"]["alpha"]["owner"] == "item_bank"
    assert body["backends"]["beta"]["owner"] == "user_data"
    assert (await api(client))[0] == 200


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("fingerprint", "fp-a", "alpha and beta serve the same database (fingerprint fp-a)"),
        ("owner", "item_bank", "beta serves a database owned by 'item_bank'"),
        ("expected_owner", "item_bank", "beta expects owner 'item_bank' but must serve 'user_data'"),
    ],
    ids=["colliding fingerprints", "wrong owner", "wrong expectation"],
)
async def test_miswiring_is_503_and_refuses_the_api(
    client: TestClient[Any, Any], beta: GatewayTestBackend, field: str, value: str, needle: str
) -> None:
    original = getattr(beta.report, field)
    setattr(beta.report, field, value)
    try:
        status, body = await readyz(client)
        assert status == 503
        assert body["code"] == 14 and needle in body["message"]
        status, body = await api(client)
        assert status == 503
        assert needle in body["message"] and "mis-wired" in body["message"]
    finally:
        setattr(beta.report, field, original)
    assert (await readyz(client))[0] == 200
    assert (await api(client))[0] == 200


async def test_a_stopped_service_makes_readyz_503_but_not_the_api(
    client: TestClient[Any, Any], beta: GatewayTestBackend
) -> None:
    port = int(beta.address.rsplit(":", 1)[1])
    await beta.stop()
    try:
        status, body = await readyz(client)
        assert status == 503
        assert "beta" in body["message"] and "unreachable" in body["message"]
        # Nothing is known to be mis-wired: the other backend's routes keep working.
        assert (await api(client))[0] == 200
    finally:
        await beta.start(port)
    # The gateway's channel reconnects with a backoff; wait for the condition rather than a fixed time.
    for _attempt in range(100):
        if (await readyz(client))[0] == 200:
            break
        await asyncio.sleep(0.1)
    assert (await readyz(client))[0] == 200


async def test_a_service_that_is_not_configured_makes_readyz_503(
    gwtest_pb: ModuleType, alpha: GatewayTestBackend
) -> None:
    service = gwtest_pb.DESCRIPTOR.services_by_name["GatewayTest"]
    backends = [Backend("alpha", alpha.address, (service,), "item_bank"), Backend("beta", "", (), "user_data")]
    async with TestClient(TestServer(create_app(gateway_settings(), backends))) as client:
        status, body = await readyz(client)
        assert status == 503
        assert "beta is not configured" in body["message"]


async def test_routes_of_an_unconfigured_backend_are_503(gwtest_pb: ModuleType) -> None:
    service = gwtest_pb.DESCRIPTOR.services_by_name["GatewayTest"]
    async with TestClient(
        TestServer(create_app(gateway_settings(), [Backend("alpha", "", (service,))]))
    ) as client:
        status, body = await api(client)
        assert status == 503
        assert body["code"] == 14 and "alpha is not configured" in body["message"]
