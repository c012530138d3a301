"""The one STUDENT view policy: an allow-list per message type, applied at every depth."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from toefl.item.v1 import item_pb2, item_service_pb2

from toefl_core.student_view import STUDENT_FIELDS, student_copy, student_item, to_student_view


def test_every_field_outside_the_allow_list_is_hidden() -> None:
    # Each policed type: a field set for every field of the message is cut down to the allowed ones exactly.
    for message_type in (item_pb2.Item, item_pb2.Passage, item_pb2.ItemRevision):
        descriptor = message_type.DESCRIPTOR
        allowed = STUDENT_FIELDS[descriptor.full_name]
        assert allowed <= {f.name for f in descriptor.fields}, descriptor.full_name
        hidden = {f.name for f in descriptor.fields} - allowed
        assert hidden, descriptor.full_name
    item = item_pb2.Item(
        item_id="itm-1",
        etag="e",
        external_id="x",
        create_time=Timestamp(seconds=1),
        update_time=Timestamp(seconds=2),
        answer_key=item_pb2.AnswerKey(correct_option=1),
        content=item_pb2.ItemContent(prompt="p", options=["a", "b"]),
    )
    view = student_item(item)
    assert {f.name for f, _ in view.ListFields()} == {"item_id", "content"}
    assert item.etag == "e" and item.answer_key.correct_option == 1  # the original is untouched


def test_policed_messages_are_found_inside_any_response() -> None:
    item = item_pb2.Item(item_id="itm-1", irt=item_pb2.IrtParameters(a=1.0), rubric=item_pb2.Rubric(name="r"))
    response = item_service_pb2.BatchGetItemsResponse(items=[item, item])
    view = student_copy(response)
    assert [i.item_id for i in view.items] == ["itm-1", "itm-1"]
    assert not any(i.HasField("irt") or i.HasField("rubric") for i in view.items)
    revision = item_pb2.ItemRevision(item_id="itm-1", actor="someone", snapshot=item, note="n")
    to_student_view(revision)
    assert (revision.actor, revision.HasField("snapshot"), revision.note) == ("", False, "n")
