"""The import contracts hold on the real tree, and each one fails when a forbidden import is added to a copy."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.procs import REPO_ROOT

PACKAGES = ("toefl_core", "item_service", "session_service", "gateway", "launcher")
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, capture_output=True, text=True, env={"PYTHONPATH": str(root)}
    )


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contracts")
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, root / package, ignore=shutil.ignore_patterns("*.db", "__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_real_tree_keeps_every_contract() -> None:
    result = _lint(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


CASES = [
    ("item_service/servicer.py", "import session_service", "The two services never import each other"),
    ("session_service/servicer.py", "import item_service", "The two services never import each other"),
    ("gateway/app.py", "import sqlalchemy", "The gateway imports neither service nor any database library"),
    ("gateway/app.py", "import item_service", "The gateway imports neither service nor any database library"),
    (
        "toefl_core/auth.py",
        "import sqlite3",
        "The shared library imports neither service nor any database library",
    ),
    ("item_service/servicer.py", "import sqlalchemy", "Only each service's storage package imports a database"),
    ("session_service/servicer.py", "import sqlite3", "Only each service's storage package imports a database"),
    ("session_service/domain/answers.py", "import grpc", "The session domain is plain Python"),
    (
        "session_service/domain/scores.py",
        "from toefl.item.v1 import item_pb2",
        "The session domain is plain Python",
    ),
    ("session_service/domain/modules.py", "import session_service.storage", "The session domain is plain Python"),
    # The shared storage plumbing: SQLAlchemy only, and only for the services' storage packages.
    (
        "toefl_core/storage.py",
        "import sqlite3",
        "The shared library imports neither service nor any database library",
    ),
    (
        "toefl_core/storage.py",
        "import alembic",
        "The shared library imports neither service nor any database library",
    ),
    (
        "toefl_core/auth.py",
        "import toefl_core.storage",
        "Only the services' storage packages import toefl_core.storage",
    ),
    (
        "gateway/app.py",
        "import toefl_core.storage",
        "Only the services' storage packages import toefl_core.storage",
    ),
    (
        "item_service/servicer.py",
        "import toefl_core.storage",
        "Only the services' storage packages import toefl_core",
    ),
    (
        "session_service/servicer.py",
        "import toefl_core.storage",
        "Only the services' storage packages import toefl_core",
    ),
    (
        "launcher/procs.py",
        "import tests",
        "The launcher imports no service or job code, nor the tests or benchmarks",
    ),
    ("launcher/stack.py", "import session_service", "The launcher imports no service or job code, nor the tests"),
]


@pytest.mark.parametrize(("module", "line", "contract"), CASES)
def test_each_contract_catches_a_forbidden_import(tree_copy: Path, module: str, line: str, contract: str) -> None:
    target = tree_copy / module
    original = target.read_text()
    try:
        target.write_text(original + f"\n{line}  # added by the contract test\n")
        result = _lint(tree_copy)
    finally:
        target.write_text(original)
    assert result.returncode != 0, result.stdout
    # A contract with ignored imports reports "BROKEN (1 ignored import)".
    broken = [
        line for line in result.stdout.splitlines() if re.search(r" BROKEN( \(\d+ ignored imports?\))?$", line)
    ]
    # A database import in the gateway also breaks the storage-only contract; the named one must be among them.
    assert any(line.startswith(contract) for line in broken), result.stdout
