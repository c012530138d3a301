"""A section an advance closes is scored after the advance's own write: at the writer's idle turn, at once when a
report asks, and after a restart when the process stopped before it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2_grpc, session_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.session_service.conftest import session_process
from tests.session_service.scoring_flow import ScoringStub, TakenSession, expected_section, report, take_session
from tests.support.exam import admin, new_user

READING = item_pb2.SECTION_READING
# Long enough for a loaded CI machine to reach an idle turn; a pass takes milliseconds.
SCORED_WITHIN_SECONDS = 60.0


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


def started(workdir: Path, item_service_proc: ServiceProcess) -> ServiceProcess:
    return session_process(workdir, item_address=item_service_proc.address).start()


@pytest.fixture
def proc(workdir: Path, item_service_proc: ServiceProcess) -> Iterator[ServiceProcess]:
    running = started(workdir, item_service_proc)
    yield running
    running.terminate()


def stubs(
    proc: ServiceProcess,
) -> tuple[grpc.Channel, session_service_pb2_grpc.SessionServiceStub, ScoringStub]:
    channel = grpc.insecure_channel(proc.address)
    return (
        channel,
        session_service_pb2_grpc.SessionServiceStub(channel),
        scoring_service_pb2_grpc.ScoringServiceStub(channel),
    )


def stored_versions(workdir: Path, session_id: str) -> list[tuple[int, str, str, float]]:
    """(version, reason, section, theta) of each section row of the session's score versions, from the file."""
    with sqlite3.connect(f"file:{workdir / 'user_data.db'}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT v.version, v.reason, s.section, s.theta FROM score_versions v "
            "JOIN section_scores s ON s.score_id = v.score_id WHERE v.session_id = ? "
            "ORDER BY v.version, s.section",
            (session_id,),
        ).fetchall()


def wait_for_versions(workdir: Path, session_id: str) -> list[tuple[int, str, str, float]]:
    deadline = time.monotonic() + SCORED_WITHIN_SECONDS
    while not (found := stored_versions(workdir, session_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def marks(workdir: Path) -> list[str]:
    """The sessions marked as waiting for a score."""
    with sqlite3.connect(f"file:{workdir / 'user_data.db'}?mode=ro", uri=True) as db:
        return [session_id for (session_id,) in db.execute("SELECT session_id FROM pending_scores")]


def reading_estimate(workdir: Path, session_id: str) -> list[float | None]:
    """The estimate kept with Reading's modules (the router's as it routed, the last module's at the score)."""
    with sqlite3.connect(f"file:{workdir / 'user_data.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT theta FROM modules WHERE session_id = ? AND section = 'SECTION_READING' ORDER BY sequence",
            (session_id,),
        ).fetchall()
    return [theta for (theta,) in rows]


def left_reading(
    proc: ServiceProcess, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> tuple[TakenSession, ScoringStub, grpc.Channel]:
    channel, stub, scoring = stubs(proc)
    taken = take_session(stub, item_stub, new_user(stub), until=item_pb2.SECTION_LISTENING)
    return taken, scoring, channel


def test_a_section_left_is_scored_at_the_writers_idle_turn(
    proc: ServiceProcess, workdir: Path, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    taken, _, channel = left_reading(proc, item_stub)
    with channel:
        # Nobody asks for the score: the writer's idle turn writes it, one version for the one section closed.
        versions = wait_for_versions(workdir, taken.session_id)
        theta, _, _ = expected_section(taken, READING)
        assert [(v, reason, section) for v, reason, section, _ in versions] == [
            (1, "section_closed", "SECTION_READING")
        ]
        assert versions[0][3] == pytest.approx(theta, abs=1e-9)
        assert reading_estimate(workdir, taken.session_id)[-1] == pytest.approx(theta, abs=1e-9)
        deadline = time.monotonic() + SCORED_WITHIN_SECONDS
        while marks(workdir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marks(workdir) == []


def test_a_report_read_right_after_the_advance_shows_the_section_scored(
    proc: ServiceProcess, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    taken, scoring, channel = left_reading(proc, item_stub)
    with channel:
        got = report(scoring, taken.session_id, admin())
    theta, se, band = expected_section(taken, READING)
    assert list(got.pending_sections) == [
        item_pb2.SECTION_LISTENING,
        item_pb2.SECTION_WRITING,
        item_pb2.SECTION_SPEAKING,
    ]
    (reading,) = got.score.sections
    assert reading.section == READING and reading.band == band
    assert reading.theta == pytest.approx(theta, abs=1e-9)
    assert reading.standard_error == pytest.approx(se, abs=1e-9)


def test_a_section_closed_before_a_stop_is_scored_at_the_next_start(
    workdir: Path, item_service_proc: ServiceProcess, item_stub: item_service_pb2_grpc.ItemServiceStub
) -> None:
    first = started(workdir, item_service_proc)
    try:
        taken, _, channel = left_reading(first, item_stub)
        channel.close()
        before = wait_for_versions(workdir, taken.session_id)
    finally:
        first.terminate()
    assert before
    # What a stop between the advance's commit and the idle turn leaves: the section closed and the session marked,
    # no score of it.
    with sqlite3.connect(workdir / "user_data.db") as db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("DELETE FROM score_versions WHERE session_id = ?", (taken.session_id,))
        db.execute(
            "UPDATE modules SET theta = NULL, theta_se = NULL "
            "WHERE session_id = ? AND stage != 'MODULE_STAGE_ROUTER'",
            (taken.session_id,),
        )
        db.execute("INSERT INTO pending_scores (session_id, since_ms) VALUES (?, 0)", (taken.session_id,))
    assert stored_versions(workdir, taken.session_id) == []
    second = started(workdir, item_service_proc)
    try:
        after = wait_for_versions(workdir, taken.session_id)
    finally:
        second.terminate()
    assert [row[:3] for row in after] == [row[:3] for row in before]
    assert marks(workdir) == []
    assert after[0][3] == pytest.approx(before[0][3], abs=1e-12)
    assert reading_estimate(workdir, taken.session_id)[-1] == pytest.approx(before[0][3], abs=1e-12)
