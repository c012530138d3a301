"""The STUDENT view of items and passages: what a test taker may see, kept by an allow-list."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message
from toefl.item.v1 import item_pb2

# An allow-list rather than a deny-list: a field added to Item later stays hidden until someone decides otherwise.
STUDENT_ITEM_FIELDS = frozenset(
    {"item_id", "section", "task_type", "status", "revision", "passage_id", "position", "content", "demo"}
)
STUDENT_PASSAGE_FIELDS = frozenset(
    {"passage_id", "section", "task_type", "title", "text", "audio_url", "demo", "item_ids"}
)
M = TypeVar("M", bound=Message)


def _allow_only(message: M, allowed: frozenset[str]) -> M:
    view = type(message)()
    view.CopyFrom(message)
    for field, _value in view.ListFields():
        if field.name not in allowed:
            view.ClearField(field.name)
    return view


def student_item(item: item_pb2.Item) -> item_pb2.Item:
    return _allow_only(item, STUDENT_ITEM_FIELDS)


def student_passage(passage: item_pb2.Passage) -> item_pb2.Passage:
    return _allow_only(passage, STUDENT_PASSAGE_FIELDS)
