"""Ids and request ids with control characters refused before any work, whatever the RPC."""

from __future__ import annotations

import functools
import re

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from toefl_core.errors import InvalidArgument

# Exactly Unicode category Cc: C0 (below 0x20), DEL and C1. An id holding one would be stored as it came (a NUL in
# a request id was), then break logs, URLs and every client that prints it.
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")


def is_id_field(field: FieldDescriptor) -> bool:
    """A string field that names something: `id`, `*_id` (request_id too), or a repeated `*_ids`."""
    if field.type != FieldDescriptor.TYPE_STRING:
        return False
    if field.is_repeated:
        return field.name.endswith("_ids")
    return field.name == "id" or field.name.endswith("_id")


@functools.cache
def _fields(descriptor: Descriptor) -> tuple[frozenset[str], frozenset[str]]:
    """The names of the message's id fields, and of its message fields that may hold more (maps aside)."""
    ids = frozenset(field.name for field in descriptor.fields if is_id_field(field))
    nested = frozenset(
        field.name
        for field in descriptor.fields
        if field.message_type is not None and not field.message_type.GetOptions().map_entry
    )
    return ids, nested


def check_ids(request: object, *, prefix: str = "") -> None:
    """Refuse a request whose ids hold a control character, naming the field (INVALID_ARGUMENT).

    Nested messages are read too: a batch carries each of its requests' ids (BatchRescoreSessions' request_id).
    """
    if not isinstance(request, Message):
        return
    ids, nested = _fields(request.DESCRIPTOR)
    for field, value in request.ListFields():
        if field.name not in ids and field.name not in nested:
            continue
        name = prefix + field.name
        named = [(f"{name}[{i}]", v) for i, v in enumerate(value)] if field.is_repeated else [(name, value)]
        for path, one in named:
            if field.name in nested:
                check_ids(one, prefix=f"{path}.")
                continue
            found = CONTROL_CHARACTER.search(one)
            if found is not None:
                raise InvalidArgument(
                    f"{path} contains a control character (U+{ord(found.group()):04X} at index {found.start()}); "
                    "ids are printable text",
                    field=path,
                )
