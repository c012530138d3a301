"""Helpers shared by the benchmarks and the fault tests: the whole stack as child processes, reference loads."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.procs import REPO_ROOT, ServiceProcess, ServiceStartError, service_process

DEMO_SEED = 2026
RAW_COMMITS = 2000
ADAPTIVE = ("SECTION_READING", "SECTION_LISTENING")


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of `samples` (any unit), nearest-rank."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def proc_status_mb(pid: int, key: str) -> float:
    """A memory line of /proc/<pid>/status in MB: VmRSS (now) or VmHWM (peak resident)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without database URLs or service addresses, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_ADDR", "DATABASE_URL"))}
    env.update(extra)
    return env


def build_demo_bank(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "item_service", "build-demo-bank", "--seed", str(DEMO_SEED), "--out", str(out)],
        cwd=REPO_ROOT,
        env=clean_env(TOEFL_ENV="development"),
        check=True,
        capture_output=True,
    )
    return out


def wait_port(path: Path, proc_alive: Callable[[], bool], timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        if not proc_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"no port in {path}")
        time.sleep(0.02)
    return int(path.read_text())


def plain_server(port_file: str) -> None:
    """A JSON handler with no gRPC behind it: the floor of aiohttp server + client on this machine."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"itemId": request.match_info["item_id"], "ok": True})

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/api/items/{item_id}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        await asyncio.to_thread(Path(port_file).write_text, str(runner.addresses[0][1]))
        await asyncio.Event().wait()

    asyncio.run(serve())


def raw_sqlite_commits(path: Path, commits: int = RAW_COMMITS) -> float:
    """Commits per second of one INSERT per transaction, WAL and synchronous=FULL as session_service runs."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE responses (id INTEGER PRIMARY KEY, session_id TEXT, item_id TEXT, revision INTEGER,"
        " answer_json TEXT, request_id TEXT UNIQUE, saved_ms INTEGER)"
    )
    start = time.perf_counter()
    for n in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO responses (session_id, item_id, revision, answer_json, request_id, saved_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ("ses-bench", f"itm-{n % 20}", n, '{"choiceIndex": 1}', uuid.uuid4().hex, int(time.time() * 1000)),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return commits / elapsed


@dataclass
class GatewayProcess:
    """`python -m gateway` as a child process on port 0; `url` is where it actually listens."""

    env: dict[str, str]
    workdir: Path
    log_level: str = "WARNING"
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def port_file(self) -> Path:
        return self.workdir / "gateway.port"

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        with (self.workdir / "gateway.log").open("ab") as log:
            args = [f"--port-file={self.port_file}", f"--log-level={self.log_level}"]
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", *args],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc
        self.port = wait_port(self.port_file, lambda: proc.poll() is None, timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                if time.monotonic() > deadline:
                    raise ServiceStartError(f"gateway not healthy at {self.url}") from None
            time.sleep(0.05)

    def terminate(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Stack:
    """item_service, session_service and the gateway, each a child process on 127.0.0.1 port 0.

    session_service gets a new port when restarted; `restart_session` therefore restarts the gateway too,
    pointed at the new address (binding a fixed port again would race with other processes for it).
    """

    workdir: Path
    bank: Path
    token_key: str
    session_env: Mapping[str, str] = field(default_factory=dict)
    gateway_log_level: str = "WARNING"
    item: ServiceProcess | None = None
    session: ServiceProcess | None = None
    gateway: GatewayProcess | None = None

    @property
    def user_db(self) -> Path:
        return self.workdir / "sessions" / "user_data.db"

    def start(self) -> Stack:
        self.item = service_process(
            "item_service",
            workdir=self.workdir / "items",
            env={
                "DATABASE_URL": f"sqlite:///{self.bank}",
                "ITEM_SERVICE_ADDR": "127.0.0.1:0",
                "TOEFL_TOKEN_KEY": self.token_key,
            },
        ).start()
        self.session = service_process(
            "session_service",
            workdir=self.workdir / "sessions",
            env={
                "USER_DATABASE_URL": f"sqlite:///{self.user_db}",
                "SESSION_SERVICE_ADDR": "127.0.0.1:0",
                "ITEM_SERVICE_ADDR": self.item.address,
                "TOEFL_TOKEN_KEY": self.token_key,
                "SESSION_FAST_PASSWORD_HASHING": "true",
                **self.session_env,
            },
        ).start()
        self.start_gateway()
        return self

    def start_gateway(self) -> None:
        assert self.item is not None and self.session is not None
        env = clean_env(
            TOEFL_ENV="development",
            TOEFL_TOKEN_KEY=self.token_key,
            GATEWAY_ADDR="127.0.0.1:0",
            ITEM_SERVICE_ADDR=self.item.address,
            SESSION_SERVICE_ADDR=self.session.address,
            PYTHONUNBUFFERED="1",
        )
        self.gateway = GatewayProcess(env, self.workdir / "gateway", self.gateway_log_level).start()

    def restart_session(self) -> None:
        """SIGKILL session_service (if alive), start it on the same database, and re-point the gateway."""
        assert self.session is not None and self.gateway is not None
        self.session.restart()
        self.gateway.terminate()
        self.start_gateway()

    def pids(self) -> dict[str, int]:
        procs = {"item_service": self.item, "session_service": self.session, "gateway": self.gateway}
        return {name: p.proc.pid for name, p in procs.items() if p is not None and p.proc is not None}

    def stop(self) -> None:
        for proc in (self.gateway, self.session, self.item):
            if proc is not None:
                proc.terminate()


def answer_for(item: dict[str, Any]) -> dict[str, Any]:
    """A well-formed answer from the STUDENT view alone (the load generator holds no keys)."""
    content = item.get("content", {})
    if content.get("options"):
        return {"choiceIndex": len(item["itemId"]) % len(content["options"])}
    if content.get("slots"):
        return {"completions": {"values": ["e" * s.get("missingLetters", 0) for s in content["slots"]]}}
    if content.get("wordBank"):
        return {"wordSequence": {"values": content["wordBank"]}}
    raise ValueError(f"{item['itemId']} ({item['taskType']}) is not objective")


def objective(module: dict[str, Any], item: dict[str, Any]) -> bool:
    return module["section"] in ADAPTIVE or item["taskType"] == "TASK_TYPE_BUILD_A_SENTENCE"
