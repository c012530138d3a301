"""The compose file through a real compose parser, the Dockerfile through hadolint, and `make -n deploy`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from launcher.procs import REPO_ROOT

KEY = "k" * 40


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing; .ci/run installs it")
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return found


def _compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("docker-compose"), "-f", str(REPO_ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
        cwd=REPO_ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    result = _compose_config({"TOEFL_TOKEN_KEY": KEY})
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = yaml.safe_load(result.stdout)
    return parsed


def _volume_sources(service: dict[str, Any]) -> list[str]:
    sources = []
    for volume in service.get("volumes", []):
        sources.append(volume["source"] if isinstance(volume, dict) else str(volume).split(":", 1)[0])
    return sources


def test_three_services_and_an_optional_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"item_service", "session_service", "gateway"} <= set(services)
    assert services["postgres"]["profiles"] == ["postgres"]


def test_only_the_gateway_publishes_a_port(compose: dict[str, Any]) -> None:
    published = {name for name, svc in compose["services"].items() if svc.get("ports")}
    assert published == {"gateway"}


def test_student_data_volume_is_mounted_into_session_service_alone(compose: dict[str, Any]) -> None:
    services = compose["services"]
    holders = [name for name, svc in services.items() if "toefl_db_data" in _volume_sources(svc)]
    assert holders == ["session_service"]
    mounts = services["session_service"]["volumes"]
    targets = [m["target"] if isinstance(m, dict) else m.split(":")[1] for m in mounts]
    assert targets == ["/app/data"]
    assert compose["volumes"]["toefl_db_data"]["name"] == "toefl_db_data"


def test_health_checks_and_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("item_service", "session_service", "gateway"):
        assert "toefl_core.healthprobe" in services[name]["healthcheck"]["test"]
    for name in ("session_service", "gateway"):
        conditions = {dep["condition"] for dep in services[name]["depends_on"].values()}
        assert conditions == {"service_healthy"}


def test_missing_token_key_is_refused_with_its_message() -> None:
    result = _compose_config({})
    assert result.returncode != 0
    assert "set TOEFL_TOKEN_KEY" in result.stderr


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_tool("hadolint"), str(REPO_ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _stage(name: str) -> str:
    text = (REPO_ROOT / "Dockerfile").read_text()
    match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", text, flags=re.M | re.S)
    assert match, f"no stage {name}"
    return match.group(1)


def test_images_carry_only_their_own_database() -> None:
    item = _stage("item_service")
    assert "ITEM_BANK_READ_ONLY=true" in item and "DATABASE_URL=sqlite:////app/item_bank.db" in item
    assert "USER_DATABASE_URL" not in item
    session = _stage("session_service")
    assert "item_bank.db" not in session and "USER_DATABASE_URL=sqlite:////app/data/user_data.db" in session
    assert "DATABASE_URL=" not in session.replace("USER_DATABASE_URL=", "")
    for stage in ("item_service", "session_service", "gateway"):
        assert re.search(r"^USER \d+$", _stage(stage), flags=re.M), f"{stage} must run as a non-root user"
        assert "HEALTHCHECK" in _stage(stage)


def test_dockerignore_keeps_user_data_and_environments_out() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for pattern in ("data/", "**/backups/", ".venv/", "**/*.db"):
        assert pattern in ignored
    assert "!item_service/item_bank.db" in ignored


def test_make_deploy_rebuilds_and_recreates_item_service_only() -> None:
    result = subprocess.run(["make", "-n", "deploy"], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    compose_lines = [line for line in result.stdout.splitlines() if "compose" in line]
    assert compose_lines, result.stdout
    for line in compose_lines:
        assert line.rstrip().endswith(" item_service"), line
        for forbidden in ("down", " rm", "-v", "--volumes", "session_service", "gateway"):
            assert forbidden not in line, line
    assert any("--no-deps" in line for line in compose_lines)
    checks = result.stdout.split("compose", 1)[0]
    assert "item_service check" in checks and "item_service backup" in checks
