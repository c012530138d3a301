"""Running `python -m scoring_jobs` as a child process, the way an operator runs it."""

from __future__ import annotations

import subprocess
import sys

from launcher.procs import REPO_ROOT, clean_env
from tests.support.tokens import TEST_TOKEN_KEY


def job(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scoring_jobs", *args],
        cwd=REPO_ROOT,
        env=clean_env(TOEFL_TOKEN_KEY=TEST_TOKEN_KEY, **env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def usage_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "error:" in done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
