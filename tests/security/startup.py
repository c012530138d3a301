"""Start a service process that is expected to refuse: its exit code and output, or a failure if it serves."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from launcher.procs import REPO_ROOT

# Only a bound on a hung child: a refusal takes well under a second.
GIVE_UP_SECONDS = 60.0
SERVE_ARGS: dict[str, tuple[str, ...]] = {"gateway": ()}


@dataclass(frozen=True)
class Refusal:
    returncode: int
    output: str


def start_expecting_refusal(
    module: str, *, workdir: Path, env: Mapping[str, str], args: Sequence[str] | None = None
) -> Refusal:
    """Run `python -m module args` (default: its server); return its exit, fail the test if it binds a port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / f"{module}.refusal.port"
    log_path = workdir / f"{module}.refusal.log"
    port_file.unlink(missing_ok=True)
    if args is None:
        # The gateway has no subcommands; the services serve with `serve`.
        args = [*SERVE_ARGS.get(module, ("serve",)), "--port-file", str(port_file)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + GIVE_UP_SECONDS
    try:
        while proc.poll() is None:
            if port_file.exists() or time.monotonic() > deadline:
                raise AssertionError(f"{module} did not refuse to start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Refusal(returncode=proc.returncode, output=log_path.read_text(errors="replace"))


def assert_refused(refusal: Refusal, *words: str) -> None:
    """A non-zero exit with a message naming `words`, and no traceback."""
    assert refusal.returncode != 0, refusal.output
    assert "Traceback" not in refusal.output, refusal.output
    for word in words:
        assert word in refusal.output, refusal.output
