"""Pretest items on a real item_service: APPROVED -> PRETEST, unscored slots filled least administered first,
hidden from the STUDENT view, and a calibration's proposal that goes through review before activation."""

from __future__ import annotations

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from toefl.item.v1 import item_pb2, item_service_pb2

from tests.item_service.rpc import ADMIN, AUTHOR, SERVICE, TEACHER, Stub, fails
from tests.item_service.test_writes import draft_like, full_item

CODE = grpc.StatusCode
TASK = item_pb2.TASK_TYPE_BUILD_A_SENTENCE
SPEC = item_service_pb2.ModuleSpec(
    section=item_pb2.SECTION_WRITING,
    task_counts=[item_service_pb2.TaskCount(task_type=TASK, count=4)],
    pretest_counts=[item_service_pb2.TaskCount(task_type=TASK, count=1)],
)


def approved(stub: Stub, task_type: int = TASK) -> item_pb2.Item:
    created = draft_like(stub, task_type)
    stub.SubmitForReview(item_service_pb2.SubmitForReviewRequest(item_id=created.item_id), metadata=AUTHOR)
    stub.ReviewItem(
        item_service_pb2.ReviewItemRequest(item_id=created.item_id, verdict=item_pb2.REVIEW_VERDICT_APPROVE),
        metadata=ADMIN,
    )
    return full_item(stub, created.item_id)


def pretested(stub: Stub, task_type: int = TASK) -> item_pb2.Item:
    item = approved(stub, task_type)
    return stub.PretestItem(item_service_pb2.PretestItemRequest(item_id=item.item_id), metadata=AUTHOR)


def assemble(stub: Stub, seed: int, administrations: dict[str, int]) -> item_service_pb2.AssembleModuleResponse:
    request = item_service_pb2.AssembleModuleRequest(
        spec=SPEC, seed=seed, view=item_pb2.ITEM_VIEW_FULL, pretest_administrations=administrations
    )
    return stub.AssembleModule(request, metadata=SERVICE)


def test_pretest_needs_an_approved_item_with_a_model(item_stub: Stub) -> None:
    draft = draft_like(item_stub, TASK)
    request = item_service_pb2.PretestItemRequest(item_id=draft.item_id)
    fails(item_stub.PretestItem, request, AUTHOR, CODE.FAILED_PRECONDITION, "APPROVED")
    fails(item_stub.PretestItem, request, TEACHER, CODE.PERMISSION_DENIED)
    item = approved(item_stub)
    modelless = item_stub.UpdateItem(
        item_service_pb2.UpdateItemRequest(
            item=item_pb2.Item(item_id=item.item_id, etag=item.etag), update_mask=FieldMask(paths=["irt"])
        ),
        metadata=AUTHOR,
    )
    assert not modelless.HasField("irt")
    fails(
        item_stub.PretestItem,
        item_service_pb2.PretestItemRequest(item_id=item.item_id),
        AUTHOR,
        CODE.FAILED_PRECONDITION,
        "irt.model",
    )
    ready = pretested(item_stub)
    assert ready.status == item_pb2.ITEM_STATUS_PRETEST
    again = item_stub.PretestItem(item_service_pb2.PretestItemRequest(item_id=ready.item_id), metadata=AUTHOR)
    assert again.revision == ready.revision


def test_pretest_slots_balance_exposure_and_students_cannot_tell(item_stub: Stub) -> None:
    for _ in range(3):
        pretested(item_stub)
    pool = item_stub.ListItems(
        item_service_pb2.ListItemsRequest(task_type=TASK, status=item_pb2.ITEM_STATUS_PRETEST), metadata=AUTHOR
    ).items
    ids = {item.item_id for item in pool}
    tally = dict.fromkeys(ids, 0)
    for seed in range(4 * len(ids)):
        module = assemble(item_stub, seed, tally)
        chosen = [item for item in module.items if item.item_id in ids]
        assert len(chosen) == 1 and len(module.items) == 5
        pretest_steps = [step for step in module.record.steps if step.pretest]
        assert [step.chosen for step in pretest_steps] == [chosen[0].item_id]
        assert pretest_steps[0].administrations == min(tally.values())
        tally[chosen[0].item_id] += 1
    # Least administered first: each pretest item was given exactly 4 times.
    assert set(tally.values()) == {4}
    # The operational items of a seed do not depend on the pretest slots.
    without = item_service_pb2.ModuleSpec()
    without.CopyFrom(SPEC)
    del without.pretest_counts[:]
    plain = item_stub.AssembleModule(
        item_service_pb2.AssembleModuleRequest(spec=without, seed=5), metadata=SERVICE
    )
    assert [i.item_id for i in plain.items] == [
        i.item_id for i in assemble(item_stub, 5, tally).items if i.item_id not in ids
    ]
    # The STUDENT view says ACTIVE, like every other item of the module.
    student = item_stub.AssembleModule(
        item_service_pb2.AssembleModuleRequest(spec=SPEC, seed=1, view=item_pb2.ITEM_VIEW_STUDENT),
        metadata=SERVICE,
    )
    assert {item.status for item in student.items} == {item_pb2.ITEM_STATUS_ACTIVE}
    read = item_stub.GetItem(item_service_pb2.GetItemRequest(item_id=pool[0].item_id), metadata=TEACHER)
    assert read.status == item_pb2.ITEM_STATUS_ACTIVE


def test_an_empty_pretest_pool_leaves_the_slots_empty(item_stub: Stub) -> None:
    spec = item_service_pb2.ModuleSpec(
        section=item_pb2.SECTION_SPEAKING,
        task_counts=[item_service_pb2.TaskCount(task_type=item_pb2.TASK_TYPE_LISTEN_AND_REPEAT, count=2)],
        pretest_counts=[item_service_pb2.TaskCount(task_type=item_pb2.TASK_TYPE_LISTEN_AND_REPEAT, count=1)],
    )
    module = item_stub.AssembleModule(item_service_pb2.AssembleModuleRequest(spec=spec, seed=3), metadata=SERVICE)
    assert len(module.items) == 2 and not any(step.pretest for step in module.record.steps)
    bad = item_service_pb2.ModuleSpec()
    bad.CopyFrom(spec)
    bad.pretest_counts[0].task_type = item_pb2.TASK_TYPE_BUILD_A_SENTENCE
    fails(
        item_stub.AssembleModule,
        item_service_pb2.AssembleModuleRequest(spec=bad),
        SERVICE,
        CODE.INVALID_ARGUMENT,
        field="spec.pretest_counts[0].task_type",
    )


def test_a_proposal_goes_to_review_and_is_activated_by_an_author(item_stub: Stub) -> None:
    item = pretested(item_stub)
    irt = item_pb2.IrtParameters()
    irt.CopyFrom(item.irt)
    irt.a, irt.b, irt.c = 1.31, -0.42, 0.18
    irt.calibration.CopyFrom(
        item_pb2.IrtCalibration(run_id="cal-test-1", sample_size=812, se_a=0.11, se_b=0.07, se_c=0.03)
    )
    request = item_service_pb2.ProposeItemParametersRequest(item_id=item.item_id, irt=irt, run_id="cal-test-1")
    fails(item_stub.ProposeItemParameters, request, AUTHOR, CODE.PERMISSION_DENIED)
    wrong = item_service_pb2.ProposeItemParametersRequest()
    wrong.CopyFrom(request)
    wrong.run_id = "cal-test-2"
    fails(item_stub.ProposeItemParameters, wrong, SERVICE, CODE.INVALID_ARGUMENT, field="irt.calibration.run_id")
    proposed = item_stub.ProposeItemParameters(request, metadata=SERVICE)
    assert proposed.status == item_pb2.ITEM_STATUS_IN_REVIEW and proposed.irt == irt
    # A retried or resumed run changes nothing.
    assert item_stub.ProposeItemParameters(request, metadata=SERVICE).revision == proposed.revision
    # Never active on its own: a reviewer approves, an author activates.
    fails(
        item_stub.ActivateItem,
        item_service_pb2.ActivateItemRequest(item_id=item.item_id),
        AUTHOR,
        CODE.FAILED_PRECONDITION,
        "APPROVED",
    )
    item_stub.ReviewItem(
        item_service_pb2.ReviewItemRequest(item_id=item.item_id, verdict=item_pb2.REVIEW_VERDICT_APPROVE),
        metadata=ADMIN,
    )
    active = item_stub.ActivateItem(item_service_pb2.ActivateItemRequest(item_id=item.item_id), metadata=AUTHOR)
    assert active.status == item_pb2.ITEM_STATUS_ACTIVE and active.irt == irt
    revisions = item_stub.ListItemRevisions(
        item_service_pb2.ListItemRevisionsRequest(item_id=item.item_id), metadata=AUTHOR
    ).revisions
    assert any("cal-test-1" in r.note and "812 responses" in r.note for r in revisions)
    # Only a PRETEST item takes a proposal.
    other = item_service_pb2.ProposeItemParametersRequest()
    other.CopyFrom(request)
    other.run_id = other.irt.calibration.run_id = "cal-test-3"
    fails(item_stub.ProposeItemParameters, other, SERVICE, CODE.FAILED_PRECONDITION, "PRETEST")
