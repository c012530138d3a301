"""gRPC server bootstrap shared by the services: health, reflection, errors, graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AsyncHealthServicer
from grpc_reflection.v1alpha import reflection

from toefl_core.grpc_errors import DomainErrorInterceptor

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 5.0
# glibc's mallopt parameter number for the arena cap (malloc.h: M_ARENA_MAX). One arena: CPython allocates its
# small objects itself under the GIL, so threads rarely contend for malloc (2 arenas measured no faster).
M_ARENA_MAX = -8
MALLOC_ARENAS = 1
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: AsyncHealthServicer
    port: int
    address: str


async def start_server(
    *,
    address: str,
    register: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),  # type: ignore[type-arg]
) -> RunningServer:
    """Bind (port 0 picks a free port; the bound one is returned), register, enable health and reflection."""
    server = grpc.aio.server(
        interceptors=[DomainErrorInterceptor(), *interceptors],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    register(server)
    health_servicer = AsyncHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    host = address.rsplit(":", 1)[0]
    await server.start()
    for name in (*service_names, health.OVERALL_HEALTH):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server=server, health=health_servicer, port=port, address=f"{host}:{port}")


async def stop_server(running: RunningServer, grace: float = DEFAULT_GRACE_SECONDS) -> None:
    # NOT_SERVING first, so that load balancers and the gateway stop sending new calls during the grace period.
    await running.health.enter_graceful_shutdown()
    await running.server.stop(grace)


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
    """Run until SIGTERM or SIGINT, then shut down gracefully and call on_shutdown (e.g. dispose the engine)."""
    running = await start_server(address=address, register=register, service_names=service_names)
    if port_file is not None:
        # Written atomically, so a test waiting for the file never reads half a number.
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(running.port))
        tmp.replace(port_file)
    log.info("%s serving on %s", name, running.address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(job()) for job in background]
    await stop.wait()
    log.info("%s shutting down (grace %.1fs)", name, grace)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await stop_server(running, grace)
    if on_shutdown is not None:
        await on_shutdown()
    log.info("%s stopped", name)


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
