"""The calibration job against a real item_service and session_service: students meet pretest items in their
Reading modules, the job proposes the items' estimates for review, an author activates them, and a rescore leaves
the sessions that met them as pretest items unchanged."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.item_service.test_pretest import pretested
from tests.scoring_jobs.jobs import job
from tests.scoring_jobs.test_end_to_end import ADMIN, take_reading
from tests.session_service.conftest import session_process

STUDENTS = 30
CTW = item_pb2.TASK_TYPE_COMPLETE_THE_WORDS
SUMMARY = re.compile(
    r"calibration.* run (cal-\w+): (\d+) responses .* (\d+) pretest items: (\d+) calibrated, (\d+) not"
)


@dataclass
class World:
    item_proc: ServiceProcess
    session_proc: ServiceProcess
    pretest: list[str]
    sessions: list[str]

    def env(self) -> dict[str, str]:
        return {"ITEM_SERVICE_ADDR": self.item_proc.address, "SESSION_SERVICE_ADDR": self.session_proc.address}

    def item(self, item_id: str) -> item_pb2.Item:
        with grpc.insecure_channel(self.item_proc.address) as channel:
            stub = item_service_pb2_grpc.ItemServiceStub(channel)
            return stub.GetItem(
                item_service_pb2.GetItemRequest(item_id=item_id, view=item_pb2.ITEM_VIEW_FULL), metadata=ADMIN
            )


@pytest.fixture(scope="module")
def world(item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    proc = session_process(tmp_path_factory.mktemp("calibrate"), item_address=item_service_proc.address).start()
    try:
        with (
            grpc.insecure_channel(proc.address) as channel,
            grpc.insecure_channel(item_service_proc.address) as item_channel,
        ):
            items = item_service_pb2_grpc.ItemServiceStub(item_channel)
            pretest = [pretested(items, CTW).item_id for _ in range(2)]
            stub = session_service_pb2_grpc.SessionServiceStub(channel)
            sessions = [take_reading(stub, items, seed).session_id for seed in range(STUDENTS)]
        yield World(item_proc=item_service_proc, session_proc=proc, pretest=pretest, sessions=sessions)
    finally:
        proc.terminate()


def summary(stdout: str) -> tuple[str, int, int, int, int]:
    found = SUMMARY.search(stdout)
    assert found, stdout
    run_id, *counts = found.groups()
    responses, items, calibrated, too_few = map(int, counts)
    return run_id, responses, items, calibrated, too_few


def test_calibrate_proposes_for_review_and_an_author_activates(world: World, tmp_path: Path) -> None:
    state = tmp_path / "calibrate.json"
    dry = job("calibrate", "--dry-run", "--min-responses", "1000", "--state-file", str(state), env=world.env())
    assert dry.returncode == 0, dry.stderr
    _, responses, items, calibrated, too_few = summary(dry.stdout)
    # Every student met both pretest items (one per module), and 30 responses are below 1,000.
    assert (items, calibrated, too_few) == (2, 0, 2) and responses > 2 * STUDENTS
    assert all(f"{item_id}\tnot yet calibratable: {STUDENTS} responses" in dry.stdout for item_id in world.pretest)
    assert not state.exists()
    assert {world.item(i).status for i in world.pretest} == {item_pb2.ITEM_STATUS_PRETEST}

    done = job("calibrate", "--min-responses", "20", "--state-file", str(state), env=world.env())
    assert done.returncode == 0, done.stderr
    run_id, _, items, calibrated, too_few = summary(done.stdout)
    assert (items, calibrated, too_few) == (2, 2, 0)
    assert json.loads(state.read_text())["completed"] is True
    for item_id in world.pretest:
        proposed = world.item(item_id)
        # In review with the estimates, never active on its own.
        assert proposed.status == item_pb2.ITEM_STATUS_IN_REVIEW
        calibration = proposed.irt.calibration
        assert calibration.run_id == run_id and calibration.sample_size == STUDENTS
        assert calibration.se_a > 0 and len(calibration.se_steps) == len(proposed.irt.steps)
        assert proposed.irt.model == item_pb2.IRT_MODEL_GPCM and proposed.irt.a > 0

    # Nothing left in PRETEST: a second run proposes nothing and changes nothing.
    again = job("calibrate", "--min-responses", "20", "--state-file", str(state), env=world.env())
    assert again.returncode == 0, again.stderr
    assert summary(again.stdout)[2:] == (0, 0, 0)

    with grpc.insecure_channel(world.item_proc.address) as channel:
        stub = item_service_pb2_grpc.ItemServiceStub(channel)
        item_id = world.pretest[0]
        stub.ReviewItem(
            item_service_pb2.ReviewItemRequest(item_id=item_id, verdict=item_pb2.REVIEW_VERDICT_APPROVE),
            metadata=ADMIN,
        )
        active = stub.ActivateItem(item_service_pb2.ActivateItemRequest(item_id=item_id), metadata=ADMIN)
    assert active.status == item_pb2.ITEM_STATUS_ACTIVE and active.irt.calibration.run_id == run_id

    # The sessions met it as a pretest item: rescoring with today's parameters leaves their scores as they were.
    rescored = job("rescore", "--state-file", str(tmp_path / "rescore.json"), env=world.env())
    assert rescored.returncode == 0, rescored.stderr
    assert f"{STUDENTS} sessions seen, 0 changed, {STUDENTS} unchanged, 0 failed" in rescored.stdout


def test_drift_report_re_estimates_the_operational_items(world: World) -> None:
    report = job("drift", "--min-responses", "3", "--threshold", "0.000001", env=world.env())
    assert report.returncode == 0, report.stderr
    found = re.search(r"(\d+) operational items re-estimated \((\d+) with fewer.*; (\d+) drifted", report.stdout)
    assert found, report.stdout
    re_estimated, too_few, drifted = map(int, found.groups())
    # Every re-estimate differs from its stored value by more than a millionth of a logit.
    assert re_estimated > 0 and too_few > 0 and drifted == re_estimated
    assert report.stdout.count("\tSECTION_READING\t") == drifted
