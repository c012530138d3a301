"""Read RPCs of item_service against a real server on the demo bank: results, paging, views and error paths."""

from __future__ import annotations

import base64
import hashlib
import json

import grpc
import pytest
from google.protobuf.message import Message
from toefl.item.v1 import item_pb2, item_service_pb2

from item_service.storage import ItemFilter
from tests.item_service.rpc import AUTHOR, STUDENT, TEACHER, Metadata, Stub, fails


def walk_all(stub: Stub, request: item_service_pb2.ListItemsRequest, meta: Metadata) -> list[item_pb2.Item]:
    items: list[item_pb2.Item] = []
    while True:
        reply = stub.ListItems(request, metadata=meta)
        items.extend(reply.items)
        if not reply.next_page_token:
            return items
        request.page_token = reply.next_page_token


def test_every_call_needs_a_valid_token(item_stub: Stub) -> None:
    fails(
        item_stub.GetItem,
        item_service_pb2.GetItemRequest(item_id="itm-000001"),
        (),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    forged = (("authorization", "Bearer not-a-token"),)
    fails(item_stub.ListItems, item_service_pb2.ListItemsRequest(), forged, grpc.StatusCode.UNAUTHENTICATED)


def test_get_item_student_view_and_full(item_stub: Stub) -> None:
    student = item_stub.GetItem(item_service_pb2.GetItemRequest(item_id="itm-000001"), metadata=TEACHER)
    assert student.item_id == "itm-000001" and student.content.prompt
    assert not student.HasField("answer_key") and not student.HasField("irt")
    full = item_stub.GetItem(
        item_service_pb2.GetItemRequest(item_id="itm-000001", view=item_pb2.ITEM_VIEW_FULL), metadata=AUTHOR
    )
    assert full.HasField("answer_key") and full.HasField("irt") and full.external_id
    fails(
        item_stub.GetItem,
        item_service_pb2.GetItemRequest(item_id="itm-000001", view=item_pb2.ITEM_VIEW_FULL),
        TEACHER,
        grpc.StatusCode.PERMISSION_DENIED,
        "FULL",
    )


def test_get_item_errors(item_stub: Stub) -> None:
    fails(
        item_stub.GetItem,
        item_service_pb2.GetItemRequest(item_id="itm-999999"),
        TEACHER,
        grpc.StatusCode.NOT_FOUND,
    )
    fails(
        item_stub.GetItem, item_service_pb2.GetItemRequest(), TEACHER, grpc.StatusCode.INVALID_ARGUMENT, "item_id"
    )
    fails(
        item_stub.GetItem,
        item_service_pb2.GetItemRequest(item_id="itm-000001", view=7),  # type: ignore[arg-type]
        TEACHER,
        grpc.StatusCode.INVALID_ARGUMENT,
        "view",
    )
    fails(
        item_stub.GetItem,
        item_service_pb2.GetItemRequest(item_id="itm-000001", revision=-1),
        TEACHER,
        grpc.StatusCode.INVALID_ARGUMENT,
        "revision",
    )
    fails(
        item_stub.GetItem,
        item_service_pb2.GetItemRequest(item_id="itm-000001", revision=9),
        TEACHER,
        grpc.StatusCode.NOT_FOUND,
        "revision 9",
    )


def test_a_control_character_in_an_id_is_refused_before_any_work(item_stub: Stub) -> None:
    # Refused by the shared server's admission, so even a caller that may not read the bank learns only this.
    for meta in (TEACHER, STUDENT):
        fails(
            item_stub.GetItem,
            item_service_pb2.GetItemRequest(item_id="itm-000001\x00"),
            meta,
            grpc.StatusCode.INVALID_ARGUMENT,
            "control character",
            field="item_id",
        )
    fails(
        item_stub.BatchGetItems,
        item_service_pb2.BatchGetItemsRequest(items=[item_service_pb2.ItemRef(item_id="itm\x1b[0m")]),
        TEACHER,
        grpc.StatusCode.INVALID_ARGUMENT,
        "control character",
        field="items[0].item_id",
    )


def test_batch_get_keeps_request_order_and_fails_whole(item_stub: Stub) -> None:
    ids = ["itm-000010", "itm-000003", "itm-000007", "itm-000003"]
    reply = item_stub.BatchGetItems(
        item_service_pb2.BatchGetItemsRequest(items=[item_service_pb2.ItemRef(item_id=i) for i in ids]),
        metadata=TEACHER,
    )
    assert [item.item_id for item in reply.items] == ids
    pinned = item_stub.BatchGetItems(
        item_service_pb2.BatchGetItemsRequest(items=[item_service_pb2.ItemRef(item_id="itm-000010", revision=1)]),
        metadata=TEACHER,
    )
    assert pinned.items[0].revision == 1
    fails(
        item_stub.BatchGetItems,
        item_service_pb2.BatchGetItemsRequest(
            items=[item_service_pb2.ItemRef(item_id="itm-000001"), item_service_pb2.ItemRef(item_id="itm-nope")]
        ),
        TEACHER,
        grpc.StatusCode.NOT_FOUND,
        "itm-nope",
    )
    too_many = [item_service_pb2.ItemRef(item_id="itm-000001")] * 501
    fails(
        item_stub.BatchGetItems,
        item_service_pb2.BatchGetItemsRequest(items=too_many),
        TEACHER,
        grpc.StatusCode.INVALID_ARGUMENT,
        "items",
    )


def test_list_items_walk_is_complete_stable_and_ordered(item_stub: Stub) -> None:
    first = item_stub.ListItems(item_service_pb2.ListItemsRequest(page_size=1000), metadata=TEACHER)
    walked = walk_all(item_stub, item_service_pb2.ListItemsRequest(page_size=97), TEACHER)
    ids = [item.item_id for item in walked]
    assert len(ids) == first.total_size == len(set(ids))
    assert ids == sorted(ids)
    assert ids[: len(first.items)] == [item.item_id for item in first.items]


def test_list_items_filters(item_stub: Stub) -> None:
    request = item_service_pb2.ListItemsRequest(
        section=item_pb2.SECTION_LISTENING, status=item_pb2.ITEM_STATUS_ACTIVE, page_size=1000
    )
    items = walk_all(item_stub, request, TEACHER)
    assert items and all(
        i.section == item_pb2.SECTION_LISTENING and i.status == item_pb2.ITEM_STATUS_ACTIVE for i in items
    )
    by_type = walk_all(
        item_stub, item_service_pb2.ListItemsRequest(task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL), TEACHER
    )
    assert by_type and {i.task_type for i in by_type} == {item_pb2.TASK_TYPE_WRITE_AN_EMAIL}
    hard = walk_all(
        item_stub,
        item_service_pb2.ListItemsRequest(min_difficulty=1.0, max_difficulty=2.0, view=item_pb2.ITEM_VIEW_FULL),
        AUTHOR,
    )
    assert hard and all(1.0 <= i.irt.b <= 2.0 for i in hard)
    passage_id = next(i.passage_id for i in items if i.passage_id)
    of_passage = walk_all(item_stub, item_service_pb2.ListItemsRequest(passage_id=passage_id), TEACHER)
    assert of_passage and {i.passage_id for i in of_passage} == {passage_id}


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (item_service_pb2.ListItemsRequest(page_size=1001), "page_size"),
        (item_service_pb2.ListItemsRequest(page_size=-1), "page_size"),
        (item_service_pb2.ListItemsRequest(section=42), "section"),  # type: ignore[arg-type]
        (item_service_pb2.ListItemsRequest(task_type=99), "task_type"),  # type: ignore[arg-type]
        (item_service_pb2.ListItemsRequest(status=17), "status"),  # type: ignore[arg-type]
        (item_service_pb2.ListItemsRequest(passage_id="psg-nope"), "passage_id"),
        (item_service_pb2.ListItemsRequest(page_token="%%%not-a-token"), "page_token"),
        (item_service_pb2.ListItemsRequest(page_token=base64.urlsafe_b64encode(b"[1,2]").decode()), "page_token"),
        (item_service_pb2.ListItemsRequest(min_difficulty=0.5), "min_difficulty"),
    ],
)
def test_list_items_invalid_arguments_name_the_field(
    item_stub: Stub, request_: item_service_pb2.ListItemsRequest, field: str
) -> None:
    fails(item_stub.ListItems, request_, TEACHER, grpc.StatusCode.INVALID_ARGUMENT, field=field)


def test_page_token_of_another_query_is_refused(item_stub: Stub) -> None:
    reply = item_stub.ListItems(item_service_pb2.ListItemsRequest(page_size=5), metadata=TEACHER)
    mismatched = item_service_pb2.ListItemsRequest(
        page_size=5, status=item_pb2.ITEM_STATUS_ACTIVE, page_token=reply.next_page_token
    )
    fails(item_stub.ListItems, mismatched, TEACHER, grpc.StatusCode.INVALID_ARGUMENT, "page_token")
    inverted = item_service_pb2.ListItemsRequest(
        min_difficulty=1.0, max_difficulty=0.0, view=item_pb2.ITEM_VIEW_FULL
    )
    fails(item_stub.ListItems, inverted, AUTHOR, grpc.StatusCode.INVALID_ARGUMENT, "min_difficulty")


def test_page_tokens_cannot_be_forged(item_stub: Stub) -> None:
    reply = item_stub.ListItems(item_service_pb2.ListItemsRequest(page_size=5), metadata=TEACHER)
    issued = reply.next_page_token
    again = item_stub.ListItems(
        item_service_pb2.ListItemsRequest(page_size=5, page_token=issued), metadata=TEACHER
    )
    assert again.items[0].item_id > reply.items[-1].item_id
    # The shape tokens had before they were signed: a client could compute the query hash and skip ahead.
    query = hashlib.sha256(repr(("items", ItemFilter())).encode()).hexdigest()[:16]
    before = json.dumps({"after": "itm-000900", "query": query}, separators=(",", ":")).encode()
    payload, mac = issued.split(".")
    other_payload = base64.urlsafe_b64encode(b'{"p":["itm-000900"],"q":"0"}').decode().rstrip("=")
    forged = [
        base64.urlsafe_b64encode(before).decode().rstrip("="),
        f"{other_payload}.{mac}",
        f"{payload}.{mac[::-1]}",
        f"{payload}.",
        payload,
    ]
    for token in forged:
        request = item_service_pb2.ListItemsRequest(page_size=5, page_token=token)
        fails(item_stub.ListItems, request, TEACHER, grpc.StatusCode.INVALID_ARGUMENT, "page_token")
    # A token of one list is not a token of another.
    passages = item_service_pb2.ListPassagesRequest(page_size=5, page_token=issued)
    fails(item_stub.ListPassages, passages, TEACHER, grpc.StatusCode.INVALID_ARGUMENT, "page_token")


def test_passages(item_stub: Stub) -> None:
    passages: list[item_pb2.Passage] = []
    request = item_service_pb2.ListPassagesRequest(page_size=50, view=item_pb2.ITEM_VIEW_FULL)
    while True:
        reply = item_stub.ListPassages(request, metadata=AUTHOR)
        passages.extend(reply.passages)
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    ids = [p.passage_id for p in passages]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    listening = next(p for p in passages if p.section == item_pb2.SECTION_LISTENING)
    assert listening.transcript and listening.audio_url and listening.item_ids
    student = item_stub.GetPassage(
        item_service_pb2.GetPassageRequest(passage_id=listening.passage_id), metadata=TEACHER
    )
    assert not student.transcript and student.item_ids == listening.item_ids
    items = item_stub.BatchGetItems(
        item_service_pb2.BatchGetItemsRequest(
            items=[item_service_pb2.ItemRef(item_id=i) for i in student.item_ids]
        ),
        metadata=TEACHER,
    ).items
    assert [i.position for i in items] == sorted(i.position for i in items)
    assert {i.passage_id for i in items} == {listening.passage_id}
    only_talks = item_stub.ListPassages(
        item_service_pb2.ListPassagesRequest(task_type=item_pb2.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK),
        metadata=TEACHER,
    )
    assert only_talks.passages and {p.task_type for p in only_talks.passages} == {
        item_pb2.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK
    }
    fails(
        item_stub.GetPassage,
        item_service_pb2.GetPassageRequest(passage_id="psg-nope"),
        TEACHER,
        grpc.StatusCode.NOT_FOUND,
    )
    fails(
        item_stub.ListPassages,
        item_service_pb2.ListPassagesRequest(page_size=2000),
        TEACHER,
        grpc.StatusCode.INVALID_ARGUMENT,
        "page_size",
    )


def test_revisions_of_an_imported_item(item_stub: Stub) -> None:
    reply = item_stub.ListItemRevisions(
        item_service_pb2.ListItemRevisionsRequest(item_id="itm-000001", view=item_pb2.ITEM_VIEW_FULL),
        metadata=AUTHOR,
    )
    assert [r.revision for r in reply.revisions] == [1]
    first = reply.revisions[0]
    assert first.actor and first.snapshot.item_id == "itm-000001" and "content.prompt" in first.changed_fields
    student = item_stub.ListItemRevisions(
        item_service_pb2.ListItemRevisionsRequest(item_id="itm-000001"), metadata=TEACHER
    )
    assert not student.revisions[0].HasField("snapshot") and not student.revisions[0].actor
    fails(
        item_stub.ListItemRevisions,
        item_service_pb2.ListItemRevisionsRequest(item_id="itm-999999"),
        TEACHER,
        grpc.StatusCode.NOT_FOUND,
    )


def test_reviews_are_not_for_students(item_stub: Stub) -> None:
    fails(
        item_stub.ListReviews,
        item_service_pb2.ListReviewsRequest(item_id="itm-000001"),
        STUDENT,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert item_stub.ListReviews(item_service_pb2.ListReviewsRequest(item_id="itm-000001"), metadata=AUTHOR)


def test_export_streams_passages_then_items(item_stub: Stub) -> None:
    records = list(
        item_stub.ExportItems(
            item_service_pb2.ExportItemsRequest(task_type=item_pb2.TASK_TYPE_READ_IN_DAILY_LIFE), metadata=AUTHOR
        )
    )
    kinds = [r.WhichOneof("record") for r in records]
    assert kinds == sorted(kinds, key=lambda k: k != "passage") and "passage" in kinds and "item" in kinds
    items = [r.item for r in records if r.HasField("item")]
    passages = {r.passage.passage_id for r in records if r.HasField("passage")}
    assert all(i.HasField("answer_key") for i in items)
    assert {i.passage_id for i in items} == passages
    with pytest.raises(grpc.RpcError) as caught:
        list(item_stub.ExportItems(item_service_pb2.ExportItemsRequest(), metadata=STUDENT))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


STUDENT_READS = [
    ("GetItem", item_service_pb2.GetItemRequest(item_id="itm-000001")),
    ("GetItem", item_service_pb2.GetItemRequest(item_id="itm-000001", revision=1)),
    (
        "BatchGetItems",
        item_service_pb2.BatchGetItemsRequest(items=[item_service_pb2.ItemRef(item_id="itm-000001")]),
    ),
    ("ListItems", item_service_pb2.ListItemsRequest(page_size=1000)),
    ("ListItems", item_service_pb2.ListItemsRequest(status=item_pb2.ITEM_STATUS_DRAFT)),
    ("ListItems", item_service_pb2.ListItemsRequest(status=item_pb2.ITEM_STATUS_RETIRED)),
    ("ListItems", item_service_pb2.ListItemsRequest(view=item_pb2.ITEM_VIEW_FULL)),
    ("ListPassages", item_service_pb2.ListPassagesRequest()),
    ("GetPassage", item_service_pb2.GetPassageRequest(passage_id="psg-000001")),
    ("ListItemRevisions", item_service_pb2.ListItemRevisionsRequest(item_id="itm-000001")),
    # Refused before the arguments are looked at: a student learns nothing about what exists.
    ("GetItem", item_service_pb2.GetItemRequest(item_id="itm-999999")),
    ("ListItems", item_service_pb2.ListItemsRequest(page_token="forged")),
]


@pytest.mark.parametrize(
    ("method", "request_"), STUDENT_READS, ids=[f"{m}-{i}" for i, (m, _) in enumerate(STUDENT_READS)]
)
def test_students_do_not_read_the_bank(item_stub: Stub, method: str, request_: Message) -> None:
    """At any status, revision or view: students see items through their own module, never the bank."""
    fails(getattr(item_stub, method), request_, STUDENT, grpc.StatusCode.PERMISSION_DENIED, "current module")
