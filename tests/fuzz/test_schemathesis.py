"""schemathesis on the gateway's OpenAPI document, a real stack behind: every check, both modes, every phase."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.app import openapi_document
from gateway.backends import toefl_backends
from launcher.procs import REPO_ROOT
from tests.gateway.conftest import gateway_settings

CONFIG = Path(__file__).with_name("schemathesis.toml")
# Per operation and token; the coverage phase adds its own cases on top. Quick: `make test` (under two minutes on
# two cores); slow: `make test-slow`, at least 10,000 cases in all.
QUICK_EXAMPLES, QUICK_MINIMUM = 2, 2_000
SLOW_EXAMPLES, SLOW_MINIMUM = 40, 10_000


def test_the_gateway_serves_this_document(gateway_url: str) -> None:
    """The document under test is the one a client gets, built as create_app builds it."""
    with urllib.request.urlopen(f"{gateway_url}/openapi.json", timeout=10) as reply:
        served = json.loads(reply.read())
    assert served == json.loads(json.dumps(openapi_document(toefl_backends(gateway_settings()))))


def run_schemathesis(gateway_url: str, token: str, examples: int, report: Path) -> dict[str, Any]:
    """One `schemathesis run` with every check on, positive and negative data, every phase; its JSON report."""
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run"),
        f"{gateway_url}/openapi.json",
        *("--checks", "all", "--mode", "all", "--phases", "examples,coverage,fuzzing,stateful"),
        *("--max-examples", str(examples), "--generation-deterministic", "--request-timeout", "30"),
        # One worker: with more, Hypothesis's lambda descriptions race ("AST constructor recursion depth
        # mismatch", a runtime error of schemathesis's own, not of the API).
        *("--workers", "1", "--header", f"Authorization: Bearer {token}", "--no-color"),
        *("--report", "json", "--report-json-path", str(report)),
    ]
    # Its working folder is the test's, so its cache (.schemathesis/) stays out of the repository.
    # The hooks give the audio bodies of the recording upload (tests/fuzz/hooks.py).
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=3600, check=False, cwd=report.parent, env=env
    )
    if not report.exists():
        pytest.fail(
            f"schemathesis wrote no report (exit {run.returncode}):\n{run.stdout[-4000:]}{run.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(report.read_text())
    result["output"] = run.stdout
    return result


def sit(gateway_url: str, tokens: dict[str, str], examples: int, minimum: int, tmp_path: Path) -> None:
    cases, failures, errors = 0, Counter[str](), Counter[str]()
    outputs = []
    for role, token in tokens.items():
        report = run_schemathesis(gateway_url, token, examples, tmp_path / f"{role}.json")
        generated = report["test_cases"]["generated"]
        cases += generated
        failures.update({f"{role} {f['type']}": f["count"] for f in report["failures"]})
        errors.update({f"{role} {e['title']}": e["count"] for e in report["errors"]})
        print(f"schemathesis as {role}: {generated} cases, {report['test_cases']}, failures {report['failures']}")
        if report["failures"] or report["errors"] or report["exit_code"] != 0:
            outputs.append(report["output"][-20_000:])
    print(f"schemathesis: {cases} cases, failures {dict(failures) or 0}, errors {dict(errors) or 0}")
    assert not failures and not errors, "\n".join(outputs)
    assert cases >= minimum


def test_every_check_quick(gateway_url: str, admin_token: str, student_token: str, tmp_path: Path) -> None:
    sit(gateway_url, {"admin": admin_token, "student": student_token}, QUICK_EXAMPLES, QUICK_MINIMUM, tmp_path)


@pytest.mark.slow
def test_every_check_slow(gateway_url: str, admin_token: str, student_token: str, tmp_path: Path) -> None:
    sit(gateway_url, {"admin": admin_token, "student": student_token}, SLOW_EXAMPLES, SLOW_MINIMUM, tmp_path)
