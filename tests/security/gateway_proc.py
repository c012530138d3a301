"""The gateway as a real child process on port 0, and a small JSON client for it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.procs import REPO_ROOT, ServiceStartError
from tests.support.tokens import TEST_TOKEN_KEY


@dataclass
class GatewayProcess:
    workdir: Path
    item_address: str
    session_address: str
    # Overrides of the development settings (e.g. TOEFL_ENV=production with a key of its own).
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / "gateway.log"

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        port_file = self.workdir / "gateway.port"
        port_file.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.endswith("_ADDR") and not k.startswith("GATEWAY_")}
        env.update(
            TOEFL_ENV="development",
            TOEFL_TOKEN_KEY=TEST_TOKEN_KEY,
            GATEWAY_ADDR="127.0.0.1:0",
            ITEM_SERVICE_ADDR=self.item_address,
            SESSION_SERVICE_ADDR=self.session_address,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--port-file", str(port_file)],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.terminate()
                raise ServiceStartError(f"the gateway did not start:\n{self.log_text()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(
        self, method: str, path: str, *, token: str | None = None, body: Any = None, source: str = "127.0.0.1"
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of one request from the address `source` (any of 127.0.0.0/8 works)."""
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            status, text = response.status, response.read().decode()
        finally:
            connection.close()
        try:
            parsed: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError:
            # A streamed route answers NDJSON: one {"result": ...} per line.
            parsed = {"lines": [json.loads(line) for line in text.splitlines() if line.strip()]}
        return status, parsed

    def terminate(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
