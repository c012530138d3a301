"""Media through the gateway: prompt-audio GETs and 45-second recording uploads at concurrency 50, beside a plain
aiohttp handler with the same bytes; peak memory of each process (session_service's decoder workers included)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.common import megabytes, peak_memory_mb, percentiles
from item_service.speech import Turn, Voice, synthesize
from launcher.audio import WEBM_OPUS, encode
from launcher.procs import build_demo_bank, child_pids, wait_port
from launcher.stack import Stack
from toefl_core.auth import Role, mint_token

TOKEN_KEY = "bench-token-key-for-the-media-benchmark-000001"
CONCURRENCY = 50
GETS = 3000
UPLOADS = 400
ANSWER_SECONDS = 45.0
INTERVIEW = "TASK_TYPE_TAKE_AN_INTERVIEW"


@dataclass(frozen=True)
class Row:
    name: str
    requests: int
    rps: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float


def _plain_media_server(port_file: str, audio_file: str) -> None:
    """The floor: aiohttp answering the same prompt bytes, and taking an upload's body with nothing behind it."""
    audio = Path(audio_file).read_bytes()

    async def get(request: web.Request) -> web.Response:
        return web.Response(body=audio, content_type="audio/mpeg")

    async def post(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"byteSize": len(body)})

    async def serve() -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/media", get)
        app.router.add_post("/upload", post)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        await asyncio.to_thread(Path(port_file).write_text, str(runner.addresses[0][1]))
        await asyncio.Event().wait()

    asyncio.run(serve())


async def _load(name: str, total: int, size: int, one: Callable[[int], Awaitable[None]]) -> Row:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            started = time.perf_counter()
            await one(n)
            latencies.append((time.perf_counter() - started) * 1e3)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    p50, p99 = percentiles(latencies)
    return Row(name, total, total / elapsed, total * size / elapsed / 1e6, p50, p99)


async def _students(http: aiohttp.ClientSession, base: str) -> list[tuple[dict[str, str], str, str]]:
    """(headers, session id, interview item id) of CONCURRENCY students each in a Speaking section."""
    admin = {"Authorization": f"Bearer {mint_token(TOKEN_KEY, subject='bench-admin', role=Role.ADMIN)}"}

    async def one() -> tuple[dict[str, str], str, str]:
        user = {"username": f"bench-{uuid.uuid4().hex[:10]}", "role": "ROLE_STUDENT", "password": "bench bench"}
        async with http.post(f"{base}/api/users", json=user, headers=admin) as reply:
            created = await reply.json()
        headers = {
            "Authorization": f"Bearer {mint_token(TOKEN_KEY, subject=created['userId'], role=Role.STUDENT)}"
        }
        body = {"scope": "SESSION_SCOPE_SECTION", "section": "SECTION_SPEAKING", "requestId": uuid.uuid4().hex}
        async with http.post(f"{base}/api/sessions", json=body, headers=headers) as reply:
            session = await reply.json()
        item = next(i for i in session["currentModule"]["items"] if i["taskType"] == INTERVIEW)
        return headers, session["sessionId"], item["itemId"]

    return list(await asyncio.gather(*(one() for _ in range(CONCURRENCY))))


async def _measure(gateway: str, plain: str, digest: str, prompt: bytes, recording: bytes) -> list[Row]:
    staff = {"Authorization": f"Bearer {mint_token(TOKEN_KEY, subject='bench-teacher', role=Role.TEACHER)}"}
    content_type = WEBM_OPUS[0]
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    async with aiohttp.ClientSession(connector=connector) as http:
        students = await _students(http, gateway)

        def fetch(url: str, headers: dict[str, str]) -> Callable[[int], Awaitable[None]]:
            async def one(_n: int) -> None:
                async with http.get(url, headers=headers) as reply:
                    if reply.status != 200 or len(await reply.read()) != len(prompt):
                        raise RuntimeError(f"{url}: HTTP {reply.status}")

            return one

        async def upload_plain(_n: int) -> None:
            async with http.post(
                f"{plain}/upload", data=recording, headers={"Content-Type": content_type}
            ) as reply:
                await reply.read()

        async def upload(n: int) -> None:
            headers, session_id, item_id = students[n % len(students)]
            url = f"{gateway}/api/sessions/{session_id}/recordings/{item_id}?requestId={uuid.uuid4().hex}"
            async with http.post(url, data=recording, headers={**headers, "Content-Type": content_type}) as reply:
                if reply.status != 200:
                    raise RuntimeError(f"upload: HTTP {reply.status}: {await reply.text()}")

        return [
            await _load("plain aiohttp GET (same bytes)", GETS, len(prompt), fetch(f"{plain}/media", {})),
            await _load(
                "gateway GET /api/media/{sha256}", GETS, len(prompt), fetch(f"{gateway}/api/media/{digest}", staff)
            ),
            await _load("plain aiohttp POST (same bytes)", UPLOADS, len(recording), upload_plain),
            await _load("gateway POST .../recordings/{item}", UPLOADS, len(recording), upload),
        ]


def _report(rows: list[Row], prompt: int, recording: int, memory: dict[str, float]) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"media benchmark at concurrency {CONCURRENCY} (loopback; client and every process share this machine,")
    print(f"  {os.cpu_count()} cores, load average {load})")
    print(f"  prompt audio {prompt} bytes (MP3); recording {recording} bytes ({ANSWER_SECONDS:g} s WebM/Opus)")
    print(f"  {'case':<38} {'n':>5} {'req/s':>8} {'MB/s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(f"  {r.name:<38} {r.requests:>5} {r.rps:>8.0f} {r.mb_per_s:>7.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}")
    print(f"  peak resident memory (VmHWM): {megabytes(memory)}")


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="media-bench-") as tmp:
        workdir = Path(tmp)
        bank = build_demo_bank(workdir / "item_bank.db")
        with sqlite3.connect(bank) as conn:
            # A prompt of middling size, as a Listening question plays.
            rows = conn.execute("SELECT sha256, data FROM media ORDER BY byte_size").fetchall()
        digest, prompt = rows[len(rows) // 2]
        audio_file = workdir / "prompt.mp3"
        audio_file.write_bytes(prompt)
        pcm, rate = synthesize(
            [Turn(Voice("en-us+f3"), "In my view, a quiet library is the best place to study.")]
        )
        recording = encode(pcm, rate, WEBM_OPUS[1], WEBM_OPUS[2], seconds=ANSWER_SECONDS)
        stack = Stack(workdir / "stack", bank, TOKEN_KEY)
        port_file = workdir / "plain.port"
        plain = multiprocessing.get_context("spawn").Process(
            target=_plain_media_server, args=(str(port_file), str(audio_file))
        )
        plain.start()
        try:
            stack.start()
            assert stack.gateway is not None
            plain_url = f"http://127.0.0.1:{wait_port(port_file, plain.is_alive)}"
            rows_ = asyncio.run(_measure(stack.gateway.url, plain_url, digest, prompt, recording))
            pids = stack.pids()
            # session_service decodes uploads in worker processes of its own (session_service.decoder).
            children = child_pids(pids["session_service"])
            decoders = [child for child in children if b"resource_tracker" not in _cmdline(child)]
            pids |= {f"session_service's decoder {n}": child for n, child in enumerate(decoders, start=1)}
            for tracker in set(children) - set(decoders):
                pids["session_service's resource tracker"] = tracker
            memory = peak_memory_mb(pids)
            _report(rows_, len(prompt), len(recording), memory)
        finally:
            plain.terminate()
            plain.join()
            stack.stop()


if __name__ == "__main__":
    main()
