"""AssembleModule(s) on the demo bank: replayable, never repeats an excluded item, keeps passages whole."""

from __future__ import annotations

import grpc
import pytest
from toefl.item.v1 import item_pb2, item_service_pb2

from tests.item_service.rpc import ADMIN, AUTHOR, SERVICE, STUDENT, Stub, fails

TC = item_service_pb2.TaskCount
READING = item_service_pb2.ModuleSpec(
    section=item_pb2.SECTION_READING,
    task_counts=[
        TC(task_type=item_pb2.TASK_TYPE_COMPLETE_THE_WORDS, count=1),
        TC(task_type=item_pb2.TASK_TYPE_READ_IN_DAILY_LIFE, count=5),
        TC(task_type=item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE, count=5),
    ],
    difficulty_target=0.5,
)


def assemble(
    stub: Stub, *, seed: int, exclude: list[str] | None = None, spec: item_service_pb2.ModuleSpec = READING
) -> item_service_pb2.AssembleModuleResponse:
    request = item_service_pb2.AssembleModuleRequest(
        spec=spec, seed=seed, exclude_item_ids=exclude or [], view=item_pb2.ITEM_VIEW_FULL
    )
    return stub.AssembleModule(request, metadata=SERVICE)


def active_items_of(stub: Stub, passage_id: str) -> list[str]:
    reply = stub.ListItems(
        item_service_pb2.ListItemsRequest(passage_id=passage_id, status=item_pb2.ITEM_STATUS_ACTIVE),
        metadata=AUTHOR,
    )
    return [i.item_id for i in sorted(reply.items, key=lambda i: i.position)]


def test_same_seed_same_module(item_stub: Stub) -> None:
    first, second = assemble(item_stub, seed=11), assemble(item_stub, seed=11)
    assert [i.item_id for i in first.items] == [i.item_id for i in second.items]
    assert first.record == second.record and first.record.seed == 11
    modules = {tuple(i.item_id for i in assemble(item_stub, seed=s).items) for s in range(1, 6)}
    assert len(modules) > 1, "different seeds should draw different modules"


def test_record_lists_the_candidates_best_first(item_stub: Stub) -> None:
    module = assemble(item_stub, seed=3)
    assert module.record.spec == READING and module.record.steps
    for step in module.record.steps:
        assert step.chosen in step.candidates and len(step.candidates) == len(step.information) <= 5
        assert list(step.information) == sorted(step.information, reverse=True)


def test_passages_stay_whole_and_in_order(item_stub: Stub) -> None:
    module = assemble(item_stub, seed=7)
    ids = [i.item_id for i in module.items]
    counts = {tc.task_type: 0 for tc in READING.task_counts}
    for item in module.items:
        counts[item.task_type] += 1
    assert all(counts[tc.task_type] >= tc.count for tc in READING.task_counts)
    assert module.passages
    for passage in module.passages:
        members = active_items_of(item_stub, passage.passage_id)
        start = ids.index(members[0])
        assert ids[start : start + len(members)] == members, passage.passage_id
    # Task types in the order of the spec.
    order = [item.task_type for item in module.items]
    assert order == sorted(order, key=[tc.task_type for tc in READING.task_counts].index)


def test_excluded_items_never_come_back(item_stub: Stub) -> None:
    seen: list[str] = []
    for seed in range(4):
        module = assemble(item_stub, seed=seed, exclude=seen)
        chosen = [i.item_id for i in module.items]
        assert not set(chosen) & set(seen)
        assert len(chosen) == len(set(chosen))
        assert module.record.excluded_count == len(set(seen))
        seen.extend(chosen)


def test_one_excluded_item_blocks_its_whole_passage(item_stub: Stub) -> None:
    module = assemble(item_stub, seed=2)
    passage = module.passages[0]
    blocked = active_items_of(item_stub, passage.passage_id)[-1]
    again = assemble(item_stub, seed=2, exclude=[blocked])
    assert passage.passage_id not in {p.passage_id for p in again.passages}
    assert not {i.item_id for i in again.items} & set(active_items_of(item_stub, passage.passage_id))


def test_running_out_names_the_task_type(item_stub: Stub) -> None:
    spec = item_service_pb2.ModuleSpec(
        task_counts=[TC(task_type=item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION, count=1000)]
    )
    fails(
        item_stub.AssembleModule,
        item_service_pb2.AssembleModuleRequest(spec=spec),
        ADMIN,
        grpc.StatusCode.FAILED_PRECONDITION,
        "TASK_TYPE_ACADEMIC_DISCUSSION",
    )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (None, "spec"),
        (item_service_pb2.ModuleSpec(), "spec.task_counts"),
        (
            item_service_pb2.ModuleSpec(task_counts=[TC(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL)]),
            "spec.task_counts[0].count",
        ),
        (item_service_pb2.ModuleSpec(task_counts=[TC(count=1)]), "spec.task_counts[0].task_type"),
        (
            item_service_pb2.ModuleSpec(
                section=item_pb2.SECTION_READING,
                task_counts=[TC(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL, count=1)],
            ),
            "spec.task_counts[0].task_type",
        ),
        (
            item_service_pb2.ModuleSpec(
                task_counts=[TC(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL, count=1)], randomesque_k=-1
            ),
            "spec.randomesque_k",
        ),
        (
            item_service_pb2.ModuleSpec(
                task_counts=[TC(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL, count=1)],
                difficulty_target=float("nan"),
            ),
            "spec.difficulty_target",
        ),
    ],
)
def test_invalid_specs_name_the_field(
    item_stub: Stub, spec: item_service_pb2.ModuleSpec | None, field: str
) -> None:
    request = item_service_pb2.AssembleModuleRequest(spec=spec)
    fails(item_stub.AssembleModule, request, SERVICE, grpc.StatusCode.INVALID_ARGUMENT, field=field)


def test_assembly_is_for_services(item_stub: Stub) -> None:
    request = item_service_pb2.AssembleModuleRequest(spec=READING)
    for meta in (STUDENT, AUTHOR):
        fails(item_stub.AssembleModule, request, meta, grpc.StatusCode.PERMISSION_DENIED)


def test_a_batch_assembles_each_module_as_alone_and_answers_each_failure_in_its_place(item_stub: Stub) -> None:
    exhausted = item_service_pb2.ModuleSpec(
        task_counts=[TC(task_type=item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION, count=1000)]
    )
    first = assemble(item_stub, seed=11)
    requests = [
        item_service_pb2.AssembleModuleRequest(spec=READING, seed=11, view=item_pb2.ITEM_VIEW_FULL),
        item_service_pb2.AssembleModuleRequest(spec=exhausted, seed=1),
        item_service_pb2.AssembleModuleRequest(
            spec=READING, seed=12, exclude_item_ids=[i.item_id for i in first.items], view=item_pb2.ITEM_VIEW_FULL
        ),
        # The STUDENT view, as AssembleModule gives it: no keys.
        item_service_pb2.AssembleModuleRequest(spec=READING, seed=11),
    ]
    reply = item_stub.AssembleModules(item_service_pb2.AssembleModulesRequest(requests=requests), metadata=SERVICE)
    assert [e.WhichOneof("outcome") for e in reply.entries] == ["module", "error", "module", "module"]
    alone = [item_stub.AssembleModule(r, metadata=SERVICE) for r in (requests[0], requests[2], requests[3])]
    assert [reply.entries[i].module for i in (0, 2, 3)] == alone
    assert reply.entries[0].module == first
    assert reply.entries[1].error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "TASK_TYPE_ACADEMIC_DISCUSSION" in reply.entries[1].error.message
    assert not {i.item_id for i in reply.entries[2].module.items} & {i.item_id for i in first.items}
    assert all(not i.HasField("answer_key") for i in reply.entries[3].module.items)
    assert all(i.HasField("answer_key") for i in reply.entries[0].module.items)


@pytest.mark.parametrize(
    ("requests", "field"),
    [
        ([], "requests"),
        ([item_service_pb2.AssembleModuleRequest(spec=READING)] * 65, "requests"),
        (
            [item_service_pb2.AssembleModuleRequest(spec=READING), item_service_pb2.AssembleModuleRequest()],
            "requests[1].spec",
        ),
        (
            [item_service_pb2.AssembleModuleRequest(spec=READING, view=item_pb2.ItemView.ValueType(7))],
            "requests[0].view",
        ),
    ],
)
def test_a_batch_is_1_to_64_requests_each_with_a_spec(
    item_stub: Stub, requests: list[item_service_pb2.AssembleModuleRequest], field: str
) -> None:
    request = item_service_pb2.AssembleModulesRequest(requests=requests)
    fails(item_stub.AssembleModules, request, SERVICE, grpc.StatusCode.INVALID_ARGUMENT, field=field)


def test_a_batch_is_for_services(item_stub: Stub) -> None:
    request = item_service_pb2.AssembleModulesRequest(
        requests=[item_service_pb2.AssembleModuleRequest(spec=READING)]
    )
    for meta in (STUDENT, AUTHOR):
        fails(item_stub.AssembleModules, request, meta, grpc.StatusCode.PERMISSION_DENIED)
