"""Both jobs against a real item_service and session_service: rescoring after a recalibration, resuming an
interrupted run, and item statistics written to the bank."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import scoring_service_pb2_grpc, session_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb

from launcher.procs import REPO_ROOT, ServiceProcess, clean_env
from tests.scoring_jobs.jobs import job
from tests.session_service.conftest import session_process
from tests.support.exam import answer, as_user, full_items, new_user, request_id
from tests.support.tokens import TEST_TOKEN_KEY, metadata
from toefl_core.auth import Role

STUDENTS = 6
ADMIN = metadata(Role.ADMIN, "usr-jobs-admin")
SUMMARY = re.compile(
    r"run (\S+): (\d+) sessions seen, (\d+) (?:changed|would change), (\d+) unchanged, (\d+) failed"
)


@dataclass
class Taken:
    session_id: str
    # Item id -> whether the answer given was right, and the time the student took over it.
    correct: dict[str, bool]
    elapsed_ms: dict[str, int]


@dataclass
class World:
    item_proc: ServiceProcess
    session_proc: ServiceProcess
    taken: list[Taken]

    def env(self) -> dict[str, str]:
        return {"ITEM_SERVICE_ADDR": self.item_proc.address, "SESSION_SERVICE_ADDR": self.session_proc.address}

    def items(self) -> item_service_pb2_grpc.ItemServiceStub:
        return item_service_pb2_grpc.ItemServiceStub(grpc.insecure_channel(self.item_proc.address))

    def scoring(self) -> scoring_service_pb2_grpc.ScoringServiceStub:
        return scoring_service_pb2_grpc.ScoringServiceStub(grpc.insecure_channel(self.session_proc.address))

    def versions(self, session_id: str) -> list[spb.ScoreVersion]:
        request = spb.ListScoreVersionsRequest(session_id=session_id)
        return list(self.scoring().ListScoreVersions(request, metadata=ADMIN).versions)

    def seen_by(self, item_id: str) -> set[str]:
        return {t.session_id for t in self.taken if item_id in t.correct}

    def recalibrate(self, item_ids: set[str]) -> None:
        """New IRT parameters, as a calibration run would write them: a new revision of each item."""
        stub = self.items()
        for item_id in sorted(item_ids):
            item = stub.GetItem(
                item_service_pb2.GetItemRequest(item_id=item_id, view=item_pb2.ITEM_VIEW_FULL), metadata=ADMIN
            )
            item.irt.a = round(item.irt.a * 0.8 + 0.3, 6)
            stub.UpdateItem(
                item_service_pb2.UpdateItemRequest(item=item, update_mask=FieldMask(paths=["irt"]), note="recal"),
                metadata=ADMIN,
            )


def take_reading(
    stub: session_service_pb2_grpc.SessionServiceStub,
    world_items: item_service_pb2_grpc.ItemServiceStub,
    seed: int,
) -> Taken:
    """A student takes the Reading section to the end, answering at random."""
    rng = random.Random(seed)
    student = new_user(stub)
    md = as_user(student)
    session = stub.CreateSession(
        pb.CreateSessionRequest(
            scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING, request_id=request_id()
        ),
        metadata=md,
    )
    correct: dict[str, bool] = {}
    elapsed: dict[str, int] = {}
    while session.HasField("current_module"):
        for item in full_items(world_items, session.current_module.items):
            correct[item.item_id] = rng.random() < 0.6
            elapsed[item.item_id] = rng.randrange(5_000, 90_000)
            stub.SubmitResponse(
                pb.SubmitResponseRequest(
                    session_id=session.session_id,
                    item_id=item.item_id,
                    answer=answer(item, correct=correct[item.item_id]),
                    elapsed_ms=elapsed[item.item_id],
                    request_id=request_id(),
                ),
                metadata=md,
            )
        session = stub.AdvanceModule(
            pb.AdvanceModuleRequest(session_id=session.session_id, request_id=request_id()), metadata=md
        )
    stub.FinishSession(pb.FinishSessionRequest(session_id=session.session_id), metadata=md)
    return Taken(session_id=session.session_id, correct=correct, elapsed_ms=elapsed)


@pytest.fixture(scope="module")
def world(item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    proc = session_process(tmp_path_factory.mktemp("jobs-session"), item_address=item_service_proc.address).start()
    try:
        with (
            grpc.insecure_channel(proc.address) as channel,
            grpc.insecure_channel(item_service_proc.address) as item_channel,
        ):
            stub = session_service_pb2_grpc.SessionServiceStub(channel)
            items = item_service_pb2_grpc.ItemServiceStub(item_channel)
            taken = [take_reading(stub, items, seed) for seed in range(STUDENTS)]
        yield World(item_proc=item_service_proc, session_proc=proc, taken=taken)
    finally:
        proc.terminate()


def summary_of(stdout: str) -> tuple[str, int, int, int, int]:
    found = SUMMARY.search(stdout)
    assert found, stdout
    run_id, *counts = found.groups()
    seen, changed, unchanged, failed = map(int, counts)
    return run_id, seen, changed, unchanged, failed


def batch_calls(world: World) -> list[str]:
    """The BatchRescoreSessions calls session_service has served, by its log (one line per call)."""
    return [line for line in world.session_proc.log_text().splitlines() if "BatchRescoreSessions: " in line]


def changed_sessions(stdout: str) -> set[str]:
    return {
        line.split(":", 1)[0]
        for line in stdout.splitlines()
        if ": changed: " in line or ": would change: " in line
    }


def test_rescore_writes_new_versions_for_what_changed_and_a_second_run_nothing(
    world: World, tmp_path: Path
) -> None:
    coverage = {item_id: world.seen_by(item_id) for t in world.taken for item_id in t.correct}
    # The item seen by the fewest sessions: some change, the others must not.
    item_id = min(coverage, key=lambda i: (len(coverage[i]), i))
    expected = coverage[item_id]
    before = {t.session_id: world.versions(t.session_id) for t in world.taken}
    world.recalibrate({item_id})
    state = str(tmp_path / "rescore.json")

    dry = job("rescore", "--dry-run", "--batch-size", "4", "--state-file", state, env=world.env())
    assert dry.returncode == 0, dry.stderr
    assert summary_of(dry.stdout)[1:] == (STUDENTS, len(expected), STUDENTS - len(expected), 0)
    assert changed_sessions(dry.stdout) == expected and "dry run" in dry.stdout
    assert {t.session_id: world.versions(t.session_id) for t in world.taken} == before
    assert not Path(state).exists()

    calls = len(batch_calls(world))
    done = job("rescore", "--batch-size", "4", "--state-file", state, env=world.env())
    assert done.returncode == 0, done.stderr
    # A page is one call: pages of 4 sessions and the rest.
    served = batch_calls(world)[calls:]
    assert [line.split("BatchRescoreSessions: ")[1] for line in served] == [
        "4 sessions, 0 failed",
        f"{STUDENTS - 4} sessions, 0 failed",
    ]
    assert summary_of(done.stdout)[1:] == (STUDENTS, len(expected), STUDENTS - len(expected), 0)
    assert changed_sessions(done.stdout) == expected
    for session_id, old in before.items():
        now = world.versions(session_id)
        if session_id in expected:
            # A new version on top; the old ones kept as they were.
            assert now[1:] == old and now[0].reason == "rescore" and now[0].version == old[0].version + 1
            assert now[0].parameter_revisions[item_id] == old[0].parameter_revisions[item_id] + 1
        else:
            assert now == old

    again = job("rescore", "--batch-size", "4", "--state-file", state, env=world.env())
    assert again.returncode == 0, again.stderr
    assert summary_of(again.stdout)[1:] == (STUDENTS, 0, STUDENTS, 0)
    assert summary_of(again.stdout)[0] != summary_of(done.stdout)[0]


def test_a_run_interrupted_by_a_service_going_down_resumes(world: World, tmp_path: Path) -> None:
    # Recalibrate one item of every session, so that every session changes.
    world.recalibrate({sorted(t.correct)[0] for t in world.taken})
    before = {t.session_id: len(world.versions(t.session_id)) for t in world.taken}
    state = tmp_path / "rescore.json"
    args = [sys.executable, "-m", "scoring_jobs", "rescore", "--batch-size", "1", "--state-file", str(state)]
    first = subprocess.Popen(
        [*args, "--retry-seconds", "1"],
        cwd=REPO_ROOT,
        env=clean_env(TOEFL_TOKEN_KEY=TEST_TOKEN_KEY, **world.env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    first_line = first.stdout.readline()
    # One session is done: take session_service away under the job.
    world.session_proc.kill()
    rest, errors = first.communicate(timeout=120)
    assert first.returncode == 1, errors
    assert "session_service at" in errors and "unavailable" in errors and "Traceback" not in errors
    assert "run the same command again to resume" in errors
    done_first = changed_sessions(first_line + rest)
    saved = json.loads(state.read_text())
    # What the state counts is what the job reported before it stopped.
    assert not saved["completed"] and done_first and saved["summary"]["seen"] == len(done_first)

    world.session_proc.restart()
    resumed = job("rescore", "--batch-size", "1", "--state-file", str(state), env=world.env())
    assert resumed.returncode == 0, resumed.stderr
    run_id, seen, changed, unchanged, failed = summary_of(resumed.stdout)
    # The same run, counted from where it stopped; what the first part did is not done again.
    assert run_id == saved["summary"]["run_id"]
    assert (seen, changed, unchanged, failed) == (STUDENTS, STUDENTS, 0, 0)
    assert changed_sessions(resumed.stdout) == {t.session_id for t in world.taken} - done_first
    for session_id, count in before.items():
        assert len(world.versions(session_id)) == count + 1
    assert json.loads(state.read_text())["completed"]


def test_item_statistics_are_written_and_read_back(world: World, tmp_path: Path) -> None:
    state = str(tmp_path / "stats.json")
    items = world.items()
    dry = job("item-stats", "--dry-run", "--state-file", state, env=world.env())
    assert dry.returncode == 0, dry.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in dry.stdout.splitlines() if line.startswith("itm-")}
    seen_items = {item_id for t in world.taken for item_id in t.correct}
    assert set(rows) == seen_items
    with pytest.raises(grpc.RpcError) as missing:
        items.GetItemStatistics(item_service_pb2.GetItemStatisticsRequest(item_id=min(seen_items)), metadata=ADMIN)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    # As if a run of these same figures had stopped after writing its first 14 items: only the rest are sent.
    run_id = re.search(r"run (stats-\w+)", dry.stdout)
    assert run_id
    first = sorted(seen_items)[:14]
    Path(state).write_text(
        json.dumps(
            {
                "job": "item-stats",
                "version": 1,
                "run_id": run_id[1],
                "items_done": 14,
                "written": 14,
                "unchanged": 0,
            }
        )
    )
    resumed = job("item-stats", "--batch-size", "5", "--state-file", state, env=world.env())
    assert resumed.returncode == 0, resumed.stderr
    assert f"written {len(seen_items)}, unchanged 0" in resumed.stdout
    for item_id in first:
        with pytest.raises(grpc.RpcError) as skipped:
            items.GetItemStatistics(item_service_pb2.GetItemStatisticsRequest(item_id=item_id), metadata=ADMIN)
        assert skipped.value.code() == grpc.StatusCode.NOT_FOUND

    # The run is complete: the next one is a new run over every item.
    done = job("item-stats", "--batch-size", "7", "--state-file", state, env=world.env())
    assert done.returncode == 0, done.stderr
    assert f"written 14, unchanged {len(seen_items) - 14}" in done.stdout
    for item_id in seen_items:
        stats = items.GetItemStatistics(item_service_pb2.GetItemStatisticsRequest(item_id=item_id), metadata=ADMIN)
        sessions = world.seen_by(item_id)
        # Every student answered every item they were given (a hand count from what the test answered).
        assert stats.administrations == len(sessions)
        assert stats.exposure_rate == len(sessions) / STUDENTS
        times = [t.elapsed_ms[item_id] / 1000 for t in world.taken if item_id in t.correct]
        assert stats.mean_response_seconds == pytest.approx(sum(times) / len(times), rel=1e-12)
        assert stats.run_id.startswith("stats-")
        item = items.GetItem(
            item_service_pb2.GetItemRequest(item_id=item_id, view=item_pb2.ITEM_VIEW_FULL), metadata=ADMIN
        )
        if item.irt.model != item_pb2.IRT_MODEL_GPCM:
            right = sum(t.correct[item_id] for t in world.taken if item_id in t.correct)
            assert stats.p_value == right / len(sessions)

    again = job("item-stats", "--batch-size", "7", "--state-file", state, env=world.env())
    assert again.returncode == 0, again.stderr
    assert f"written 0, unchanged {len(seen_items)}" in again.stdout
