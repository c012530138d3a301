"""Item statistics in item_service: the 0002 migration, GetItemStatistics and WriteItemStatistics."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import grpc
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc

from item_service.storage.schema import head_revision
from launcher.procs import item_service_process
from tests.item_service.rpc import ADMIN, AUTHOR, SERVICE, STUDENT, Metadata, Stub, fails
from tests.item_service.test_cli import cli, ok
from tests.support.tokens import TEST_TOKEN_KEY, metadata
from toefl_core.auth import Role

CODE = grpc.StatusCode
MIGRATIONS = Path(__file__).resolve().parents[2] / "item_service" / "storage" / "migrations"


def figures(item_id: str, **overrides: float) -> item_pb2.ItemStatistics:
    values: dict[str, float] = {
        "administrations": 40,
        "p_value": 0.625,
        "point_biserial": 0.41,
        "exposure_rate": 0.2,
        "mean_response_seconds": 31.5,
    }
    values.update(overrides)
    statistics = item_pb2.ItemStatistics(
        item_id=item_id,
        administrations=int(values["administrations"]),
        p_value=values["p_value"],
        exposure_rate=values["exposure_rate"],
        mean_response_seconds=values["mean_response_seconds"],
    )
    if not math.isnan(values["point_biserial"]):
        statistics.point_biserial = values["point_biserial"]
    return statistics


def write(
    stub: Stub, run_id: str, *stats: item_pb2.ItemStatistics, meta: Metadata = SERVICE
) -> item_service_pb2.WriteItemStatisticsResponse:
    request = item_service_pb2.WriteItemStatisticsRequest(statistics=stats, run_id=run_id)
    return stub.WriteItemStatistics(request, metadata=meta)


def read(stub: Stub, item_id: str, meta: Metadata = AUTHOR) -> item_pb2.ItemStatistics:
    return stub.GetItemStatistics(item_service_pb2.GetItemStatisticsRequest(item_id=item_id), metadata=meta)


def test_written_figures_read_back_and_a_retry_changes_nothing(item_stub: Stub) -> None:
    stats = [figures("itm-000011"), figures("itm-000012", point_biserial=math.nan, p_value=1.0)]
    first = write(item_stub, "run-a", *stats)
    assert (first.written, first.unchanged) == (2, 0)
    stored = read(item_stub, "itm-000011")
    assert stored.run_id == "run-a" and stored.compute_time.seconds > 0
    assert (stored.administrations, stored.p_value, stored.point_biserial) == (40, 0.625, 0.41)
    assert (stored.exposure_rate, stored.mean_response_seconds) == (0.2, 31.5)
    undefined = read(item_stub, "itm-000012", meta=SERVICE)
    assert not undefined.HasField("point_biserial") and undefined.p_value == 1.0
    again = write(item_stub, "run-a", *stats)
    assert (again.written, again.unchanged) == (0, 2)
    assert read(item_stub, "itm-000011", meta=ADMIN) == stored
    # A later run computing the same figures leaves them, and the run that wrote them, as they are.
    later = write(item_stub, "run-b", *stats)
    assert (later.written, later.unchanged) == (0, 2)
    assert read(item_stub, "itm-000011").run_id == "run-a"


def test_new_figures_replace_the_old_ones(item_stub: Stub) -> None:
    write(item_stub, "run-c", figures("itm-000021"))
    replaced = write(item_stub, "run-d", figures("itm-000021", p_value=0.5), figures("itm-000022"))
    assert (replaced.written, replaced.unchanged) == (2, 0)
    stored = read(item_stub, "itm-000021")
    assert (stored.run_id, stored.p_value) == ("run-d", 0.5)
    # Defined, then undefined: the correlation is cleared, not left stale.
    write(item_stub, "run-e", figures("itm-000021", point_biserial=math.nan))
    assert not read(item_stub, "itm-000021").HasField("point_biserial")


def test_a_run_cannot_write_other_figures_for_an_item_it_wrote(item_stub: Stub) -> None:
    write(item_stub, "run-f", figures("itm-000031"))
    request = item_service_pb2.WriteItemStatisticsRequest(
        statistics=[figures("itm-000032"), figures("itm-000031", administrations=41)], run_id="run-f"
    )
    fails(item_stub.WriteItemStatistics, request, SERVICE, CODE.FAILED_PRECONDITION, "run-f", "itm-000031")
    # The whole batch failed: the other item got nothing.
    fails(
        item_stub.GetItemStatistics,
        item_service_pb2.GetItemStatisticsRequest(item_id="itm-000032"),
        AUTHOR,
        CODE.NOT_FOUND,
        "no statistics",
    )
    assert read(item_stub, "itm-000031").administrations == 40


def test_not_found(item_stub: Stub) -> None:
    get = item_stub.GetItemStatistics
    fails(
        get,
        item_service_pb2.GetItemStatisticsRequest(item_id="itm-000041"),
        AUTHOR,
        CODE.NOT_FOUND,
        "no statistics",
    )
    fails(get, item_service_pb2.GetItemStatisticsRequest(item_id="itm-nope"), AUTHOR, CODE.NOT_FOUND, "itm-nope")
    request = item_service_pb2.WriteItemStatisticsRequest(
        statistics=[figures("itm-000042"), figures("itm-nope")], run_id="run-g"
    )
    fails(item_stub.WriteItemStatistics, request, SERVICE, CODE.NOT_FOUND, "itm-nope")
    fails(
        get,
        item_service_pb2.GetItemStatisticsRequest(item_id="itm-000042"),
        AUTHOR,
        CODE.NOT_FOUND,
        "no statistics",
    )


@pytest.mark.parametrize(
    ("stats", "run_id", "field"),
    [
        ([figures("itm-000051")], "", "run_id"),
        ([figures("itm-000051")], "r" * 201, "run_id"),
        ([figures("")], "run", "statistics[0].item_id"),
        ([figures("itm-000051"), figures("itm-000051")], "run", "statistics[1].item_id"),
        ([figures("itm-000051", administrations=-1)], "run", "statistics[0].administrations"),
        ([figures("itm-000051", p_value=1.5)], "run", "statistics[0].p_value"),
        ([figures("itm-000051", p_value=math.inf)], "run", "statistics[0].p_value"),
        ([figures("itm-000051", point_biserial=-1.2)], "run", "statistics[0].point_biserial"),
        ([figures("itm-000051", exposure_rate=-0.1)], "run", "statistics[0].exposure_rate"),
        ([figures("itm-000051", mean_response_seconds=-3)], "run", "statistics[0].mean_response_seconds"),
        ([figures(f"itm-{n:06d}") for n in range(1, 1002)], "run", "statistics"),
    ],
)
def test_bad_requests_name_the_field(
    item_stub: Stub, stats: list[item_pb2.ItemStatistics], run_id: str, field: str
) -> None:
    request = item_service_pb2.WriteItemStatisticsRequest(statistics=stats, run_id=run_id)
    fails(item_stub.WriteItemStatistics, request, SERVICE, CODE.INVALID_ARGUMENT, field=field)


def test_roles(item_stub: Stub) -> None:
    write(item_stub, "run-h", figures("itm-000061"))
    get = item_service_pb2.GetItemStatisticsRequest(item_id="itm-000061")
    for role in (Role.STUDENT, Role.TEACHER, Role.RATER):
        fails(item_stub.GetItemStatistics, get, metadata(role), CODE.PERMISSION_DENIED, "author")
    fails(item_stub.GetItemStatistics, get, (), CODE.UNAUTHENTICATED)
    put = item_service_pb2.WriteItemStatisticsRequest(statistics=[figures("itm-000061", p_value=0.1)], run_id="x")
    for meta in (STUDENT, AUTHOR, metadata(Role.TEACHER)):
        fails(item_stub.WriteItemStatistics, put, meta, CODE.PERMISSION_DENIED, "service")
    assert write(item_stub, "x", figures("itm-000061", p_value=0.1), meta=ADMIN).written == 1


def test_statistics_leave_the_item_unchanged(item_stub: Stub) -> None:
    def item() -> item_pb2.Item:
        request = item_service_pb2.GetItemRequest(item_id="itm-000071", view=item_pb2.ITEM_VIEW_FULL)
        return item_stub.GetItem(request, metadata=AUTHOR)

    before = item()
    write(item_stub, "run-i", figures("itm-000071"))
    assert item() == before


def test_read_only_mode_refuses_writes_and_serves_reads(item_bank_path: Path) -> None:
    connection = sqlite3.connect(item_bank_path)
    with connection:
        connection.execute(
            "INSERT INTO item_statistics (item_id, run_id, administrations, p_value, point_biserial, "
            "exposure_rate, mean_response_seconds, actor, compute_time) VALUES ('itm-000081', 'run-j', 12, 0.5, "
            "NULL, 0.1, 20.0, 'job', '2026-11-01 10:00:00.000000')"
        )
    connection.close()
    proc = item_service_process(
        item_bank_path.parent / "ro",
        bank=item_bank_path,
        token_key=TEST_TOKEN_KEY,
        env={"ITEM_BANK_READ_ONLY": "true"},
    ).start()
    try:
        with grpc.insecure_channel(proc.address) as channel:
            stub = item_service_pb2_grpc.ItemServiceStub(channel)
            stored = read(stub, "itm-000081")
            assert (stored.run_id, stored.administrations) == ("run-j", 12)
            assert not stored.HasField("point_biserial")
            request = item_service_pb2.WriteItemStatisticsRequest(statistics=[figures("itm-000081")], run_id="k")
            fails(stub.WriteItemStatistics, request, SERVICE, CODE.FAILED_PRECONDITION, "read-only", "make deploy")
    finally:
        assert proc.terminate() == 0


def test_a_0001_bank_migrates_to_head_without_drift(tmp_path: Path) -> None:
    path = tmp_path / "item_bank.db"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()
    behind = cli("check", database=path)
    assert behind.returncode == 1 and "revision 0001" in behind.stderr and "item_statistics" in behind.stderr
    assert f"revision {head_revision()} (was 0001)" in ok(cli("migrate", database=path))
    assert f"schema matches the models at revision {head_revision()}" in ok(cli("check", database=path))
