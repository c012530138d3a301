"""The STUDENT view, walked generically at every depth: no key, answer, IRT, rubric, provenance or transcript."""

from __future__ import annotations

import re

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from toefl.item.v1 import item_pb2, item_service_pb2

from tests.item_service.rpc import AUTHOR, SERVICE, TEACHER, Stub
from toefl_core.student_view import student_item, student_passage, to_student_view

SECRET = re.compile(r"key|answer|irt|rubric|provenance|transcript", re.IGNORECASE)


def secrets_in(message: Message, path: str = "") -> list[str]:
    """Paths of every populated field, at any depth, whose name looks like something a student must not see."""
    found: list[str] = []
    for field, value in message.ListFields():
        where = f"{path}.{field.name}" if path else field.name
        if SECRET.search(field.name):
            found.append(where)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for index, element in enumerate(value if field.is_repeated else [value]):
                found.extend(secrets_in(element, f"{where}[{index}]" if field.is_repeated else where))
    return found


def test_the_walk_finds_secrets_in_a_full_view(item_stub: Stub) -> None:
    """Guards the guard: the same walk over FULL answers does find keys, parameters and transcripts."""
    page = item_stub.ListItems(
        item_service_pb2.ListItemsRequest(page_size=1000, view=item_pb2.ITEM_VIEW_FULL), metadata=AUTHOR
    )
    found = {p.split(".")[-1] for p in secrets_in(page)}
    assert {"answer_key", "irt", "provenance", "rubric"} <= found
    passages = item_stub.ListPassages(
        item_service_pb2.ListPassagesRequest(view=item_pb2.ITEM_VIEW_FULL, page_size=1000), metadata=AUTHOR
    )
    assert any(p.endswith("transcript") for p in secrets_in(passages))


def test_student_answers_carry_no_secret_at_any_depth(item_stub: Stub) -> None:
    page = item_stub.ListItems(item_service_pb2.ListItemsRequest(page_size=1000), metadata=TEACHER)
    ids = [item.item_id for item in page.items]
    answers: list[Message] = [
        page,
        item_stub.GetItem(item_service_pb2.GetItemRequest(item_id=ids[0]), metadata=TEACHER),
        item_stub.BatchGetItems(
            item_service_pb2.BatchGetItemsRequest(items=[item_service_pb2.ItemRef(item_id=i) for i in ids[:500]]),
            metadata=TEACHER,
        ),
        item_stub.ListPassages(item_service_pb2.ListPassagesRequest(page_size=1000), metadata=TEACHER),
        item_stub.ListItemRevisions(item_service_pb2.ListItemRevisionsRequest(item_id=ids[0]), metadata=TEACHER),
    ]
    passage_id = next(item.passage_id for item in page.items if item.passage_id)
    answers.append(
        item_stub.GetPassage(item_service_pb2.GetPassageRequest(passage_id=passage_id), metadata=TEACHER)
    )
    # An author asking for the STUDENT view gets the STUDENT view too.
    answers.append(item_stub.ListItems(item_service_pb2.ListItemsRequest(page_size=1000), metadata=AUTHOR))
    spec = item_service_pb2.ModuleSpec(
        section=item_pb2.SECTION_LISTENING,
        task_counts=[
            item_service_pb2.TaskCount(task_type=item_pb2.TASK_TYPE_LISTEN_TO_ACADEMIC_TALK, count=4),
            item_service_pb2.TaskCount(task_type=item_pb2.TASK_TYPE_LISTEN_AND_CHOOSE_RESPONSE, count=3),
        ],
    )
    module = item_stub.AssembleModule(item_service_pb2.AssembleModuleRequest(spec=spec, seed=5), metadata=SERVICE)
    answers.append(item_service_pb2.AssembleModuleResponse(items=module.items, passages=module.passages))
    for answer in answers:
        assert secrets_in(answer) == [], type(answer).__name__
    assert module.items and module.passages


def test_to_student_view_clears_nested_messages() -> None:
    item = item_pb2.Item(
        item_id="itm-1",
        external_id="ext",
        answer_key=item_pb2.AnswerKey(correct_option=2),
        irt=item_pb2.IrtParameters(a=1.0),
        rubric=item_pb2.Rubric(name="r"),
        provenance=item_pb2.Provenance(author="someone"),
        content=item_pb2.ItemContent(prompt="p"),
    )
    revision = item_pb2.ItemRevision(item_id="itm-1", actor="someone", snapshot=item)
    response = item_service_pb2.AssembleModuleResponse(
        items=[item], passages=[item_pb2.Passage(passage_id="p", transcript="t", text="x")]
    )
    for message in (revision, response):
        assert secrets_in(message)
        to_student_view(message)
        assert secrets_in(message) == []
    assert response.items[0].content.prompt == "p" and response.passages[0].text == "x"
    assert not response.items[0].external_id and revision.item_id == "itm-1"


def test_the_service_applies_the_one_allow_list(item_stub: Stub) -> None:
    """item_service's STUDENT answers are exactly toefl_core's view of the FULL ones, as session_service's are."""
    full = item_stub.ListItems(
        item_service_pb2.ListItemsRequest(page_size=50, view=item_pb2.ITEM_VIEW_FULL), metadata=AUTHOR
    )
    student = item_stub.ListItems(item_service_pb2.ListItemsRequest(page_size=50), metadata=TEACHER)
    assert [student_item(item) for item in full.items] == list(student.items)
    assert all(not item.etag and not item.HasField("update_time") for item in student.items)
    passages = item_stub.ListPassages(
        item_service_pb2.ListPassagesRequest(page_size=20, view=item_pb2.ITEM_VIEW_FULL), metadata=AUTHOR
    )
    seen = item_stub.ListPassages(item_service_pb2.ListPassagesRequest(page_size=20), metadata=TEACHER)
    assert [student_passage(passage) for passage in passages.passages] == list(seen.passages)
