"""Write RPCs of item_service against a real server: the item life cycle, optimistic concurrency, imports."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from toefl.item.v1 import item_pb2, item_service_pb2

from tests.item_service.rpc import ADMIN, AUTHOR, SERVICE, STUDENT, Stub, fails
from tests.support.exam import refusal

FULL = item_pb2.ITEM_VIEW_FULL
CODE = grpc.StatusCode


def full_item(stub: Stub, item_id: str) -> item_pb2.Item:
    return stub.GetItem(item_service_pb2.GetItemRequest(item_id=item_id, view=FULL), metadata=AUTHOR)


def an_active(stub: Stub, task_type: int) -> item_pb2.Item:
    reply = stub.ListItems(
        item_service_pb2.ListItemsRequest(
            task_type=task_type,  # type: ignore[arg-type]
            status=item_pb2.ITEM_STATUS_ACTIVE,
            view=FULL,
            page_size=1,
        ),
        metadata=AUTHOR,
    )
    return reply.items[0]


def draft_like(stub: Stub, task_type: int, request_id: str = "") -> item_pb2.Item:
    """A new DRAFT with the content of an active item of the task type, so that it passes QA."""
    model = an_active(stub, task_type)
    item = item_pb2.Item(
        task_type=model.task_type,
        content=model.content,
        answer_key=model.answer_key,
        irt=model.irt,
        rubric=model.rubric,
        passage_id=model.passage_id,
        position=model.position + 10,
    )
    return stub.CreateItem(item_service_pb2.CreateItemRequest(item=item, request_id=request_id), metadata=AUTHOR)


def test_create_item_is_a_draft_and_idempotent(item_stub: Stub) -> None:
    created = draft_like(item_stub, item_pb2.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE, request_id="req-1")
    assert created.status == item_pb2.ITEM_STATUS_DRAFT and created.revision == 1 and created.etag
    assert created.section == item_pb2.SECTION_LISTENING
    assert created.provenance.author == "test-author"
    again = draft_like(item_stub, item_pb2.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE, request_id="req-1")
    assert again.item_id == created.item_id
    other = draft_like(item_stub, item_pb2.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE)
    assert other.item_id != created.item_id


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (item_pb2.Item(), "item.task_type"),
        (item_pb2.Item(task_type=99), "item.task_type"),  # type: ignore[arg-type]
        (
            item_pb2.Item(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL, section=item_pb2.SECTION_READING),
            "item.section",
        ),
        (
            item_pb2.Item(
                task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL,
                irt=item_pb2.IrtParameters(model=7),  # type: ignore[arg-type]
            ),
            "item.irt.model",
        ),
        (
            item_pb2.Item(task_type=item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE, passage_id="psg-nope"),
            "item.passage_id",
        ),
    ],
)
def test_create_item_invalid_arguments(item_stub: Stub, item: item_pb2.Item, field: str) -> None:
    fails(
        item_stub.CreateItem,
        item_service_pb2.CreateItemRequest(item=item),
        AUTHOR,
        CODE.INVALID_ARGUMENT,
        field=field,
    )


def test_writes_need_the_author_or_admin_role(item_stub: Stub) -> None:
    request = item_service_pb2.CreateItemRequest(item=item_pb2.Item(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL))
    for meta in (STUDENT, SERVICE):
        fails(item_stub.CreateItem, request, meta, CODE.PERMISSION_DENIED)
    fails(
        item_stub.RetireItem,
        item_service_pb2.RetireItemRequest(item_id="itm-000001"),
        STUDENT,
        CODE.PERMISSION_DENIED,
    )
    fails(item_stub.CreateItem, item_service_pb2.CreateItemRequest(), AUTHOR, CODE.INVALID_ARGUMENT, field="item")


def test_concurrent_updates_with_one_etag_let_exactly_one_win(item_stub: Stub) -> None:
    created = draft_like(item_stub, item_pb2.TASK_TYPE_BUILD_A_SENTENCE)

    def update(n: int) -> grpc.StatusCode:
        change = item_pb2.Item(
            item_id=created.item_id, etag=created.etag, content=item_pb2.ItemContent(prompt=f"Writer {n}?")
        )
        request = item_service_pb2.UpdateItemRequest(item=change, update_mask=FieldMask(paths=["content.prompt"]))
        try:
            item_stub.UpdateItem(request, metadata=AUTHOR)
        except grpc.RpcError as error:
            return error.code()
        return CODE.OK

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(update, range(8)))
    assert sorted(outcomes, key=str) == sorted([CODE.OK] + [CODE.ABORTED] * 7, key=str)
    assert full_item(item_stub, created.item_id).revision == 2


def test_update_item_with_mask_and_etag(item_stub: Stub) -> None:
    created = draft_like(item_stub, item_pb2.TASK_TYPE_BUILD_A_SENTENCE)
    change = item_pb2.Item(item_id=created.item_id, etag=created.etag, content=item_pb2.ItemContent(prompt="New?"))
    updated = item_stub.UpdateItem(
        item_service_pb2.UpdateItemRequest(item=change, update_mask=FieldMask(paths=["content.prompt"]), note="n"),
        metadata=AUTHOR,
    )
    assert updated.revision == 2 and updated.content.prompt == "New?" and updated.etag != created.etag
    assert list(updated.content.word_bank) == list(created.content.word_bank)
    old = item_stub.GetItem(item_service_pb2.GetItemRequest(item_id=created.item_id, revision=1), metadata=AUTHOR)
    assert old.content.prompt == created.content.prompt
    history = item_stub.ListItemRevisions(
        item_service_pb2.ListItemRevisionsRequest(item_id=created.item_id, view=FULL), metadata=AUTHOR
    )
    assert [r.revision for r in history.revisions] == [1, 2]
    assert list(history.revisions[1].changed_fields) == ["content.prompt"]
    assert history.revisions[1].note == "n" and history.revisions[1].actor == "test-author"
    paged = item_stub.ListItemRevisions(
        item_service_pb2.ListItemRevisionsRequest(item_id=created.item_id, page_size=1), metadata=AUTHOR
    )
    assert len(paged.revisions) == 1 and paged.next_page_token
    # The etag read before the update is stale now.
    stale = fails(
        item_stub.UpdateItem,
        item_service_pb2.UpdateItemRequest(item=change, update_mask=FieldMask(paths=["content.prompt"])),
        AUTHOR,
        CODE.ABORTED,
        "etag",
    )
    assert refusal(stale).reason == "STALE_ETAG"


@pytest.mark.parametrize(
    ("paths", "etag", "field"),
    [
        (["content.nope"], "x", "update_mask"),
        (["status"], "x", "update_mask"),
        (["item_id"], "x", "update_mask"),
        ([], "x", "update_mask"),
        (["content.prompt"], "", "item.etag"),
    ],
)
def test_update_item_invalid_arguments(item_stub: Stub, paths: list[str], etag: str, field: str) -> None:
    request = item_service_pb2.UpdateItemRequest(
        item=item_pb2.Item(item_id="itm-000001", etag=etag), update_mask=FieldMask(paths=paths)
    )
    fails(item_stub.UpdateItem, request, AUTHOR, CODE.INVALID_ARGUMENT, field=field)


def test_only_irt_changes_on_an_active_item(item_stub: Stub) -> None:
    active = an_active(item_stub, item_pb2.TASK_TYPE_COMPLETE_THE_WORDS)
    content = item_pb2.Item(item_id=active.item_id, etag=active.etag, content=item_pb2.ItemContent(prompt="x"))
    fails(
        item_stub.UpdateItem,
        item_service_pb2.UpdateItemRequest(item=content, update_mask=FieldMask(paths=["content.prompt"])),
        AUTHOR,
        CODE.FAILED_PRECONDITION,
        "DRAFT",
    )
    irt = item_pb2.IrtParameters()
    irt.CopyFrom(active.irt)
    irt.b += 0.25
    recalibrated = item_stub.UpdateItem(
        item_service_pb2.UpdateItemRequest(
            item=item_pb2.Item(item_id=active.item_id, etag=active.etag, irt=irt),
            update_mask=FieldMask(paths=["irt.b"]),
        ),
        metadata=ADMIN,
    )
    assert recalibrated.irt.b == pytest.approx(active.irt.b + 0.25)
    assert recalibrated.status == item_pb2.ITEM_STATUS_ACTIVE and recalibrated.revision == active.revision + 1


def test_life_cycle_draft_to_retired(item_stub: Stub) -> None:
    created = draft_like(item_stub, item_pb2.TASK_TYPE_TAKE_AN_INTERVIEW)
    fails(
        item_stub.ReviewItem,
        item_service_pb2.ReviewItemRequest(item_id=created.item_id, verdict=item_pb2.REVIEW_VERDICT_APPROVE),
        AUTHOR,
        CODE.FAILED_PRECONDITION,
        "IN_REVIEW",
    )
    qa = item_stub.SubmitForReview(
        item_service_pb2.SubmitForReviewRequest(item_id=created.item_id), metadata=AUTHOR
    )
    assert qa.kind == item_pb2.REVIEW_KIND_AUTOMATED and qa.verdict == item_pb2.REVIEW_VERDICT_PASS, qa
    assert qa.checks and all(check.passed for check in qa.checks)
    assert full_item(item_stub, created.item_id).status == item_pb2.ITEM_STATUS_IN_REVIEW
    fails(
        item_stub.SubmitForReview,
        item_service_pb2.SubmitForReviewRequest(item_id=created.item_id),
        AUTHOR,
        CODE.FAILED_PRECONDITION,
    )
    fails(
        item_stub.ReviewItem,
        item_service_pb2.ReviewItemRequest(item_id=created.item_id, verdict=item_pb2.REVIEW_VERDICT_PASS),
        AUTHOR,
        CODE.INVALID_ARGUMENT,
        field="verdict",
    )
    fails(
        item_stub.ReviewItem,
        item_service_pb2.ReviewItemRequest(item_id=created.item_id, verdict=item_pb2.REVIEW_VERDICT_REJECT),
        AUTHOR,
        CODE.INVALID_ARGUMENT,
        field="comment",
    )
    fails(
        item_stub.ActivateItem,
        item_service_pb2.ActivateItemRequest(item_id=created.item_id),
        AUTHOR,
        CODE.FAILED_PRECONDITION,
        "APPROVED",
    )
    fails(
        item_stub.ReviewItem,
        item_service_pb2.ReviewItemRequest(item_id=created.item_id, verdict=item_pb2.REVIEW_VERDICT_APPROVE),
        AUTHOR,
        CODE.FAILED_PRECONDITION,
        "cannot approve",
    )
    human = item_stub.ReviewItem(
        item_service_pb2.ReviewItemRequest(
            item_id=created.item_id, verdict=item_pb2.REVIEW_VERDICT_APPROVE, comment="fine"
        ),
        metadata=ADMIN,
    )
    assert human.kind == item_pb2.REVIEW_KIND_HUMAN and human.reviewer == "test-admin"
    activate = item_service_pb2.ActivateItemRequest(item_id=created.item_id, reason="calibrated on 2,000")
    active = item_stub.ActivateItem(activate, metadata=AUTHOR)
    assert active.status == item_pb2.ITEM_STATUS_ACTIVE
    reviews = item_stub.ListReviews(item_service_pb2.ListReviewsRequest(item_id=created.item_id), metadata=AUTHOR)
    assert [r.review_id for r in reviews.reviews] == [qa.review_id, human.review_id]
    retired = item_stub.RetireItem(
        item_service_pb2.RetireItemRequest(item_id=created.item_id, reason="overexposed"), metadata=AUTHOR
    )
    assert retired.status == item_pb2.ITEM_STATUS_RETIRED
    again = item_stub.RetireItem(item_service_pb2.RetireItemRequest(item_id=created.item_id), metadata=AUTHOR)
    assert again.revision == retired.revision
    statuses = [
        r.snapshot.status
        for r in item_stub.ListItemRevisions(
            item_service_pb2.ListItemRevisionsRequest(item_id=created.item_id, view=FULL), metadata=AUTHOR
        ).revisions
    ]
    assert statuses == [
        item_pb2.ITEM_STATUS_DRAFT,
        item_pb2.ITEM_STATUS_IN_REVIEW,
        item_pb2.ITEM_STATUS_APPROVED,
        item_pb2.ITEM_STATUS_ACTIVE,
        item_pb2.ITEM_STATUS_RETIRED,
    ]
    # Retired, never deleted.
    assert full_item(item_stub, created.item_id).status == item_pb2.ITEM_STATUS_RETIRED
    # Activation and retirement are on the bank's own audit log, for admins only; a retirement repeated (no
    # change) is not an action.
    log = item_service_pb2.ListItemAuditEntriesRequest(item_id=created.item_id)
    fails(item_stub.ListItemAuditEntries, log, AUTHOR, CODE.PERMISSION_DENIED)
    entries = item_stub.ListItemAuditEntries(log, metadata=ADMIN).entries
    assert [(e.action, e.actor_id, e.actor_role, e.reason) for e in entries] == [
        ("retire_item", "test-author", "author", "overexposed"),
        ("activate_item", "test-author", "author", "calibrated on 2,000"),
    ]
    assert entries[1].target_id == created.item_id and '"revision": 4' in entries[1].detail_json
    fails(
        item_stub.ActivateItem, item_service_pb2.ActivateItemRequest(item_id="itm-999999"), AUTHOR, CODE.NOT_FOUND
    )


def test_failing_qa_keeps_the_draft_and_says_why(item_stub: Stub) -> None:
    model = an_active(item_stub, item_pb2.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE)
    broken = item_pb2.Item(task_type=model.task_type, content=item_pb2.ItemContent(prompt=model.content.prompt))
    created = item_stub.CreateItem(item_service_pb2.CreateItemRequest(item=broken), metadata=AUTHOR)
    review = item_stub.SubmitForReview(
        item_service_pb2.SubmitForReviewRequest(item_id=created.item_id), metadata=AUTHOR
    )
    assert review.verdict == item_pb2.REVIEW_VERDICT_FAIL
    assert any(not check.passed and check.message for check in review.checks)
    assert full_item(item_stub, created.item_id).status == item_pb2.ITEM_STATUS_DRAFT


def test_activated_item_enters_assembly(item_stub: Stub) -> None:
    """The in-process assembly cache is invalidated by a write."""
    task_type = item_pb2.TASK_TYPE_WRITE_AN_EMAIL
    created = draft_like(item_stub, task_type)
    item_stub.SubmitForReview(item_service_pb2.SubmitForReviewRequest(item_id=created.item_id), metadata=AUTHOR)
    spec = item_service_pb2.ModuleSpec(task_counts=[item_service_pb2.TaskCount(task_type=task_type, count=1)])
    others = item_stub.ListItems(
        item_service_pb2.ListItemsRequest(task_type=task_type, status=item_pb2.ITEM_STATUS_ACTIVE, page_size=1000),
        metadata=AUTHOR,
    ).items
    request = item_service_pb2.AssembleModuleRequest(spec=spec, exclude_item_ids=[i.item_id for i in others])
    fails(item_stub.AssembleModule, request, SERVICE, CODE.FAILED_PRECONDITION, "TASK_TYPE_WRITE_AN_EMAIL")
    item_stub.ReviewItem(
        item_service_pb2.ReviewItemRequest(item_id=created.item_id, verdict=item_pb2.REVIEW_VERDICT_APPROVE),
        metadata=ADMIN,
    )
    item_stub.ActivateItem(item_service_pb2.ActivateItemRequest(item_id=created.item_id), metadata=AUTHOR)
    module = item_stub.AssembleModule(request, metadata=SERVICE)
    assert [i.item_id for i in module.items] == [created.item_id]


def export_records(stub: Stub, task_type: int) -> tuple[list[item_pb2.Passage], list[item_pb2.Item]]:
    records = list(
        stub.ExportItems(item_service_pb2.ExportItemsRequest(task_type=task_type), metadata=AUTHOR)  # type: ignore[arg-type]
    )
    return [r.passage for r in records if r.HasField("passage")], [r.item for r in records if r.HasField("item")]


def test_import_is_idempotent_and_dry_run_writes_nothing(item_stub: Stub) -> None:
    passages, items = export_records(item_stub, item_pb2.TASK_TYPE_LISTEN_TO_ANNOUNCEMENT)
    request = item_service_pb2.ImportItemsRequest(passages=passages, items=items, batch_name="round trip")
    fails(item_stub.ImportItems, request, AUTHOR, CODE.PERMISSION_DENIED)
    same = item_stub.ImportItems(request, metadata=ADMIN)
    assert (same.created, same.updated, same.unchanged) == (0, 0, len(items))
    assert (same.passages_created, same.passages_updated) == (0, 0)

    edited = item_pb2.Item()
    edited.CopyFrom(items[0])
    edited.content.prompt = "An edited prompt?"
    new = item_pb2.Item()
    new.CopyFrom(items[1])
    new.external_id = "new-external-id"
    change = item_service_pb2.ImportItemsRequest(passages=passages, items=[edited, new], dry_run=True)
    dry = item_stub.ImportItems(change, metadata=ADMIN)
    assert dry.dry_run and (dry.created, dry.updated, dry.unchanged) == (1, 1, 0)
    assert full_item(item_stub, items[0].item_id).content.prompt == items[0].content.prompt
    change.dry_run = False
    done = item_stub.ImportItems(change, metadata=ADMIN)
    assert (done.created, done.updated) == (1, 1)
    updated = next(r for r in done.results if r.outcome == item_service_pb2.IMPORT_OUTCOME_UPDATED)
    assert list(updated.changed_fields) == ["content.prompt"] and updated.item_id == items[0].item_id
    assert full_item(item_stub, items[0].item_id).content.prompt == "An edited prompt?"
    assert item_stub.ImportItems(change, metadata=ADMIN).unchanged == 2


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (item_pb2.Item(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL), "items[0].external_id"),
        (item_pb2.Item(external_id="e1"), "items[0].task_type"),
        (
            item_pb2.Item(external_id="e1", task_type=item_pb2.TASK_TYPE_READ_ACADEMIC_PASSAGE, passage_id="nope"),
            "items[0].passage_id",
        ),
    ],
)
def test_import_invalid_arguments(item_stub: Stub, item: item_pb2.Item, field: str) -> None:
    request = item_service_pb2.ImportItemsRequest(items=[item])
    fails(item_stub.ImportItems, request, ADMIN, CODE.INVALID_ARGUMENT, field=field)
