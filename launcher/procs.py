"""A real service as a child process on port 0, waited for until it reports SERVING; its environment and bank."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_SEED = 2026


class ServiceStartError(RuntimeError):
    pass


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment in development, without database URLs, service addresses or gateway settings.

    A child then reads only what its launcher gives it in `extra`, never the caller's own configuration.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_ADDR", "DATABASE_URL")) and not k.startswith("GATEWAY_")
    }
    env.update({"TOEFL_ENV": "development", "PYTHONUNBUFFERED": "1", **extra})
    return env


def build_demo_bank(out: Path, *, seed: int = DEMO_SEED) -> Path:
    """The demo item bank, written to `out` by the real CLI (`item_service build-demo-bank`); a seed, a bank."""
    done = subprocess.run(
        [sys.executable, "-m", "item_service", "build-demo-bank", "--seed", str(seed), "--out", str(out)],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ServiceStartError(f"build-demo-bank exited with {done.returncode}:\n{done.stderr}")
    return out


def wait_port(path: Path, alive: Callable[[], bool], timeout: float = 60.0) -> int:
    """The port a child wrote to `path`; an error if the child dies or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        if not alive():
            raise ServiceStartError(f"exited before writing a port to {path}")
        if time.monotonic() > deadline:
            raise ServiceStartError(f"no port in {path} within {timeout}s")
        time.sleep(0.02)
    return int(path.read_text())


def child_pids(pid: int) -> list[int]:
    """The processes `pid` started that are still running (/proc/<pid>/task/*/children)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        found.extend(int(child) for child in children.read_text().split())
    return sorted(found)


def _ended(pid: int) -> bool:
    try:
        # The state after the command's parenthesis: Z (exited, not yet reaped) or X counts as ended.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


def processes_ended(pids: list[int], timeout: float = 10.0) -> bool:
    """Whether every one of `pids` has exited (reaped or not) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not all(_ended(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass
class ServiceProcess:
    """A service running as a child process; `address` is the port it actually bound."""

    module: str
    args: list[str]
    env: dict[str, str]
    workdir: Path
    log_path: Path
    port_file: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        self.port_file.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args, "--port-file", str(self.port_file)],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.port_file.exists():
            if self.proc.poll() is not None:
                raise ServiceStartError(f"{self.module} exited with {self.proc.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceStartError(f"{self.module} did not bind within {timeout}s:\n{self.log_text()}")
            time.sleep(0.02)
        self.port = int(self.port_file.read_text())
        wait_serving(self.address, timeout=max(1.0, deadline - time.monotonic()))
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait: the graceful path."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: the crash path."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> ServiceProcess:
        """Start again with the same database on a fresh port."""
        self.kill()
        return self.start()


def wait_serving(address: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as exc:
                last = exc
            time.sleep(0.05)
    raise ServiceStartError(f"{address} not SERVING within {timeout}s: {last}")


def service_process(
    module: str,
    *,
    workdir: Path,
    env: Mapping[str, str],
    args: Sequence[str] = ("serve",),
) -> ServiceProcess:
    """Prepare (not start) `python -m module serve` on 127.0.0.1:0 with a clean environment plus `env`."""
    workdir.mkdir(parents=True, exist_ok=True)
    defaults: dict[str, str] = {}
    if module == "session_service":
        # Tests and benchmarks start many sessions per student; the test of the daily limit sets its own.
        defaults["SESSION_DAILY_SESSION_LIMIT"] = "1000000"
    return ServiceProcess(
        module=module,
        args=list(args),
        env=clean_env(**{**defaults, **env}),
        workdir=workdir,
        log_path=workdir / f"{module}.log",
        port_file=workdir / f"{module}.port",
    )


def item_service_process(
    workdir: Path, *, bank: Path, token_key: str, env: Mapping[str, str] | None = None
) -> ServiceProcess:
    """Prepare item_service serving `bank` on 127.0.0.1:0, trusting tokens signed with `token_key`."""
    return service_process(
        "item_service",
        workdir=workdir,
        env={
            "DATABASE_URL": f"sqlite:///{bank}",
            "ITEM_SERVICE_ADDR": "127.0.0.1:0",
            "TOEFL_TOKEN_KEY": token_key,
            **(env or {}),
        },
    )


def session_service_process(
    workdir: Path,
    *,
    item_address: str,
    token_key: str,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    """Prepare session_service on 127.0.0.1:0 with its own user database (by default a SQLite file in `workdir`).

    Passwords are hashed with the fast parameters: the launched services sign in many accounts, none real.
    """
    return service_process(
        "session_service",
        workdir=workdir,
        env={
            "USER_DATABASE_URL": database_url or f"sqlite:///{workdir / 'user_data.db'}",
            "SESSION_SERVICE_ADDR": "127.0.0.1:0",
            "ITEM_SERVICE_ADDR": item_address,
            "TOEFL_TOKEN_KEY": token_key,
            "SESSION_FAST_PASSWORD_HASHING": "true",
            **(env or {}),
        },
    )
