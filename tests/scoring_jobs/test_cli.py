"""The jobs' command line without services: usage errors, and a service that is down."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher.procs import REPO_ROOT, clean_env
from tests.scoring_jobs.jobs import job, usage_error
from tests.support.tokens import TEST_TOKEN_KEY

# Nothing listens on port 1: every call is refused at once.
NOWHERE = {"ITEM_SERVICE_ADDR": "127.0.0.1:1", "SESSION_SERVICE_ADDR": "127.0.0.1:1"}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), ("COMMAND",)),
        (("rebuild",), ("invalid choice",)),
        (("rescore", "--batch-size", "0"), ("--batch-size", "between 1 and 1000")),
        (("rescore", "--batch-size", "ten"), ("--batch-size", "whole number")),
        (("item-stats", "--batch-size", "1001"), ("--batch-size",)),
        (("rescore", "--since", "last week"), ("--since", "YYYY-MM-DD")),
        (("rescore", "--since", "2026-13-01"), ("--since",)),
        (("rescore", "--retry-seconds", "-1"), ("--retry-seconds",)),
        (("item-stats", "--since", "2026-01-01"), ("unrecognized arguments",)),
        (("rescore", "--dry-run", "extra"), ("unrecognized arguments",)),
        (("calibrate", "--min-responses", "0"), ("--min-responses", "at least 1")),
        (("calibrate", "--batch-size", "10"), ("unrecognized arguments",)),
    ],
)
def test_bad_arguments_are_usage_errors(args: tuple[str, ...], words: tuple[str, ...]) -> None:
    usage_error(job(*args, env=NOWHERE), *words)


def test_a_state_file_of_another_kind_is_a_usage_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("not json")
    usage_error(job("rescore", "--state-file", str(state), env=NOWHERE), "--state-file", "not JSON")
    state.write_text(json.dumps({"job": "item-stats", "version": 1}))
    usage_error(job("rescore", "--state-file", str(state), env=NOWHERE), "not a state file of the rescore job")
    state.write_text(json.dumps({"job": "rescore", "version": 1, "filters": {"since": "", "blueprint": ""}}))
    usage_error(job("rescore", "--state-file", str(state), env=NOWHERE), "is damaged")


def test_an_interrupted_run_with_other_filters_is_not_resumed(tmp_path: Path) -> None:
    state = tmp_path / "rescore.json"
    down = job(
        "rescore", "--since", "2026-01-01", "--state-file", str(state), "--retry-seconds", "0.5", env=NOWHERE
    )
    assert down.returncode == 1 and state.exists()
    usage_error(job("rescore", "--state-file", str(state), env=NOWHERE), "other filters", "2026-01-01")


@pytest.mark.parametrize("command", ["rescore", "item-stats", "calibrate"])
def test_a_service_down_is_a_clear_message(command: str, tmp_path: Path) -> None:
    state = tmp_path / f"{command}.json"
    done = job(command, "--state-file", str(state), "--retry-seconds", "0.5", env=NOWHERE)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    # item-stats asks item_service first (the parameters its item fit needs), the others session_service.
    first = "item_service" if command == "item-stats" else "session_service"
    assert f"{first} at 127.0.0.1:1 is unavailable" in done.stderr
    assert "run the same command again to resume" in done.stderr
    assert done.stdout == ""


def test_sigterm_saves_the_state_and_says_how_to_resume(tmp_path: Path) -> None:
    state = tmp_path / "rescore.json"
    running = subprocess.Popen(
        [sys.executable, "-m", "scoring_jobs", "rescore", "--state-file", str(state), "--retry-seconds", "600"],
        cwd=REPO_ROOT,
        env=clean_env(TOEFL_TOKEN_KEY=TEST_TOKEN_KEY, **NOWHERE),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The run writes its state before the first call, then keeps retrying a service that is not there.
    while not state.exists():
        assert running.poll() is None, running.communicate()
        time.sleep(0.02)
    running.send_signal(signal.SIGTERM)
    out, errors = running.communicate(timeout=60)
    assert running.returncode == 130 and out == "" and "Traceback" not in errors
    assert "interrupted; progress is saved in" in errors and "run the same command again to resume" in errors
    assert json.loads(state.read_text())["completed"] is False
