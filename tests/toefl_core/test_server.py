"""The server bootstrap shared by the services: graceful shutdown and the process tuning of their entry points."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import platform
from pathlib import Path

import grpc
import pytest

from launcher.procs import ServiceProcess
from tests.support.exam import refusal
from toefl_core.server import SHUTTING_DOWN, limit_malloc_arenas, run_event_loop, start_server, stop_server


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the arena cap is a glibc setting")
def test_arena_cap_is_applied_on_glibc() -> None:
    assert limit_malloc_arenas() is True


def test_each_service_entry_point_caps_arenas_before_serving() -> None:
    # The cap must be set before the services start their threads: their main() calls it right after logging.
    for package in ("item_service", "session_service", "gateway"):
        source = inspect.getsource(importlib.import_module(f"{package}.__main__").main)
        assert "limit_malloc_arenas()" in source, package


def test_run_event_loop_runs_the_coroutine_on_uvloop() -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_event_loop(loop_module()).startswith("uvloop")


def test_each_service_serves_on_uvloop(item_service_proc: ServiceProcess) -> None:
    for package in ("item_service", "session_service", "gateway"):
        source = inspect.getsource(importlib.import_module(f"{package}.__main__"))
        # Spaces and line breaks aside: the formatter may split the call.
        assert "run_event_loop(serve(" in "".join(source.split()), package
    # And a running one has libuv's loop loaded (its extension module mapped into the process).
    assert item_service_proc.proc is not None
    maps = Path(f"/proc/{item_service_proc.proc.pid}/maps").read_text()
    assert "uvloop/loop." in maps


async def test_shutdown_finishes_accepted_calls_and_refuses_new_ones_with_unavailable() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        entered.set()
        await release.wait()
        return b"done"

    async def fast(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return b"fast"

    def register(server: grpc.aio.Server) -> None:
        handlers = {
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
            "Fast": grpc.unary_unary_rpc_method_handler(fast),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Calls", handlers),))

    running = await start_server(address="127.0.0.1:0", register=register, service_names=["test.Calls"])
    async with grpc.aio.insecure_channel(running.address) as channel:

        def method(name: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
            return channel.unary_unary(f"/test.Calls/{name}", request_serializer=None, response_deserializer=None)

        accepted = asyncio.ensure_future(method("Slow")(b"", timeout=10))
        await entered.wait()
        stopping = asyncio.ensure_future(stop_server(running, grace=5))
        await asyncio.sleep(0.05)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await method("Fast")(b"", timeout=5)
        assert (refused.value.code(), refused.value.details()) == (grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
        found = refusal(refused.value)
        assert (found.reason, found.retry_after) == ("SHUTTING_DOWN", 1.0), found
        assert not stopping.done()
        release.set()
        assert await accepted == b"done"
        await stopping


@pytest.mark.parametrize("generic_too", [True, False], ids=["as generated code registers", "registered only"])
async def test_methods_registered_by_name_are_served_with_the_admission_and_the_errors(generic_too: bool) -> None:
    # The servicers' generated functions register each method by name as well as in a generic handler; the server
    # serves them through generic handlers only (start_server), and must lose none of them.
    async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    def register(server: grpc.aio.Server) -> None:
        handlers = {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
        if generic_too:
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Named", handlers),))
        # grpc-stubs lacks the method the generated code calls.
        server.add_registered_method_handlers("test.Named", handlers)  # type: ignore[attr-defined]

    running = await start_server(address="127.0.0.1:0", register=register, service_names=["test.Named"])
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:

            def method(name: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
                path = f"/test.Named/{name}"
                return channel.unary_unary(path, request_serializer=None, response_deserializer=None)

            echo_call = method("Echo")
            assert await echo_call(b"hello", timeout=5) == b"hello"
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await method("Other")(b"", timeout=5)
            assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED
            # The admission wraps them as it wraps every method: once closed, a call is refused before it starts.
            await running.admission.close(within=0)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await echo_call(b"late", timeout=5)
            assert (refused.value.code(), refused.value.details()) == (grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)
    finally:
        await stop_server(running, grace=0)
