"""`python -m gateway`: binds port 0 and writes the port file, answers health probes, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from launcher.procs import REPO_ROOT
from tests.support.tokens import TEST_TOKEN_KEY, token
from toefl_core.auth import Role


def gateway_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_ADDR") and not k.startswith("GATEWAY_")}
    env.update(
        TOEFL_ENV="development",
        TOEFL_TOKEN_KEY=TEST_TOKEN_KEY,
        GATEWAY_ADDR="127.0.0.1:0",
        # Nothing listens on port 1: the gateway must still start and report itself not ready.
        ITEM_SERVICE_ADDR="127.0.0.1:1",
        SESSION_SERVICE_ADDR="127.0.0.1:1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def get(url: str | urllib.request.Request) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serves_on_port_zero_and_stops_on_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "gateway.port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--port-file", str(port_file)],
        cwd=REPO_ROOT,
        env=gateway_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert proc.poll() is None, proc.communicate()[0].decode()
            assert time.monotonic() < deadline, "the gateway did not write its port file"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{int(port_file.read_text())}"
        assert get(f"{base}/healthz") == (200, {"status": "alive"})
        status, body = get(f"{base}/readyz")
        assert status == 503 and "unreachable" in str(body["message"])
        request = urllib.request.Request(f"{base}/api/items", headers={"X-Request-Id": "cli-test-1"})
        status, body = get(request)
        assert status == 401 and body["code"] == 16
        # Signed in, the call goes on to item_service, which is not there.
        headers = {"X-Request-Id": "cli-test-2", "Authorization": f"Bearer {token(Role.ADMIN)}"}
        status, body = get(urllib.request.Request(f"{base}/api/items", headers=headers))
        assert status == 503 and body["code"] == 14
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert "gateway stopped" in output
    lines = output.splitlines()
    refused = next(line for line in lines if "request_id=cli-test-1" in line)
    assert '"GET /api/items HTTP/1.1" 401' in refused and "backend=" not in refused
    # A call that reached for a service: the time it waited for it (the request's own time is in the event
    # loop's clock, which may not have moved meanwhile).
    unavailable = next(line for line in lines if "request_id=cli-test-2" in line)
    assert '"GET /api/items HTTP/1.1" 503' in unavailable
    waited = re.search(r" [0-9.]+s request_id=cli-test-2 backend=([0-9.]+)s$", unavailable)
    assert waited is not None, unavailable
    assert 0 < float(waited[1]) < 10


def test_bad_configuration_exits_2_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        cwd=REPO_ROOT,
        env=gateway_env(GATEWAY_MAX_BODY_BYTES="lots"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "GATEWAY_MAX_BODY_BYTES" in result.stderr
    assert "Traceback" not in result.stderr
