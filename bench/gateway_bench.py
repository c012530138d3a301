"""Gateway overhead: plain aiohttp JSON, a direct grpc.aio GetItem, and GET /api/items/{id} through the gateway."""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc

from bench.common import plain_server
from launcher.gateway import GatewayProcess
from launcher.procs import build_demo_bank, item_service_process, wait_port
from toefl_core.auth import Role, auth_metadata, mint_token

TOKEN_KEY = "bench-token-key-for-the-gateway-benchmark-0001"
CONCURRENCY = (1, 64)
REQUESTS = {1: 2000, 64: 8000}
WARMUP = 300


@dataclass(frozen=True)
class Result:
    name: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float


async def _load(name: str, concurrency: int, one: Callable[[], Awaitable[None]]) -> Result:
    for _ in range(WARMUP):
        await one()
    total = REQUESTS[concurrency]
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await one()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return Result(name, concurrency, len(latencies) / elapsed, quantiles[49] * 1e3, quantiles[98] * 1e3)


async def _measure(item_address: str, gateway_port: int, plain_port: int) -> list[Result]:
    # A teacher: students do not read the item bank (item_service refuses them).
    token = mint_token(TOKEN_KEY, subject="bench", role=Role.TEACHER, ttl_seconds=3600)
    metadata = auth_metadata(token)
    results: list[Result] = []
    async with grpc.aio.insecure_channel(item_address) as channel:
        stub = item_service_pb2_grpc.ItemServiceStub(channel)
        listed = await stub.ListItems(item_service_pb2.ListItemsRequest(page_size=1), metadata=metadata)
        item_id = listed.items[0].item_id
        request = item_service_pb2.GetItemRequest(item_id=item_id, view=item_pb2.ITEM_VIEW_STUDENT)

        async def direct() -> None:
            await stub.GetItem(request, metadata=metadata, timeout=10)

        connector = aiohttp.TCPConnector(limit=max(CONCURRENCY) * 2)
        async with aiohttp.ClientSession(connector=connector) as http:
            headers = {"Authorization": f"Bearer {token}"}

            def fetch(url: str) -> Callable[[], Awaitable[None]]:
                async def one() -> None:
                    async with http.get(url, headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"{url}: HTTP {response.status}")

                return one

            plain = fetch(f"http://127.0.0.1:{plain_port}/api/items/{item_id}")
            gateway = fetch(f"http://127.0.0.1:{gateway_port}/api/items/{item_id}")
            for concurrency in CONCURRENCY:
                results.append(await _load("plain aiohttp JSON", concurrency, plain))
                results.append(await _load("direct grpc.aio GetItem", concurrency, direct))
                results.append(await _load("gateway GET /api/items/{id}", concurrency, gateway))
    return results


def _report(results: list[Result]) -> None:
    print("gateway benchmark (loopback; client, gateway and item_service share this machine's cores)")
    print(f"  {'case':<30} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(f"  {r.name:<30} {r.concurrency:>4} {r.rps:>9.0f} {r.p50_ms:>8.3f} {r.p99_ms:>8.3f}")
    by = {(r.name.split()[0], r.concurrency): r for r in results}
    high = max(CONCURRENCY)
    ratio = by[("gateway", high)].rps / by[("direct", high)].rps
    added = by[("gateway", 1)].p50_ms - by[("direct", 1)].p50_ms
    floor = by[("plain", 1)].p50_ms
    print(f"  throughput gateway / direct gRPC at concurrency {high}: {ratio:.2f} (target >= 0.50)")
    print(f"  added p50 at concurrency 1, gateway - direct gRPC: {added:.3f} ms (target <= 1 ms)")
    print(f"    of which the HTTP client+server floor (plain aiohttp p50): {floor:.3f} ms")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        workdir = Path(tmp)
        bank = build_demo_bank(workdir / "item_bank.db")
        item = item_service_process(workdir, bank=bank, token_key=TOKEN_KEY).start()
        gateway = GatewayProcess(
            workdir, item_address=item.address, session_address="", token_key=TOKEN_KEY, log_level="WARNING"
        )
        plain_port_file = workdir / "plain.port"
        plain = multiprocessing.get_context("spawn").Process(target=plain_server, args=(str(plain_port_file),))
        plain.start()
        try:
            gateway.start()
            plain_port = wait_port(plain_port_file, plain.is_alive)
            _report(asyncio.run(_measure(item.address, gateway.port, plain_port)))
        finally:
            plain.terminate()
            plain.join()
            gateway.terminate(timeout=30)
            item.terminate()


if __name__ == "__main__":
    main()
