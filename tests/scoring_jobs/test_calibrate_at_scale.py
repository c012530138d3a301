"""Issue 20 end to end at scale (slow): 300 simulated students take Reading over gRPC, meeting two pretest items in
the blueprint's pretest slots; the calibration job recovers the parameters they answered by, an author activates
them, students after them are scored with them, and a rescore agrees."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.item_service.test_pretest import pretested
from tests.scoring_jobs.jobs import job
from tests.scoring_jobs.test_calibrate import CTW, summary
from tests.scoring_jobs.test_end_to_end import ADMIN
from tests.session_service.conftest import session_process
from tests.support.exam import as_user, full_items, new_user, request_id
from validation.simulation import Simulee

STUDENTS = 300
# Students after the activation, until one meets an activated item (a module holds one Complete the Words task
# of some 87: a few percent of sessions meet one of the two).
AFTER_AT_MOST = 300
MIN_RESPONSES = 250
# The pretest items are harder than their authors guessed: the students answer them with every step this much
# higher than the declared parameters, which the calibration has to find.
HARDER_BY = 0.6


def take_reading(
    stub: session_service_pb2_grpc.SessionServiceStub,
    items: item_service_pb2_grpc.ItemServiceStub,
    simulee: Simulee,
) -> tuple[str, dict[str, int]]:
    """A student of the simulee's ability takes Reading over gRPC to the end; the session, and the revision of
    each item it pinned."""
    md = as_user(new_user(stub))
    session = stub.CreateSession(
        pb.CreateSessionRequest(
            scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_READING, request_id=request_id()
        ),
        metadata=md,
    )
    seen: dict[str, int] = {}
    while session.HasField("current_module"):
        for item in full_items(items, session.current_module.items):
            seen[item.item_id] = item.revision
            stub.SubmitResponse(
                pb.SubmitResponseRequest(
                    session_id=session.session_id,
                    item_id=item.item_id,
                    answer=simulee.answer(item),
                    request_id=request_id(),
                ),
                metadata=md,
            )
        session = stub.AdvanceModule(
            pb.AdvanceModuleRequest(session_id=session.session_id, request_id=request_id()), metadata=md
        )
    stub.FinishSession(pb.FinishSessionRequest(session_id=session.session_id), metadata=md)
    return session.session_id, seen


def say(line: str) -> None:
    sys.stdout.write(f"[at scale] {line}\n")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_three_hundred_students_calibrate_activate_rescore(
    item_service_proc: ServiceProcess, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    proc = session_process(tmp_path_factory.mktemp("at-scale"), item_address=item_service_proc.address).start()
    try:
        with (
            grpc.insecure_channel(proc.address) as channel,
            grpc.insecure_channel(item_service_proc.address) as item_channel,
        ):
            items = item_service_pb2_grpc.ItemServiceStub(item_channel)
            stub = session_service_pb2_grpc.SessionServiceStub(channel)
            pretest = [pretested(items, CTW) for _ in range(2)]
            truth = {}
            for item in pretest:
                true = item_pb2.IrtParameters()
                true.CopyFrom(item.irt)
                true.steps[:] = [step + HARDER_BY for step in item.irt.steps]
                truth[item.item_id] = true
            rng = np.random.default_rng(2026)
            thetas = rng.standard_normal(STUDENTS + AFTER_AT_MOST)
            met = {item.item_id: 0 for item in pretest}
            activated: dict[str, int] = {}
            for number in range(STUDENTS):
                simulee = Simulee(float(thetas[number]), np.random.default_rng([2026, number]), truth=truth)
                _, seen = take_reading(stub, items, simulee)
                for item_id in met.keys() & seen:
                    met[item_id] += 1
            say(f"{STUDENTS} students took Reading; pretest responses per item: {met}")
            assert all(count == STUDENTS for count in met.values()), "one pretest slot per module, two modules"

            env = {"ITEM_SERVICE_ADDR": item_service_proc.address, "SESSION_SERVICE_ADDR": proc.address}
            done = job(
                "calibrate",
                "--min-responses",
                str(MIN_RESPONSES),
                "--state-file",
                str(tmp_path / "c.json"),
                env=env,
            )
            assert done.returncode == 0, done.stderr
            run_id, responses, count, calibrated, too_few = summary(done.stdout)
            say(f"calibration {run_id}: {responses} responses, {count} pretest items, {calibrated} calibrated")
            assert (count, calibrated, too_few) == (2, 2, 0)
            for item in pretest:
                proposed = items.GetItem(
                    item_service_pb2.GetItemRequest(item_id=item.item_id, view=item_pb2.ITEM_VIEW_FULL),
                    metadata=ADMIN,
                )
                assert proposed.status == item_pb2.ITEM_STATUS_IN_REVIEW
                calibration = proposed.irt.calibration
                true_b = float(np.mean(truth[item.item_id].steps))
                declared_b = float(np.mean(item.irt.steps))
                found_b = float(np.mean(proposed.irt.steps))
                say(
                    f"{item.item_id}: a {proposed.irt.a:.3f} (se {calibration.se_a:.3f}, true {item.irt.a:.3f}); "
                    f"mean step {found_b:.3f} (true {true_b:.3f}, declared {declared_b:.3f}); n "
                    f"{calibration.sample_size}; population N({calibration.population_mean:.2f}, "
                    f"{calibration.population_sd:.2f}^2)"
                )
                assert calibration.run_id == run_id and calibration.sample_size == STUDENTS
                # The estimate found the items harder than declared, near how hard they are.
                assert abs(found_b - true_b) < abs(found_b - declared_b)
                assert abs(calibration.population_mean) < 0.3 and abs(calibration.population_sd - 1) < 0.3
                items.ReviewItem(
                    item_service_pb2.ReviewItemRequest(
                        item_id=item.item_id, verdict=item_pb2.REVIEW_VERDICT_APPROVE
                    ),
                    metadata=ADMIN,
                )
                active = items.ActivateItem(
                    item_service_pb2.ActivateItemRequest(item_id=item.item_id), metadata=ADMIN
                )
                assert active.status == item_pb2.ITEM_STATUS_ACTIVE and active.irt.calibration.run_id == run_id
                activated[active.item_id] = active.revision

            # Students after the activation meet an item (when assembly picks it) as an operational one, pinned at
            # its calibrated revision: their score counts it with the calibration's estimates.
            after, using = 0, ""
            while not using and after < AFTER_AT_MOST:
                number = STUDENTS + after
                simulee = Simulee(float(thetas[number]), np.random.default_rng([2026, number]), truth=truth)
                session_id, seen = take_reading(stub, items, simulee)
                after += 1
                pinned = {i: seen[i] for i in activated.keys() & seen.keys()}
                if pinned:
                    assert pinned == {i: activated[i] for i in pinned}, "pinned at the calibrated revision"
                    using = session_id
            say(f"{after} students after the activation; session {using or 'none'} met an activated item")
            assert using, f"none of {after} sessions met an activated item"

        rescored = job("rescore", "--state-file", str(tmp_path / "r.json"), env=env)
        assert rescored.returncode == 0, rescored.stderr
        line = re.search(r"\d+ sessions seen.*", rescored.stdout)
        say(f"rescore: {line.group(0) if line else rescored.stdout}")
        # Today's parameters are the ones every session was scored with: pretest responses never count, and the
        # session that met an activated item was scored with its calibrated revision already; the rescore reads
        # that same revision.
        total = STUDENTS + after
        assert f"{total} sessions seen, 0 changed, {total} unchanged, 0 failed" in rescored.stdout
    finally:
        proc.terminate()
