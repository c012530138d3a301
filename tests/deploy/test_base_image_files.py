"""The base-image switch and the podman helpers, checked without an engine (tests/images runs them for real)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from launcher.procs import REPO_ROOT
from tests.deploy.test_deploy_files import KEY, _compose_config, _stage, _tool

PINNED = "python:3.11.7-slim-bookworm"
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def test_base_image_is_an_argument_defaulting_to_the_pinned_official_image() -> None:
    assert re.search(rf"^ARG BASE_IMAGE={re.escape(PINNED)}$", DOCKERFILE, flags=re.M)
    # Every stage starts from the argument or from an earlier stage, never from another image.
    stages: list[str] = []
    for image, name in re.findall(r"^FROM (\S+) AS (\S+)$", DOCKERFILE, flags=re.M):
        assert image == "${BASE_IMAGE}" or image in stages, (image, name)
        stages.append(name)
    assert len(stages) == len(re.findall(r"^FROM ", DOCKERFILE, flags=re.M))


def test_compose_passes_the_same_default_and_no_ca_unless_given() -> None:
    result = _compose_config({"TOEFL_TOKEN_KEY": KEY})
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("item_service", "session_service", "gateway"):
        assert services[name]["build"]["args"] == {"BASE_IMAGE": PINNED, "EXTRA_CA_CERTS": ""}
    assert services["postgres"]["image"] == "postgres:15.8-bookworm"


def test_extra_ca_is_used_in_the_build_stage_only() -> None:
    assert "EXTRA_CA_CERTS" in _stage("build")
    for stage in ("runtime", "item_service", "session_service", "gateway"):
        assert "EXTRA_CA_CERTS" not in _stage(stage) and "CERTIFICATE" not in _stage(stage), stage


def test_postgres_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_tool("hadolint"), str(REPO_ROOT / "deploy/postgres/Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


SCRIPTS = ["podman/env.sh", "podman/healthchecks.sh", "base/make-base.sh", "postgres/entrypoint.sh"]


@pytest.mark.parametrize("script", [f"deploy/{name}" for name in SCRIPTS])
def test_helper_scripts_parse(script: str) -> None:
    result = subprocess.run(["bash", "-n", str(REPO_ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
