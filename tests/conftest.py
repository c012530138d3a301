"""Fixtures shared by every test directory: the demo item bank built once, and a running item_service."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from toefl.item.v1 import item_service_pb2_grpc

from launcher.postgres import PostgresCluster, PostgresUnavailable, start_cluster
from launcher.procs import ServiceProcess, build_demo_bank, item_service_process
from tests.support.tokens import TEST_TOKEN_KEY


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run the tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def demo_bank_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo item bank (seed 2026), built once per test run with the real CLI. Copy it; never change it."""
    return build_demo_bank(tmp_path_factory.mktemp("demo-bank-template") / "item_bank.db")


@pytest.fixture
def item_bank_path(demo_bank_template: Path, tmp_path: Path) -> Path:
    """A private copy of the demo bank that a test may change."""
    path = tmp_path / "item_bank.db"
    shutil.copyfile(demo_bank_template, path)
    return path


@pytest.fixture(scope="module")
def item_service_proc(
    demo_bank_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A real item_service on its own copy of the demo bank, one per test module."""
    workdir = tmp_path_factory.mktemp("item_service")
    database = workdir / "item_bank.db"
    shutil.copyfile(demo_bank_template, database)
    proc = item_service_process(workdir, bank=database, token_key=TEST_TOKEN_KEY).start()
    try:
        yield proc
    finally:
        proc.terminate()


@pytest.fixture(scope="module")
def item_stub(item_service_proc: ServiceProcess) -> Iterator[item_service_pb2_grpc.ItemServiceStub]:
    with grpc.insecure_channel(item_service_proc.address) as channel:
        yield item_service_pb2_grpc.ItemServiceStub(channel)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for one test module (skipped, saying why, where none can be started)."""
    try:
        started = start_cluster()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL is not available here: {exc}")
    yield started
    started.stop()
