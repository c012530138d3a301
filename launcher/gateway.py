"""The gateway as a real child process on port 0, and a small JSON client for it."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.procs import REPO_ROOT, ServiceStartError, clean_env, wait_port


@dataclass
class GatewayProcess:
    """`python -m gateway` in development in front of two addresses; `url` is where it actually listens."""

    workdir: Path
    item_address: str
    session_address: str
    token_key: str
    # Overrides of the development settings (e.g. TOEFL_ENV=production with a key of its own).
    env: dict[str, str] = field(default_factory=dict)
    log_level: str = "INFO"
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "gateway.log"

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        """Start it and wait until it answers /healthz (alive; /readyz is left to the caller)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        port_file = self.workdir / "gateway.port"
        port_file.unlink(missing_ok=True)
        env = clean_env(
            TOEFL_TOKEN_KEY=self.token_key,
            GATEWAY_ADDR="127.0.0.1:0",
            ITEM_SERVICE_ADDR=self.item_address,
            SESSION_SERVICE_ADDR=self.session_address,
            **self.env,
        )
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--port-file", str(port_file), "--log-level", self.log_level],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc
        deadline = time.monotonic() + timeout
        try:
            self.port = wait_port(port_file, lambda: proc.poll() is None, timeout)
            while not self._healthy():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ServiceStartError(f"not alive at {self.url}/healthz")
                time.sleep(0.05)
        except ServiceStartError as exc:
            self.terminate()
            raise ServiceStartError(f"the gateway did not start ({exc}):\n{self.log_text()}") from None
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(
        self, method: str, path: str, *, token: str | None = None, body: Any = None, source: str = "127.0.0.1"
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of one request from the address `source` (any of 127.0.0.0/8 works)."""
        status, _headers, parsed = self.exchange(method, path, token=token, body=body, source=source)
        return status, parsed

    def exchange(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        source: str = "127.0.0.1",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """`request` with more headers sent, and the reply's headers too."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            status, raw = response.status, response.read()
            received = dict(response.getheaders())
        finally:
            connection.close()
        if not response.getheader("Content-Type", "").startswith(("application/json", "application/x-ndjson")):
            # Bytes (an HttpBody: audio, an archive): how many.
            return status, received, {"bytes": len(raw)}
        text = raw.decode()
        try:
            parsed: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError:
            # A streamed route answers NDJSON: one {"result": ...} per line.
            parsed = {"lines": [json.loads(line) for line in text.splitlines() if line.strip()]}
        return status, received, parsed

    def terminate(self, timeout: float = 15.0) -> None:
        """SIGTERM and wait (SIGKILL after `timeout`): the graceful path."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: the crash path."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
