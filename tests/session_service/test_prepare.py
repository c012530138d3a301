"""Second stages prepared while their router module runs: an advance takes the module routed to, exactly the one
item_service would have assembled then, even with item_service gone; a place whose items changed is assembled."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from launcher.procs import ServiceProcess, item_service_process
from session_service import prepare
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


# ---- the store of prepared places: bounded without losing work


# Stand-ins for assembled modules: the store keeps and hands back whatever it is given.
MODULES = {session_id: cast(NewModule, object()) for session_id in ("ses-a", "ses-b", "ses-c")}
PLAN = load_blueprint().section(READING).modules[1]


@asynccontextmanager
async def preparing(assembled: list[str]) -> AsyncIterator[ModulePreparer]:
    """A preparer of one place at most, running, that notes each session it assembles for."""

    async def assemble(place: Candidates, _plan: ModulePlan) -> NewModule:
        assembled.append(place.session_id)
        return MODULES[place.session_id]

    preparer = ModulePreparer(assemble, limit=1)
    runner = asyncio.create_task(preparer.run_forever())
    try:
        yield preparer
    finally:
        runner.cancel()


async def router_opened(preparer: ModulePreparer, *session_ids: str) -> None:
    for session_id in session_ids:
        preparer.router_opened(
            Candidates(
                session_id=session_id,
                sequence=2,
                plans=(PLAN,),
                exclude_item_ids=frozenset({"itm-1"}),
                after_seconds=0.0,
            )
        )
    await asyncio.sleep(0.2)


def take(preparer: ModulePreparer, session_id: str) -> NewModule | None:
    return preparer.take(session_id=session_id, sequence=2, plan_key=PLAN.key, seen=["itm-1"])


async def test_a_full_store_prepares_no_more_rather_than_push_out_a_place_prepared_earlier() -> None:
    assembled: list[str] = []
    async with preparing(assembled) as preparer:
        await router_opened(preparer, "ses-a", "ses-b")
        # The first place is kept for its advance; the second was not assembled only to push it out.
        assert assembled == ["ses-a"]
        assert take(preparer, "ses-a") is MODULES["ses-a"]
        await router_opened(preparer, "ses-c")
        assert assembled == ["ses-a", "ses-c"]


async def test_a_place_nobody_took_goes_stale_and_makes_room(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its session advanced before it was prepared, or stopped: kept for good, it would fill the store.
    monkeypatch.setattr(prepare, "STALE_AFTER_SECONDS", 0.0)
    assembled: list[str] = []
    async with preparing(assembled) as preparer:
        await router_opened(preparer, "ses-a", "ses-b")
        assert assembled == ["ses-a", "ses-b"]
        assert take(preparer, "ses-a") is None
