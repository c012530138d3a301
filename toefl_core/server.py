"""gRPC server bootstrap shared by the services: health, reflection, errors, graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AsyncHealthServicer
from grpc_reflection.v1alpha import reflection

from toefl_core.errors import Unavailable
from toefl_core.grpc_errors import DomainErrorInterceptor, wrapped_handler
from toefl_core.ids import check_ids
from toefl_core.process import settle_after_start

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_GRACE_SECONDS = 5.0
# glibc's mallopt parameter number for the arena cap (malloc.h: M_ARENA_MAX). One arena: CPython allocates its
# small objects itself under the GIL, so threads rarely contend for malloc (2 arenas measured no faster).
M_ARENA_MAX = -8
MALLOC_ARENAS = 1
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# At shutdown the server stops only once no call has arrived for this long: a call that reaches the server as it
# stops is cancelled by gRPC, so a client must first have heard UNAVAILABLE and stopped sending.
QUIET_SECONDS = 0.1
SHUTTING_DOWN = "the service is shutting down; nothing was done; send the request again"
_HEALTH_PREFIX = f"/{health.SERVICE_NAME}/"


class Admission(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Counts the calls in flight and, once closed for shutdown, refuses new ones with UNAVAILABLE before they
    start any work; refuses ids holding control characters (toefl_core.ids) just as early. Health checks pass
    (they report NOT_SERVING by then)."""

    def __init__(self) -> None:
        self._open = True
        self._in_flight = 0
        self._last_arrival = 0.0

    def _enter(self) -> None:
        self._last_arrival = time.monotonic()
        if not self._open:
            # Nothing was done: the same request is safe to send again, elsewhere or here once restarted.
            raise Unavailable(SHUTTING_DOWN, reason="SHUTTING_DOWN", retry_after_seconds=1.0)
        self._in_flight += 1

    def _unary(self, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def admitted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            self._enter()
            try:
                check_ids(request)
                return await behavior(request, context)
            finally:
                self._in_flight -= 1

        return admitted

    def _stream(self, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def admitted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            self._enter()
            try:
                check_ids(request)
                async for message in behavior(request, context):
                    yield message
            finally:
                self._in_flight -= 1

        return admitted

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_HEALTH_PREFIX):
            return handler
        return wrapped_handler(handler, self._unary, self._stream)

    async def close(self, within: float) -> None:
        """Refuse every new call from now on; return once the admitted calls have finished and no call arrived
        for QUIET_SECONDS, or after `within` seconds."""
        self._open = False
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self._in_flight == 0 and time.monotonic() - self._last_arrival >= QUIET_SECONDS:
                return
            await asyncio.sleep(QUIET_SECONDS / 5)


class _GenericHandlersOnly:
    """The server as the registering functions see it: methods they register are served by a generic handler.

    grpc.aio's serving loop keeps a pending call request per registered method and, at every call that arrives,
    waits anew on all of them (about fifty for session_service): a cost on every call that grows with the
    service's RPCs (docs/PERFORMANCE.md). A generic handler finds its method in a table of its own."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, service_name: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        """The same methods as a generic handler. The generated `add_*_to_server` functions have added one for
        them just before, which answers first; this one serves methods registered only by name."""
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service_name, handlers),))


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: AsyncHealthServicer
    port: int
    address: str
    admission: Admission


async def start_server(
    *,
    address: str,
    register: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),  # type: ignore[type-arg]
) -> RunningServer:
    """Bind (port 0 picks a free port; the bound one is returned), register, enable health and reflection."""
    admission = Admission()
    server = grpc.aio.server(
        # DomainErrorInterceptor outermost: it turns the admission's refusal into its status like any other.
        interceptors=[DomainErrorInterceptor(), admission, *interceptors],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    # Typed as the server it stands for: it has the two methods the registering functions call.
    registrar = cast(grpc.aio.Server, _GenericHandlersOnly(server))
    register(registrar)
    health_servicer = AsyncHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registrar)
    reflection.enable_server_reflection([*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], registrar)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    host = address.rsplit(":", 1)[0]
    await server.start()
    for name in (*service_names, health.OVERALL_HEALTH):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(
        server=server, health=health_servicer, port=port, address=f"{host}:{port}", admission=admission
    )


async def stop_server(running: RunningServer, grace: float = DEFAULT_GRACE_SECONDS) -> None:
    """Stop accepting calls, let the accepted ones finish within `grace`, then stop the server.

    A new call is refused with UNAVAILABLE before it starts, so a client may send it again elsewhere or later;
    gRPC itself would cancel a call arriving while the server stops, which a client cannot tell from its own.
    """
    # NOT_SERVING first, so that load balancers and the gateway stop sending new calls during the grace period.
    await running.health.enter_graceful_shutdown()
    started = time.monotonic()
    await running.admission.close(grace)
    await running.server.stop(max(0.0, grace - (time.monotonic() - started)))


async def serve_forever(
    *,
    name: str,
    address: str,
    register: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    port_file: Path | None = None,
    grace: float = DEFAULT_GRACE_SECONDS,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully and call on_shutdown (e.g. dispose the engine).

    `background` jobs run beside the server from the start until every call the server accepted has finished.
    """
    running = await start_server(address=address, register=register, service_names=service_names)
    if port_file is not None:
        # Written atomically, so a test waiting for the file never reads half a number.
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(running.port))
        tmp.replace(port_file)
    settle_after_start()
    log.info("%s serving on %s", name, running.address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(job()) for job in background]
    await stop.wait()
    log.info("%s shutting down (grace %.1fs)", name, grace)
    # The server first: it stops accepting, and the calls it already took finish within the grace period. They
    # may need the background jobs (an answer is acknowledged only once the group commit wrote it), which
    # therefore stop only after the server has.
    await stop_server(running, grace)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if on_shutdown is not None:
        await on_shutdown()
    log.info("%s stopped", name)


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a service process's main coroutine to its end on uvloop, asyncio's loop on libuv: the same API, less
    CPU for each request's wakeups and callbacks (docs/PERFORMANCE.md)."""
    # Imported here: only a serving process loads libuv, and a test can tell one that does from its memory map.
    import uvloop

    return uvloop.run(main)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX does); True if applied. Call before threads start.

    glibc gives each thread that allocates its own arena, up to 8 per core, and a service's worker threads
    (database writer and readers, gRPC) each fragment one: session_service peaked ~20 MB higher in the exam bench.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        # Not glibc (musl, macOS): nothing to cap.
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
