"""The modules that may follow an open module, prepared while it runs: an advance takes the one it goes to, exactly
the one item_service would have assembled then, even with item_service gone."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
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
from session_service.prepare import Assemble, Candidates, ModulePreparer
from session_service.storage.sessions import NewModule
from tests.item_service.rpc import SERVICE
from tests.session_service.conftest import session_process
from tests.support.exam import answer, as_user, full_items, new_user, request_id
from tests.support.tokens import TEST_TOKEN_KEY

READING = item_pb2.SECTION_READING
SECOND_STAGES = (pb.MODULE_STAGE_LOWER, pb.MODULE_STAGE_UPPER)


@contextmanager
def services(
    demo_bank: Path, workdir: Path, env: dict[str, str]
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """An item_service of the test's own (the test may stop it) and a session_service with these settings."""
    shutil.copyfile(demo_bank, workdir / "item_bank.db")
    items = item_service_process(workdir / "items", bank=workdir / "item_bank.db", token_key=TEST_TOKEN_KEY)
    items.start()
    sessions = session_process(workdir / "sessions", item_address=items.address, env=env).start()
    try:
        yield items, sessions
    finally:
        sessions.terminate()
        items.terminate()


@pytest.fixture
def stack(demo_bank_template: Path, tmp_path: Path) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """A session_service preparing at once."""
    with services(demo_bank_template, tmp_path, {"SESSION_PREPARE_AFTER_SECONDS": "0"}) as both:
        yield both


def prepared(proc: ServiceProcess, session_id: str, times: int = 1) -> None:
    """Wait until the service says, `times` times, that the session's next modules are ready (its own log line)."""
    deadline = time.monotonic() + 60
    while proc.log_text().count(f"session {session_id}: next modules prepared") < times:
        assert time.monotonic() < deadline, "the next modules were never prepared"
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


def test_the_next_sections_first_module_is_prepared_too(stack: tuple[ServiceProcess, ServiceProcess]) -> None:
    items, sessions = stack
    with grpc.insecure_channel(sessions.address) as channel:
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        student = new_user(stub)
        session = stub.CreateSession(
            pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_FULL_TEST, request_id=request_id()),
            metadata=as_user(student),
        )
        prepared(sessions, session.session_id)
        second = stub.AdvanceModule(
            pb.AdvanceModuleRequest(session_id=session.session_id, request_id=request_id()),
            metadata=as_user(student),
        ).current_module
        prepared(sessions, session.session_id, times=2)
        seen = [item.item_id for item in (*session.current_module.items, *second.items)]
        expected = operational_items(
            items, load_blueprint().section(item_pb2.SECTION_LISTENING).first(), seen, session.session_id, 3
        )
        items.terminate()

        listening = stub.AdvanceModule(
            pb.AdvanceModuleRequest(session_id=session.session_id, request_id=request_id()),
            metadata=as_user(student),
        ).current_module
    assert listening.section == item_pb2.SECTION_LISTENING and listening.stage == pb.MODULE_STAGE_ROUTER
    assert [item.item_id for item in listening.items if item.item_id in expected] == expected
    assert listening.remaining_seconds > 0


def test_a_quarter_of_a_modules_items_answered_bring_its_successors_forward(
    demo_bank_template: Path, tmp_path: Path
) -> None:
    # Due by time, the router's second stages would wait for half its time, minutes; from half its items answered,
    # the last places of a room of 500 paced alike were not ready at the router's end (docs/PERFORMANCE.md).
    with (
        services(demo_bank_template, tmp_path, {}) as (items, sessions),
        grpc.insecure_channel(sessions.address) as channel,
        grpc.insecure_channel(items.address) as item_channel,
    ):
        stub = session_service_pb2_grpc.SessionServiceStub(channel)
        student = new_user(stub)
        session = stub.CreateSession(
            pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=READING, request_id=request_id()),
            metadata=as_user(student),
        )
        router = full_items(item_service_pb2_grpc.ItemServiceStub(item_channel), session.current_module.items)
        quarter = prepare.due_after_answers(len(router))
        assert quarter < (len(router) + 1) // 2
        for item in router[:quarter]:
            stub.SubmitResponse(
                pb.SubmitResponseRequest(
                    session_id=session.session_id,
                    item_id=item.item_id,
                    answer=answer(item, correct=True),
                    request_id=request_id(),
                ),
                metadata=as_user(student),
            )
        prepared(sessions, session.session_id)


def operational_items(
    items: ServiceProcess, plan: ModulePlan, exclude: list[str], session_id: str, sequence: int
) -> list[str]:
    """The operational items item_service assembles for this place, asked directly."""
    with grpc.insecure_channel(items.address) as channel:
        assembled = item_service_pb2_grpc.ItemServiceStub(channel).AssembleModule(
            item_service_pb2.AssembleModuleRequest(
                spec=plan.spec(),
                exclude_item_ids=exclude,
                seed=module_seed(session_id, sequence),
                view=item_pb2.ITEM_VIEW_FULL,
            ),
            metadata=SERVICE,
        )
    return [i.item_id for i in assembled.items if i.status != item_pb2.ITEM_STATUS_PRETEST]


def assembled_for(items: ServiceProcess, session_id: str, router: pb.ModuleState) -> dict[int, list[str]]:
    """The operational items item_service assembles for each second stage after this router, asked directly."""
    section = load_blueprint().section(READING)
    seen = [item.item_id for item in router.items]
    return {
        stage: operational_items(items, section.stage(stage), seen, session_id, router.sequence + 1)
        for stage in SECOND_STAGES
    }


# ---- the store of prepared places: bounded without losing work


# Stand-ins for assembled modules: the store keeps and hands back whatever it is given.
MODULES = {session_id: cast(NewModule, object()) for session_id in ("ses-a", "ses-b", "ses-c")}
PLAN = load_blueprint().section(READING).modules[1]
SECOND_STAGE_PLANS = load_blueprint().section(READING).modules[1:]


AssembleOne = Callable[[Candidates, ModulePlan], Awaitable[NewModule]]


def each(assemble_one: AssembleOne) -> Assemble:
    """Every module of a call assembled by `assemble_one`, in order, a failure in its place."""

    async def assemble(asked: Sequence[tuple[Candidates, ModulePlan]]) -> list[NewModule | Exception]:
        results: list[NewModule | Exception] = []
        for place, plan in asked:
            try:
                results.append(await assemble_one(place, plan))
            except Exception as error:
                results.append(error)
        return results

    return assemble


@asynccontextmanager
async def running(assemble: Assemble, *, limit: int = 1) -> AsyncIterator[ModulePreparer]:
    """A preparer of `limit` places at most, running, that assembles each call with `assemble`."""
    preparer = ModulePreparer(assemble, limit=limit)
    runner = asyncio.create_task(preparer.run_forever())
    try:
        yield preparer
    finally:
        runner.cancel()


@asynccontextmanager
async def preparing(assembled: list[str]) -> AsyncIterator[ModulePreparer]:
    """A preparer of one place at most, running, that notes each session it assembles for."""

    async def assemble(place: Candidates, _plan: ModulePlan) -> NewModule:
        assembled.append(place.session_id)
        return MODULES[place.session_id]

    async with running(each(assemble)) as preparer:
        yield preparer


async def router_opened(
    preparer: ModulePreparer,
    *session_ids: str,
    after_seconds: float = 0.0,
    after_answers: int = 1,
    plans: tuple[ModulePlan, ...] = (PLAN,),
) -> None:
    for session_id in session_ids:
        preparer.module_opened(
            Candidates(
                session_id=session_id,
                after_module_id="mod-1",
                sequence=2,
                plans=plans,
                exclude_item_ids=frozenset({"itm-1"}),
                after_seconds=after_seconds,
                after_answers=after_answers,
            )
        )
    await asyncio.sleep(0.2)


def take(preparer: ModulePreparer, session_id: str, after_module_id: str = "mod-1") -> NewModule | None:
    ready = preparer.take(session_id=session_id, sequence=2, plan_key=PLAN.key, after_module_id=after_module_id)
    if ready is None:
        return None
    module, seen = ready
    assert seen == {"itm-1"}
    return module


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
        await router_opened(preparer, "ses-a")
        # Due once ses-a is in the store (not while it is assembled: that counts as taken room).
        await router_opened(preparer, "ses-b")
        assert assembled == ["ses-a", "ses-b"]
        assert take(preparer, "ses-a") is None


async def test_half_the_items_answered_bring_the_next_modules_forward() -> None:
    # A student at a brisk pace asks for the next module long before half the module's time.
    assembled: list[str] = []
    async with preparing(assembled) as preparer:
        await router_opened(preparer, "ses-a", after_seconds=3600.0, after_answers=2)
        preparer.answered("ses-a")
        await asyncio.sleep(0.2)
        assert assembled == []
        preparer.answered("ses-a")
        await asyncio.sleep(0.2)
        assert assembled == ["ses-a"]
        assert take(preparer, "ses-a") is MODULES["ses-a"]


async def test_a_place_whose_advance_came_first_is_never_assembled() -> None:
    assembled: list[str] = []
    async with preparing(assembled) as preparer:
        await router_opened(preparer, "ses-a", after_seconds=0.5)
        assert take(preparer, "ses-a") is None
        await asyncio.sleep(0.7)
        assert assembled == []
        # The preparer goes on with the places after it.
        await router_opened(preparer, "ses-b")
        assert assembled == ["ses-b"]


async def test_a_place_due_sooner_goes_first() -> None:
    assembled: list[str] = []
    async with preparing(assembled) as preparer:
        await router_opened(preparer, "ses-a", after_seconds=3600.0, after_answers=1)
        await router_opened(preparer, "ses-b", after_seconds=0.1)
        assert assembled == ["ses-b"]
        assert take(preparer, "ses-b") is MODULES["ses-b"]
        preparer.answered("ses-a")
        await asyncio.sleep(0.2)
        assert assembled == ["ses-b", "ses-a"]


async def test_a_place_prepared_after_another_module_is_not_taken() -> None:
    # The session left another module than the one the place followed: the items it avoids may not be those seen.
    assembled: list[str] = []
    async with preparing(assembled) as preparer:
        await router_opened(preparer, "ses-a")
        assert assembled == ["ses-a"]
        assert take(preparer, "ses-a", after_module_id="mod-other") is None


async def test_a_place_whose_advance_came_while_it_was_assembled_is_not_kept() -> None:
    release = asyncio.Event()

    async def assemble(place: Candidates, _plan: ModulePlan) -> NewModule:
        await release.wait()
        return MODULES[place.session_id]

    async with running(each(assemble)) as preparer:
        await router_opened(preparer, "ses-a")
        assert take(preparer, "ses-a") is None
        release.set()
        await asyncio.sleep(0.1)
        # Not kept for nobody: the store has room for the next place.
        assert len(preparer) == 0


async def test_a_routers_second_stages_are_asked_in_one_call() -> None:
    # A room paced alike has its places due within one answer interval: each is ready in the time of one call to
    # item_service, not of one per module.
    calls: list[list[str]] = []

    async def assemble(asked: Sequence[tuple[Candidates, ModulePlan]]) -> list[NewModule]:
        calls.append([plan.key for _, plan in asked])
        return [MODULES[place.session_id] for place, _ in asked]

    async with running(assemble) as preparer:
        await router_opened(preparer, "ses-a", plans=SECOND_STAGE_PLANS)
        assert calls == [[plan.key for plan in SECOND_STAGE_PLANS]]
        assert take(preparer, "ses-a") is MODULES["ses-a"]


async def test_places_due_together_are_asked_together_a_bounded_number_per_call() -> None:
    # Each call to item_service costs both services more than a module it assembles.
    calls: list[list[str]] = []
    release = asyncio.Event()

    async def assemble(asked: Sequence[tuple[Candidates, ModulePlan]]) -> list[NewModule]:
        calls.append([place.session_id for place, _ in asked])
        await release.wait()
        return [cast(NewModule, object()) for _ in asked]

    room = [f"ses-{n}" for n in range(2 * prepare.PLACES_PER_CALL + 5)]
    async with running(assemble, limit=1000) as preparer:
        await router_opened(preparer, *room)
        # Both calls at once took a full share each; the rest wait for one of them to end.
        assert [len(call) for call in calls] == [prepare.PLACES_PER_CALL] * prepare.CONCURRENT_ASSEMBLIES
        release.set()
        await asyncio.sleep(0.2)
        assert [len(call) for call in calls] == [prepare.PLACES_PER_CALL] * 2 + [5]
        # In the order they fell due, each once.
        assert [session for call in calls for session in call] == room
        assert len(preparer) == len(room)


async def test_a_failed_call_leaves_its_places_to_their_advances(caplog: pytest.LogCaptureFixture) -> None:
    async def assemble(asked: Sequence[tuple[Candidates, ModulePlan]]) -> list[NewModule]:
        raise RuntimeError("item_service is gone")

    async with running(assemble, limit=2) as preparer:
        await router_opened(preparer, "ses-a", "ses-b", plans=SECOND_STAGE_PLANS)
        assert f"preparing module {SECOND_STAGE_PLANS[0].key} of ses-b failed" in caplog.text
        assert take(preparer, "ses-a") is None
        # The preparer goes on with the places after them.
        assert preparer.scheduled() == 0


async def test_a_module_that_failed_leaves_the_other_prepared(caplog: pytest.LogCaptureFixture) -> None:
    # Its advance assembles the failed one itself, as it would have without preparing.
    failing = SECOND_STAGE_PLANS[1]

    async def assemble(place: Candidates, plan: ModulePlan) -> NewModule:
        if plan.key == failing.key:
            raise RuntimeError("item_service is gone")
        return MODULES[place.session_id]

    async with running(each(assemble), limit=2) as preparer:
        await router_opened(preparer, "ses-a", "ses-b", plans=SECOND_STAGE_PLANS)
        assert f"preparing module {failing.key} of ses-a failed" in caplog.text
        assert take(preparer, "ses-a") is MODULES["ses-a"]
        assert preparer.take(session_id="ses-b", sequence=2, plan_key=failing.key, after_module_id="mod-1") is None


async def test_places_taken_or_brought_forward_leave_no_entries_in_the_schedule() -> None:
    # A place is due halfway through its module; one taken before then, or brought forward by answers, kept its
    # first entry (with the items its session had seen) in the schedule until that time.
    assembled: list[str] = []

    async def assemble(place: Candidates, _plan: ModulePlan) -> NewModule:
        assembled.append(place.session_id)
        return cast(NewModule, object())

    async with running(each(assemble), limit=1000) as preparer:
        room = [f"ses-{n}" for n in range(1000)]
        await router_opened(preparer, *room, after_seconds=3600.0)
        assert preparer.scheduled() == 1000
        # Every advance came before its place fell due.
        for session_id in room:
            assert take(preparer, session_id) is None
        assert preparer.scheduled() <= prepare.SCHEDULE_SLACK
        brisk = [f"ses-brisk-{n}" for n in range(200)]
        await router_opened(preparer, *brisk, after_seconds=3600.0, after_answers=1)
        for session_id in brisk:
            preparer.answered(session_id)
        await asyncio.sleep(0.5)
        assert sorted(assembled) == sorted(brisk)
        assert preparer.scheduled() <= prepare.SCHEDULE_SLACK
