"""item_service as a process: owner-mark refusals, read-only mode, ownership report, reflection, SIGTERM."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from toefl.common.v1 import ownership_pb2, ownership_pb2_grpc
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc

from item_service.storage.schema import head_revision
from launcher.procs import REPO_ROOT, ServiceProcess, clean_env, item_service_process
from tests.item_service.rpc import ADMIN, AUTHOR, SERVICE, TEACHER, fails
from tests.support.exam import refusal
from tests.support.tokens import TEST_TOKEN_KEY
from toefl_core.ownership import RETIRED_FILE_NAMES, USER_DATA_APPLICATION_ID

ITEM_SERVICE = "toefl.item.v1.ItemService"
OWNERSHIP = "toefl.common.v1.DatabaseOwnership"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def serve_once(database: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Start `serve` and expect it to give up by itself; its output must explain why, without a traceback."""
    return subprocess.run(
        [sys.executable, "-m", "item_service", "serve", "--port-file", str(database.parent / "port")],
        cwd=REPO_ROOT,
        env=clean_env(
            TOEFL_TOKEN_KEY=TEST_TOKEN_KEY,
            DATABASE_URL=f"sqlite:///{database}",
            ITEM_SERVICE_ADDR="127.0.0.1:0",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    for word in words:
        assert word in output, output


def test_refuses_a_database_without_the_owner_mark(tmp_path: Path) -> None:
    database = tmp_path / "item_bank.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE test_items (item_id TEXT PRIMARY KEY)")
    before = digest(database)
    assert_refused(serve_once(database), "no owner mark", "item_bank")
    assert digest(database) == before


def test_refuses_the_user_data_mark(item_bank_path: Path) -> None:
    with sqlite3.connect(item_bank_path) as connection:
        connection.execute(f"PRAGMA application_id = {USER_DATA_APPLICATION_ID}")
    before = digest(item_bank_path)
    assert_refused(serve_once(item_bank_path), "user_data", "refusing")
    assert digest(item_bank_path) == before


@pytest.mark.parametrize("name", sorted(RETIRED_FILE_NAMES))
def test_refuses_retired_file_names(item_bank_path: Path, name: str) -> None:
    retired = item_bank_path.with_name(name)
    item_bank_path.rename(retired)
    assert_refused(serve_once(retired), name, "item_bank.db")


def test_a_missing_bank_is_not_created(tmp_path: Path) -> None:
    database = tmp_path / "item_bank.db"
    assert_refused(serve_once(database), "make item-bank", "migrate --create")
    assert not database.exists()


@pytest.fixture
def running(item_bank_path: Path) -> Iterator[ServiceProcess]:
    proc = item_service_process(
        item_bank_path.parent / "run", bank=item_bank_path, token_key=TEST_TOKEN_KEY
    ).start()
    try:
        yield proc
    finally:
        proc.kill()


def test_reflection_health_and_ownership(running: ServiceProcess) -> None:
    with grpc.insecure_channel(running.address) as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {service.name for reply in replies for service in reply.list_services_response.service}
        assert {ITEM_SERVICE, OWNERSHIP, "grpc.health.v1.Health"} <= names
        health = health_pb2_grpc.HealthStub(channel)
        for name in (ITEM_SERVICE, OWNERSHIP):
            status = health.Check(health_pb2.HealthCheckRequest(service=name)).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        ownership = ownership_pb2_grpc.DatabaseOwnershipStub(channel)
        report = ownership.GetDatabaseOwnership(ownership_pb2.GetDatabaseOwnershipRequest(), metadata=SERVICE)
        assert (report.service, report.owner, report.expected_owner) == ("item_service", "item_bank", "item_bank")
        assert (report.backend, report.database_name) == ("sqlite", "item_bank.db")
        assert report.schema_revision == head_revision()
        assert len(report.fingerprint) == 16 and "/" not in report.fingerprint
        fails(
            ownership.GetDatabaseOwnership,
            ownership_pb2.GetDatabaseOwnershipRequest(),
            (),
            grpc.StatusCode.UNAUTHENTICATED,
        )


def test_sigterm_drains_and_exits_zero(running: ServiceProcess) -> None:
    with grpc.insecure_channel(running.address) as channel:
        stub = item_service_pb2_grpc.ItemServiceStub(channel)
        assert stub.GetItem(item_service_pb2.GetItemRequest(item_id="itm-000001"), metadata=TEACHER).item_id
    assert running.terminate() == 0
    log = running.log_text()
    assert "shutting down" in log and "stopped" in log and "Traceback" not in log


def test_read_only_mode_refuses_every_write_and_serves_reads(item_bank_path: Path) -> None:
    before = digest(item_bank_path)
    proc = item_service_process(
        item_bank_path.parent / "ro",
        bank=item_bank_path,
        token_key=TEST_TOKEN_KEY,
        env={"ITEM_BANK_READ_ONLY": "true"},
    ).start()
    try:
        with grpc.insecure_channel(proc.address) as channel:
            stub = item_service_pb2_grpc.ItemServiceStub(channel)
            item = stub.GetItem(
                item_service_pb2.GetItemRequest(item_id="itm-000001", view=item_pb2.ITEM_VIEW_FULL),
                metadata=AUTHOR,
            )
            spec = item_service_pb2.ModuleSpec(
                task_counts=[item_service_pb2.TaskCount(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL, count=1)]
            )
            assert stub.AssembleModule(item_service_pb2.AssembleModuleRequest(spec=spec), metadata=SERVICE).items
            writes: list[tuple[Callable[..., Any], Message]] = [
                (stub.CreateItem, item_service_pb2.CreateItemRequest(item=item)),
                (stub.UpdateItem, item_service_pb2.UpdateItemRequest(item=item)),
                (stub.SubmitForReview, item_service_pb2.SubmitForReviewRequest(item_id=item.item_id)),
                (stub.ReviewItem, item_service_pb2.ReviewItemRequest(item_id=item.item_id)),
                (stub.ActivateItem, item_service_pb2.ActivateItemRequest(item_id=item.item_id)),
                (stub.RetireItem, item_service_pb2.RetireItemRequest(item_id=item.item_id)),
                (stub.ImportItems, item_service_pb2.ImportItemsRequest(items=[item], dry_run=True)),
            ]
            for call, request in writes:
                refused = fails(
                    call, request, ADMIN, grpc.StatusCode.FAILED_PRECONDITION, "read-only", "make deploy"
                )
                assert refusal(refused).reason == "ITEM_BANK_READ_ONLY"
    finally:
        assert proc.terminate() == 0
    assert digest(item_bank_path) == before
