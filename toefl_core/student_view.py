"""The STUDENT view of the item bank, one allow-list for both services: what a test taker may see of an item."""

from __future__ import annotations

import functools
from typing import TypeVar

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from toefl.item.v1 import item_pb2

# An allow-list rather than a deny-list: a field added to one of these messages later stays hidden from students
# until someone decides otherwise. Message fields listed here are kept whole (ItemContent holds no secret).
STUDENT_FIELDS: dict[str, frozenset[str]] = {
    item_pb2.Item.DESCRIPTOR.full_name: frozenset(
        {"item_id", "section", "task_type", "status", "revision", "passage_id", "position", "content", "demo"}
    ),
    # No transcript: shown to a student it would give the listening away.
    item_pb2.Passage.DESCRIPTOR.full_name: frozenset(
        {"passage_id", "section", "task_type", "title", "text", "audio_url", "demo", "item_ids"}
    ),
    # The change record only: the snapshot is the whole item, the actor author data.
    item_pb2.ItemRevision.DESCRIPTOR.full_name: frozenset(
        {"item_id", "revision", "change_time", "changed_fields", "note"}
    ),
}
M = TypeVar("M", bound=Message)


def _holds_policed(descriptor: Descriptor, seen: set[str]) -> bool:
    """Whether a message type can hold, at some depth, a message the policy restricts."""
    if descriptor.full_name in STUDENT_FIELDS:
        return True
    if descriptor.full_name in seen:
        return False
    seen.add(descriptor.full_name)
    return any(
        field.message_type is not None and _holds_policed(field.message_type, seen) for field in descriptor.fields
    )


@functools.cache
def _plan(descriptor: Descriptor) -> tuple[tuple[str, ...], tuple[tuple[str, bool, bool], ...]]:
    """What to clear in a message type, and which message fields (repeated? map?) can hold a policed message."""
    allowed = STUDENT_FIELDS.get(descriptor.full_name)
    hidden = () if allowed is None else tuple(f.name for f in descriptor.fields if f.name not in allowed)
    if allowed is not None:
        # A policed message keeps its allowed fields whole.
        return hidden, ()
    descend = tuple(
        (field.name, field.is_repeated, bool(field.message_type.GetOptions().map_entry))
        for field in descriptor.fields
        if field.message_type is not None and _holds_policed(field.message_type, set())
    )
    return hidden, descend


def to_student_view(message: Message) -> None:
    """Clear, in place and at every depth, every field of an Item, Passage or ItemRevision a student may not see;
    a pretest item reads as ACTIVE.

    Only message fields whose type can hold one of those are walked, which keeps the view cheap enough for every
    read.
    """
    hidden, descend = _plan(message.DESCRIPTOR)
    for name in hidden:
        message.ClearField(name)
    if isinstance(message, item_pb2.Item) and message.status == item_pb2.ITEM_STATUS_PRETEST:
        # A student who could tell a pretest item (unscored) would skip it, and its responses would be worthless.
        message.status = item_pb2.ITEM_STATUS_ACTIVE
    for name, repeated, is_map in descend:
        value = getattr(message, name)
        if is_map:
            for element in value.values():
                to_student_view(element)
        elif repeated:
            for element in value:
                to_student_view(element)
        elif message.HasField(name):
            to_student_view(value)


def student_copy(message: M) -> M:
    """The STUDENT view of a message, leaving the message itself (often a shared, cached one) untouched."""
    view = type(message)()
    view.CopyFrom(message)
    to_student_view(view)
    return view


def student_item(item: item_pb2.Item) -> item_pb2.Item:
    return student_copy(item)


def student_passage(passage: item_pb2.Passage) -> item_pb2.Passage:
    return student_copy(passage)
