"""Second stages prepared while their router module runs: an advance takes the module routed to, exactly the one
item_service would have assembled then, even with item_service gone; a place whose items changed is assembled;
the schedule: in order of due time, at once when half the router is answered, never for a router closed."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess, item_service_process
from session_service.blueprint import ModulePlan, load_blueprint
from session_service.domain.modules import module_seed
from session_service.prepare import Candidates, ModulePreparer
from session_service.storage.sessions import NewModule
from tests.item_service.rpc import SERVICE
from tests.session_service.conftest import session_process
from tests.support.exam import as_user, new_user, request_id
from tests.support.tokens import TEST_TOKEN_KEY

READING = item_pb2.SECTION_READING
SECOND_STAGES = (pb.MODULE_STAGE_LOWER, pb.MODULE_STAGE_UPPER)


@pytest.fixture
def stack(demo_bank_template: Path, tmp_path: Path) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """An item_service of the test's own (the test stops it) and a session_service preparing at once."""
    shutil.copyfile(demo_bank_template, tmp_path / "item_bank.db")
    items = item_service_process(tmp_path / "items", bank=tmp_path / "item_bank.db", token_key=TEST_TOKEN_KEY)
    items.start()
    sessions = session_process(
        tmp_path / "sessions", item_address=items.address, env={"SESSION_PREPARE_AFTER_SECONDS": "0"}
    ).start()
    yield items, sessions
    sessions.terminate()
    items.terminate()


def prepared(proc: ServiceProcess, session_id: str) -> None:
    """Wait until the service says the session's second stages are ready (its own log line)."""
    deadline = time.monotonic() + 60
    while f"session {session_id}: second stages prepared" not in proc.log_text():
        assert time.monotonic() < deadline, "the second stages were never prepared"
        time.sleep(0.1)


def test_the_routed_module_is_the_prepared_one_even_with_item_service_gone(
    stack: tuple[ServiceProcess, ServiceProcess],
) -> None:
    items, sessions = stack
    with grpc.insecure_channel(sessions.address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        student = new_user(stub)
        session = stub.CreateSession(
            pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=READING, request_id=request_id()),
            metadata=as_user(student),
        )
        router = session.current_module
        prepared(sessions, session.session_id)
        expected = assembled_for(items, session.session_id, router)
        items.terminate()

        advanced = stub.AdvanceModule(
            pb.AdvanceModuleRequest(session_id=session.session_id, request_id=request_id()),
            metadata=as_user(student),
        )
    second = advanced.current_module
    assert second.stage in SECOND_STAGES and second.sequence == router.sequence + 1
    assert [item.item_id for item in second.items if item.item_id in expected[second.stage]] == expected[
        second.stage
    ]
    assert not {item.item_id for item in second.items} & {item.item_id for item in router.items}
    assert second.remaining_seconds > 0


def assembled_for(items: ServiceProcess, session_id: str, router: pb.ModuleState) -> dict[int, list[str]]:
    """The operational items item_service assembles for each second stage after this router, asked directly."""
    section = load_blueprint().section(READING)
    expected: dict[int, list[str]] = {}
    with grpc.insecure_channel(items.address) as channel:
        item_stub = item_service_pb2_grpc.ItemServiceStub(channel)
        for stage in SECOND_STAGES:
            assembled = item_stub.AssembleModule(
                item_service_pb2.AssembleModuleRequest(
                    spec=section.stage(stage).spec(),
                    exclude_item_ids=[item.item_id for item in router.items],
                    seed=module_seed(session_id, router.sequence + 1),
                    view=item_pb2.ITEM_VIEW_FULL,
                ),
                metadata=SERVICE,
            )
            expected[stage] = [i.item_id for i in assembled.items if i.status != item_pb2.ITEM_STATUS_PRETEST]
    return expected


# The preparer's schedule on its own, with an assembly that records what it was asked for.
LOWER_PLAN = load_blueprint().section(READING).stage(pb.MODULE_STAGE_LOWER)


class Recorder:
    def __init__(self) -> None:
        self.assembled: list[str] = []

    async def __call__(self, candidates: Candidates, plan: ModulePlan) -> NewModule:
        self.assembled.append(candidates.session_id)
        return NewModule(
            module_id=f"mod-{candidates.session_id}",
            sequence=candidates.sequence,
            plan_key=plan.key,
            section="SECTION_READING",
            stage="MODULE_STAGE_LOWER",
            seed=1,
            assembly_record=b"",
            start_ms=0,
            deadline_ms=0,
            items=(),
            passages=(),
        )


def candidates(session_id: str, *, after_seconds: float, after_answers: int = 10) -> Candidates:
    return Candidates(
        session_id=session_id,
        sequence=2,
        plans=(LOWER_PLAN,),
        exclude_item_ids=frozenset({"itm-seen"}),
        after_seconds=after_seconds,
        after_answers=after_answers,
    )


@pytest.fixture
async def preparer() -> AsyncIterator[tuple[ModulePreparer, Recorder]]:
    recorder = Recorder()
    preparer = ModulePreparer(recorder)
    task = asyncio.create_task(preparer.run_forever())
    yield preparer, recorder
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def until(condition: Callable[[], bool]) -> None:
    # The preparer's store has no event to wait on: it is polled, as a client would see it.
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_half_the_router_answered_prepares_its_second_stages_at_once(
    preparer: tuple[ModulePreparer, Recorder],
) -> None:
    modules, recorder = preparer
    modules.router_opened(candidates("ses-a", after_seconds=3600, after_answers=2))
    modules.answered("ses-a")
    await asyncio.sleep(0.1)
    assert recorder.assembled == []
    modules.answered("ses-a")
    await until(lambda: len(modules) == 1)
    taken = modules.take(session_id="ses-a", sequence=2, plan_key=LOWER_PLAN.key, seen=["itm-seen"])
    assert taken is not None and taken.module_id == "mod-ses-a"


async def test_second_stages_are_prepared_in_the_order_they_fall_due(
    preparer: tuple[ModulePreparer, Recorder],
) -> None:
    modules, recorder = preparer
    # Opened first, due last (a student with extra time): it does not hold back the one due sooner.
    modules.router_opened(candidates("ses-late", after_seconds=0.6))
    modules.router_opened(candidates("ses-soon", after_seconds=0.05))
    await until(lambda: len(modules) == 2)
    assert recorder.assembled == ["ses-soon", "ses-late"]


async def test_a_router_closed_before_its_second_stages_fell_due_has_none_assembled(
    preparer: tuple[ModulePreparer, Recorder],
) -> None:
    modules, recorder = preparer
    modules.router_opened(candidates("ses-gone", after_seconds=0.2))
    modules.router_opened(candidates("ses-kept", after_seconds=0.4))
    assert modules.take(session_id="ses-gone", sequence=2, plan_key=LOWER_PLAN.key, seen=["itm-seen"]) is None
    await until(lambda: len(modules) == 1)
    assert recorder.assembled == ["ses-kept"]
