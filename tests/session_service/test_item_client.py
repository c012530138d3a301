"""The item_service client's first connection at start: made before any student needs it, or a clear warning."""

from __future__ import annotations

import logging
import socket

import pytest

from launcher.procs import ServiceProcess
from session_service.item_client import ItemClient
from tests.support.tokens import TEST_TOKEN_KEY


async def test_the_client_connects_to_item_service_at_start(
    item_service_proc: ServiceProcess, caplog: pytest.LogCaptureFixture
) -> None:
    client = ItemClient(address=item_service_proc.address, token_key=TEST_TOKEN_KEY, retry_seconds=1)
    try:
        with caplog.at_level(logging.INFO, logger="session_service.item_client"):
            await client.connect(within_seconds=30)
    finally:
        await client.close()
    assert f"connected to the item service at {item_service_proc.address}" in caplog.text


async def test_an_unreachable_item_service_is_a_warning_and_start_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A port nobody listens on: bound, never listened to, so nothing can take it meanwhile.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        client = ItemClient(address=address, token_key=TEST_TOKEN_KEY, retry_seconds=1)
        try:
            with caplog.at_level(logging.INFO, logger="session_service.item_client"):
                await client.connect(within_seconds=0.5)
        finally:
            await client.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"item service at {address} not reachable 0.5 s after start; calls that need it retry, then answer 503"
    ]
