"""The whole platform for the security tests: real item_service, session_service and gateway processes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from launcher.gateway import GatewayProcess
from launcher.procs import ServiceProcess
from tests.session_service.conftest import session_process
from tests.support.tokens import TEST_TOKEN_KEY


@dataclass
class Stack:
    item: ServiceProcess
    session: ServiceProcess
    gateway: GatewayProcess
    channels: dict[str, grpc.Channel]

    def logs(self) -> str:
        """Everything the three processes have logged so far."""
        return "\n".join((self.item.log_text(), self.session.log_text(), self.gateway.log_text()))


@contextmanager
def running_stack(
    item: ServiceProcess,
    workdir: Path,
    *,
    session_env: Mapping[str, str] | None = None,
    gateway_env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """A session_service (with `session_env`) with a user database of its own, and a gateway (with `gateway_env`)
    in front of it and `item`."""
    session = session_process(workdir / "session", item_address=item.address, env=session_env).start()
    gateway = GatewayProcess(
        workdir=workdir / "gateway",
        item_address=item.address,
        session_address=session.address,
        token_key=TEST_TOKEN_KEY,
        env=dict(gateway_env or {}),
    )
    channels = {
        "item_service": grpc.insecure_channel(item.address),
        "session_service": grpc.insecure_channel(session.address),
    }
    try:
        gateway.start()
        status, body = gateway.request("GET", "/readyz")
        assert status == 200, body
        yield Stack(item=item, session=session, gateway=gateway, channels=channels)
    finally:
        for channel in channels.values():
            channel.close()
        gateway.terminate()
        session.terminate()


@pytest.fixture(scope="module")
def stack(item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(item_service_proc, tmp_path_factory.mktemp("security")) as running:
        yield running
