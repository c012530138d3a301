"""Conversion between table rows and proto messages (bodies as proto JSON, enums by name, times in UTC)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from toefl.common.v1 import audit_pb2
from toefl.item.v1 import item_pb2

from item_service.storage.models import AuditRow, ItemRow, ItemStatisticsRow, PassageRow, ReviewRow, RevisionRow

M = TypeVar("M", bound=Message)
BodyField = Literal["content", "answer_key", "irt", "rubric", "provenance"]
BODY_FIELDS: tuple[BodyField, ...] = ("content", "answer_key", "irt", "rubric", "provenance")


def utcnow() -> datetime:
    # Naive UTC: SQLite has no time zones, so every stored time is UTC by convention.
    return datetime.now(UTC).replace(tzinfo=None)


def to_timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.replace(tzinfo=UTC))
    return stamp


def to_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def from_json(data: dict[str, Any], message: M) -> M:
    return json_format.ParseDict(data, message)


def apply_item(row: ItemRow, item: item_pb2.Item) -> None:
    """Copy an item's fields (not its id, revision, etag or times) onto a row."""
    row.external_id = item.external_id or None
    row.section = item_pb2.Section.Name(item.section)
    row.task_type = item_pb2.TaskType.Name(item.task_type)
    row.status = item_pb2.ItemStatus.Name(item.status)
    row.passage_id = item.passage_id or None
    row.position = item.position
    row.difficulty = item.irt.b if item.HasField("irt") else None
    row.demo = item.demo
    for name in BODY_FIELDS:
        setattr(row, name, to_json(getattr(item, name)) if item.HasField(name) else None)


def row_to_item(row: ItemRow) -> item_pb2.Item:
    item = item_pb2.Item(
        item_id=row.item_id,
        external_id=row.external_id or "",
        section=item_pb2.Section.Value(row.section),
        task_type=item_pb2.TaskType.Value(row.task_type),
        status=item_pb2.ItemStatus.Value(row.status),
        revision=row.revision,
        etag=row.etag,
        passage_id=row.passage_id or "",
        position=row.position,
        demo=row.demo,
        create_time=to_timestamp(row.create_time),
        update_time=to_timestamp(row.update_time),
    )
    for name in BODY_FIELDS:
        data = getattr(row, name)
        if data is not None:
            from_json(data, getattr(item, name))
            # An empty message stored as {} is still "set"; ParseDict alone would leave it unset.
            getattr(item, name).SetInParent()
    return item


def apply_passage(row: PassageRow, passage: item_pb2.Passage) -> None:
    row.external_id = passage.external_id or None
    row.section = item_pb2.Section.Name(passage.section)
    row.task_type = item_pb2.TaskType.Name(passage.task_type)
    row.title = passage.title
    row.text = passage.text
    row.audio_url = passage.audio_url
    row.transcript = passage.transcript
    row.demo = passage.demo


def row_to_passage(row: PassageRow, item_ids: list[str]) -> item_pb2.Passage:
    return item_pb2.Passage(
        passage_id=row.passage_id,
        external_id=row.external_id or "",
        section=item_pb2.Section.Value(row.section),
        task_type=item_pb2.TaskType.Value(row.task_type),
        title=row.title,
        text=row.text,
        audio_url=row.audio_url,
        transcript=row.transcript,
        demo=row.demo,
        item_ids=item_ids,
    )


def row_to_revision(row: RevisionRow) -> item_pb2.ItemRevision:
    return item_pb2.ItemRevision(
        item_id=row.item_id,
        revision=row.revision,
        actor=row.actor,
        change_time=to_timestamp(row.change_time),
        changed_fields=row.changed_fields,
        note=row.note,
        snapshot=from_json(row.snapshot, item_pb2.Item()),
    )


def row_to_review(row: ReviewRow) -> item_pb2.Review:
    return item_pb2.Review(
        review_id=row.review_id,
        item_id=row.item_id,
        revision=row.revision,
        kind=item_pb2.ReviewKind.Value(row.kind),
        verdict=item_pb2.ReviewVerdict.Value(row.verdict),
        checks=[from_json(check, item_pb2.QaCheck()) for check in row.checks],
        reviewer=row.reviewer,
        comment=row.comment,
        create_time=to_timestamp(row.create_time),
    )


def apply_statistics(row: ItemStatisticsRow, statistics: item_pb2.ItemStatistics) -> None:
    """Copy the figures (not the item id, run id or time) onto a row."""
    row.administrations = statistics.administrations
    row.p_value = statistics.p_value
    row.point_biserial = statistics.point_biserial if statistics.HasField("point_biserial") else None
    row.exposure_rate = statistics.exposure_rate
    row.mean_response_seconds = statistics.mean_response_seconds
    row.infit = statistics.infit if statistics.HasField("infit") else None
    row.outfit = statistics.outfit if statistics.HasField("outfit") else None
    row.misfit = statistics.misfit


def row_to_statistics(row: ItemStatisticsRow) -> item_pb2.ItemStatistics:
    statistics = item_pb2.ItemStatistics(
        item_id=row.item_id,
        administrations=row.administrations,
        p_value=row.p_value,
        exposure_rate=row.exposure_rate,
        mean_response_seconds=row.mean_response_seconds,
        run_id=row.run_id,
        compute_time=to_timestamp(row.compute_time),
    )
    if row.point_biserial is not None:
        statistics.point_biserial = row.point_biserial
    if row.infit is not None:
        statistics.infit = row.infit
    if row.outfit is not None:
        statistics.outfit = row.outfit
    statistics.misfit = bool(row.misfit)
    return statistics


def row_to_audit(row: AuditRow) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        audit_id=row.audit_id,
        time=to_timestamp(row.time),
        actor_id=row.actor,
        actor_role=row.actor_role,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target,
        reason=row.reason,
        detail_json=json.dumps(row.detail, sort_keys=True),
    )
