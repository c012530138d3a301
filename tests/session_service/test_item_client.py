"""The item_service client: its first connection at start, and many modules assembled in few calls."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from toefl.item.v1 import item_pb2, item_service_pb2

from launcher.procs import ServiceProcess
from session_service import item_client
from session_service.item_client import ItemClient, module_request
from tests.support.tokens import TEST_TOKEN_KEY
from toefl_core.errors import FailedPrecondition


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


async def test_modules_are_assembled_in_calls_of_at_most_the_limit_each_refusal_in_its_place(
    item_service_proc: ServiceProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_client, "ASSEMBLE_BATCH_LIMIT", 2)
    count = item_service_pb2.TaskCount
    email = item_service_pb2.ModuleSpec(task_counts=[count(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL, count=1)])
    exhausted = item_service_pb2.ModuleSpec(
        task_counts=[count(task_type=item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION, count=1000)]
    )
    requests = [
        module_request(spec=email, exclude_item_ids=[], seed=1),
        module_request(spec=exhausted, exclude_item_ids=[], seed=2),
        module_request(spec=email, exclude_item_ids=[], seed=3),
    ]
    client = ItemClient(address=item_service_proc.address, token_key=TEST_TOKEN_KEY, retry_seconds=1)
    sizes: list[int] = []
    send = client._stub.AssembleModules

    def counted(request: item_service_pb2.AssembleModulesRequest, **kwargs: Any) -> Any:
        sizes.append(len(request.requests))
        return send(request, **kwargs)

    monkeypatch.setattr(client._stub, "AssembleModules", counted)
    try:
        together = await client.assemble_modules(requests)
        alone = [await client.assemble_module(requests[n]) for n in (0, 2)]
    finally:
        await client.close()
    assert sizes == [2, 1]
    assert [together[0], together[2]] == alone
    refusal = together[1]
    assert isinstance(refusal, FailedPrecondition) and refusal.reason == "ITEM_POOL_EXHAUSTED"
    assert "TASK_TYPE_ACADEMIC_DISCUSSION" in refusal.message
