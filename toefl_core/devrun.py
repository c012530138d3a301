"""`make run`: start every service that exists as a child process and stop them all together on Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("devrun")
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Launch:
    name: str
    module: str
    args: tuple[str, ...]
    env: dict[str, str]


def _services() -> list[Launch]:
    launches = [
        Launch("item_service", "item_service", ("serve",), {"ITEM_SERVICE_ADDR": "127.0.0.1:50051"}),
        Launch(
            "session_service",
            "session_service",
            ("serve", "--create-demo-accounts"),
            {"SESSION_SERVICE_ADDR": "127.0.0.1:50052", "ITEM_SERVICE_ADDR": "127.0.0.1:50051"},
        ),
        Launch(
            "gateway",
            "gateway",
            (),
            {
                "GATEWAY_ADDR": "127.0.0.1:8080",
                "ITEM_SERVICE_ADDR": "127.0.0.1:50051",
                "SESSION_SERVICE_ADDR": "127.0.0.1:50052",
            },
        ),
    ]
    # A service that does not exist yet in this checkout is skipped, so `make run` works at every stage.
    return [launch for launch in launches if (REPO_ROOT / launch.module / "__main__.py").exists()]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s devrun: %(message)s")
    children: list[tuple[Launch, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for launch in _services():
        env = {**os.environ, "TOEFL_ENV": os.environ.get("TOEFL_ENV", "development"), **launch.env}
        log.info("starting %s", launch.name)
        children.append((launch, subprocess.Popen([sys.executable, "-m", launch.module, *launch.args], env=env)))
        # The session service and the gateway check their peers at start-up; give each a moment to bind.
        time.sleep(1.5)
    log.info("all services started; Ctrl-C stops them")
    exit_code = 0
    while not stopping:
        for launch, proc in children:
            if proc.poll() is not None:
                log.error("%s exited with %s; stopping the others", launch.name, proc.returncode)
                exit_code = proc.returncode or 1
                stopping = True
        time.sleep(0.5)
    for _launch, proc in reversed(children):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for _launch, proc in children:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
