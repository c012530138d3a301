"""Proto-level rules of the item bank: validation of incoming items, field diffs (the STUDENT view: toefl_core)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from toefl.item.v1 import item_pb2

from item_service.qa import SECTION_BY_TASK_TYPE
from toefl_core.errors import FailedPrecondition, InvalidArgument
from toefl_core.media import SHA256_HEX, sha256_hex

T = item_pb2.TaskType
S = item_pb2.Section


# Fields the server owns: never compared, never set through UpdateItem or ImportItems.
ServerField = Literal["item_id", "revision", "etag", "create_time", "update_time"]
SERVER_FIELDS: tuple[ServerField, ...] = ("item_id", "revision", "etag", "create_time", "update_time")
MAX_RUN_ID_LENGTH = 200
# What the bank stores as prompt audio: something a browser's <audio> element plays.
MEDIA_CONTENT_TYPES = frozenset({"audio/mpeg", "audio/ogg", "audio/webm", "audio/mp4", "audio/wav"})


def changed_paths(old: Message, new: Message, *, prefix: str = "", skip: tuple[str, ...] = ()) -> list[str]:
    """Field paths (e.g. "content.prompt") whose values differ; singular sub-messages are compared per field."""
    paths: list[str] = []
    for field in old.DESCRIPTOR.fields:
        if field.name in skip:
            continue
        path = f"{prefix}{field.name}"
        before, after = getattr(old, field.name), getattr(new, field.name)
        singular_message = field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated
        if singular_message:
            if old.HasField(field.name) or new.HasField(field.name):
                paths.extend(changed_paths(before, after, prefix=f"{path}."))
        elif before != after:
            paths.append(path)
    return paths


def check_enums(message: Message, *, prefix: str) -> None:
    """INVALID_ARGUMENT naming the first enum field (at any depth) that holds a value the proto does not define."""
    for field, value in message.ListFields():
        path = f"{prefix}.{field.name}"
        if field.type == FieldDescriptor.TYPE_ENUM:
            values = value if field.is_repeated else [value]
            for number in values:
                check_enum_value(number, enum=field.enum_type, field=path)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for element in value if field.is_repeated else [value]:
                check_enums(element, prefix=path)
        elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            numbers = value if field.is_repeated else [value]
            if not all(math.isfinite(number) for number in numbers):
                raise InvalidArgument(f"{path} must be a finite number", field=path)


def check_enum_value(value: int, *, enum: EnumDescriptor | None, field: str) -> None:
    """INVALID_ARGUMENT for a request enum (view, section, ...) holding a value the proto does not define."""
    if enum is not None and value not in enum.values_by_number:
        raise InvalidArgument(f"{field}: unknown {enum.name} value {value}", field=field)


def normalize_item(item: item_pb2.Item, *, prefix: str) -> None:
    """Check an incoming item's task type, section and enums; fill the section from the task type if unset."""
    check_enums(item, prefix=prefix)
    if item.task_type == T.TASK_TYPE_UNSPECIFIED:
        raise InvalidArgument(f"{prefix}.task_type is required", field=f"{prefix}.task_type")
    section = SECTION_BY_TASK_TYPE[item.task_type]
    if item.section == S.SECTION_UNSPECIFIED:
        item.section = section
    elif item.section != section:
        raise InvalidArgument(
            f"{prefix}.section {S.Name(item.section)} does not match the task type "
            f"{T.Name(item.task_type)} (section {S.Name(section)})",
            field=f"{prefix}.section",
        )
    if item.position < 0:
        raise InvalidArgument(f"{prefix}.position must not be negative", field=f"{prefix}.position")


def normalize_passage(passage: item_pb2.Passage, *, prefix: str) -> None:
    check_enums(passage, prefix=prefix)
    if passage.task_type == T.TASK_TYPE_UNSPECIFIED:
        raise InvalidArgument(f"{prefix}.task_type is required", field=f"{prefix}.task_type")
    section = SECTION_BY_TASK_TYPE[passage.task_type]
    if passage.section == S.SECTION_UNSPECIFIED:
        passage.section = section
    elif passage.section != section:
        raise InvalidArgument(
            f"{prefix}.section does not match the task type {T.Name(passage.task_type)}", field=f"{prefix}.section"
        )


def descriptor_has_path(descriptor: Descriptor, path: str) -> bool:
    node: Descriptor | None = descriptor
    for part in path.split("."):
        if node is None or part not in node.fields_by_name:
            return False
        field = node.fields_by_name[part]
        node = field.message_type if field.type == FieldDescriptor.TYPE_MESSAGE else None
    return True


def require_field(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required", field=field)
    return value


def check_import(
    passages: Sequence[item_pb2.Passage], items: Sequence[item_pb2.Item]
) -> tuple[list[item_pb2.Passage], list[item_pb2.Item]]:
    """Validated copies of import records: each needs an external_id; sections are filled from task types."""
    checked_passages: list[item_pb2.Passage] = []
    for index, source in enumerate(passages):
        passage = item_pb2.Passage()
        passage.CopyFrom(source)
        require_field(passage.external_id, f"passages[{index}].external_id")
        normalize_passage(passage, prefix=f"passages[{index}]")
        checked_passages.append(passage)
    checked_items: list[item_pb2.Item] = []
    for index, source_item in enumerate(items):
        item = item_pb2.Item()
        item.CopyFrom(source_item)
        require_field(item.external_id, f"items[{index}].external_id")
        normalize_item(item, prefix=f"items[{index}]")
        checked_items.append(item)
    return checked_passages, checked_items


def check_media(media: Sequence[item_pb2.Media]) -> list[item_pb2.Media]:
    """Blobs to import: each with its bytes, a playable content type, and the SHA-256 of those bytes."""
    checked: list[item_pb2.Media] = []
    for index, blob in enumerate(media):
        prefix = f"media[{index}]"
        if not blob.data:
            raise InvalidArgument(f"{prefix}.data is empty", field=f"{prefix}.data")
        if blob.content_type not in MEDIA_CONTENT_TYPES:
            allowed = ", ".join(sorted(MEDIA_CONTENT_TYPES))
            raise InvalidArgument(
                f"{prefix}.content_type {blob.content_type!r} is not one of {allowed}",
                field=f"{prefix}.content_type",
            )
        actual = sha256_hex(blob.data)
        if blob.sha256 and blob.sha256 != actual:
            # Altered on the way, or a reference to other bytes: either way the items would name the wrong audio.
            raise InvalidArgument(
                f"{prefix}.sha256 {blob.sha256!r} is not the SHA-256 of its data ({actual})",
                field=f"{prefix}.sha256",
            )
        checked.append(item_pb2.Media(sha256=actual, content_type=blob.content_type, data=blob.data))
    return checked


def check_sha256(value: str, field: str) -> str:
    if not SHA256_HEX.fullmatch(value):
        raise InvalidArgument(f"{field} must be 64 lowercase hex digits (a SHA-256)", field=field)
    return value


def check_statistics(statistics: Sequence[item_pb2.ItemStatistics], *, run_id: str, limit: int) -> None:
    """INVALID_ARGUMENT naming the first figure out of range, a duplicate item, or a missing run_id."""
    require_field(run_id, "run_id")
    if len(run_id) > MAX_RUN_ID_LENGTH:
        raise InvalidArgument(f"run_id is longer than {MAX_RUN_ID_LENGTH} characters", field="run_id")
    if len(statistics) > limit:
        raise InvalidArgument(f"statistics holds {len(statistics)} entries; at most {limit}", field="statistics")
    seen: set[str] = set()
    for index, figures in enumerate(statistics):
        prefix = f"statistics[{index}]"
        item_id = require_field(figures.item_id, f"{prefix}.item_id")
        if item_id in seen:
            raise InvalidArgument(f"{prefix}.item_id: item {item_id!r} appears twice", field=f"{prefix}.item_id")
        seen.add(item_id)
        check_enums(figures, prefix=prefix)
        ranges: tuple[tuple[str, float, float, float], ...] = (
            ("administrations", figures.administrations, 0, math.inf),
            ("p_value", figures.p_value, 0, 1),
            ("exposure_rate", figures.exposure_rate, 0, 1),
            ("mean_response_seconds", figures.mean_response_seconds, 0, math.inf),
        )
        if figures.HasField("point_biserial"):
            ranges += (("point_biserial", figures.point_biserial, -1, 1),)
        for name in ("infit", "outfit"):
            if figures.HasField(name):
                ranges += ((name, getattr(figures, name), 0, math.inf),)
        for name, value, low, high in ranges:
            if not low <= value <= high:
                raise InvalidArgument(
                    f"{prefix}.{name} is {value}; it must lie in [{low}, {high}]", field=f"{prefix}.{name}"
                )


def check_pretest_model(item: item_pb2.Item) -> None:
    """FAILED_PRECONDITION unless the item names the IRT model its pretest responses are to be calibrated with."""
    irt = item.irt
    if irt.model == item_pb2.IRT_MODEL_3PL or (irt.model == item_pb2.IRT_MODEL_GPCM and len(irt.steps) > 0):
        return
    raise FailedPrecondition(
        f"item {item.item_id!r} needs irt.model (IRT_MODEL_3PL, or IRT_MODEL_GPCM with one step per score point) "
        "before pretesting: calibration estimates the parameters of that model",
        reason="ITEM_NOT_CALIBRATABLE",
    )


def check_proposed_parameters(item: item_pb2.Item, irt: item_pb2.IrtParameters, *, run_id: str) -> None:
    """INVALID_ARGUMENT for estimates that do not fit the item's model or lie outside the model's range."""
    if len(run_id) > MAX_RUN_ID_LENGTH:
        raise InvalidArgument(f"run_id is longer than {MAX_RUN_ID_LENGTH} characters", field="run_id")
    if irt.calibration.run_id != run_id:
        raise InvalidArgument("irt.calibration.run_id must equal run_id", field="irt.calibration.run_id")
    if irt.model != item.irt.model:
        raise InvalidArgument(
            f"irt.model must stay {item_pb2.IrtModel.Name(item.irt.model)}, the model the item was pretested with",
            field="irt.model",
        )
    if irt.model == item_pb2.IRT_MODEL_GPCM and len(irt.steps) != len(item.irt.steps):
        raise InvalidArgument(
            f"irt.steps needs {len(item.irt.steps)} steps, one per score point of the item", field="irt.steps"
        )
    values = [irt.a, irt.b, irt.c, *irt.steps]
    if not all(math.isfinite(value) for value in values) or irt.a <= 0 or not 0 <= irt.c < 1:
        raise InvalidArgument("irt needs a finite a > 0, finite b and steps, and c in [0, 1)", field="irt")
