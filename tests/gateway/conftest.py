"""Fixtures of the gateway tests: the test-only proto compiled once, settings, in-process gateways."""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from google.api import annotations_pb2  # type: ignore[import-untyped]
from grpc_tools import protoc  # type: ignore[import-untyped]

from gateway.app import create_app
from gateway.config import GatewaySettings
from launcher.procs import ServiceProcess, session_service_process
from tests.support.tokens import TEST_TOKEN_KEY

PROTO_ROOT = Path(__file__).parent / "protos"
ALLOWED_ORIGIN = "http://allowed.example"
MAX_BODY_BYTES = 4096


@pytest.fixture(scope="session")
def gwtest_pb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """gwtest.v1.gwtest_pb2, compiled from the test-only proto into a temporary directory on sys.path."""
    out = tmp_path_factory.mktemp("gwtest_gen")
    googleapis = Path(annotations_pb2.__file__).parents[2]
    well_known = Path(str(resources.files("grpc_tools") / "_proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{googleapis}",
        f"-I{well_known}",
        f"--python_out={out}",
        "gwtest/v1/gwtest.proto",
    ]
    assert protoc.main(args) == 0, "protoc failed on the test-only proto"
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("gwtest.v1.gwtest_pb2")
    finally:
        sys.path.remove(str(out))


def gateway_settings(**overrides: object) -> GatewaySettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "item_service_addr": "",
        "session_service_addr": "",
        "cors_origins": (ALLOWED_ORIGIN,),
        "max_body_bytes": MAX_BODY_BYTES,
        "default_timeout": 10.0,
        "max_timeout": 60.0,
        "ready_interval": 0.2,
        "token_key": TEST_TOKEN_KEY,
        "environment": "development",
    }
    values.update(overrides)
    return GatewaySettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def session_proc(
    item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A session_service of the module's own, on its own user database; a module may define another."""
    proc = session_service_process(
        tmp_path_factory.mktemp("gateway-session"),
        item_address=item_service_proc.address,
        token_key=TEST_TOKEN_KEY,
    ).start()
    try:
        yield proc
    finally:
        proc.terminate()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client(
    item_service_proc: ServiceProcess, session_proc: ServiceProcess
) -> AsyncIterator[TestClient[Any, Any]]:
    """The real gateway app in front of the real services, in the test's event loop."""
    settings = gateway_settings(
        item_service_addr=item_service_proc.address, session_service_addr=session_proc.address
    )
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client
