"""Converters between session_service's records and its protos (the API's messages), in one place."""

from __future__ import annotations

import json
from typing import overload

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from toefl.common.v1 import audit_pb2
from toefl.item.v1 import item_pb2
from toefl.session.v1 import scoring_service_pb2 as spb
from toefl.session.v1 import session_service_pb2 as pb

from session_service.domain.accommodations import Accommodation
from session_service.domain.answers import AnswerForm, GivenAnswer
from session_service.domain.proctoring import remaining_ms
from session_service.domain.scores import (
    RatingOutcome,
    RatingTaskRecord,
    RescoreOutcome,
    ScoreVersionRecord,
    SectionFigures,
    student_sees_band,
)
from session_service.domain.sittings import Seat, seat_state
from session_service.scoring import answer_from_json
from session_service.storage.accounts import ClassRecord, UserRecord
from session_service.storage.answers import ResponseRecord
from session_service.storage.audit import AuditRecord
from session_service.storage.sessions import ModuleRecord
from session_service.storage.sittings import AccommodationRecord, SittingRecord
from session_service.views import student_item
from toefl_core.auth import Role

ROLE_TO_PROTO = {
    Role.STUDENT: pb.ROLE_STUDENT,
    Role.TEACHER: pb.ROLE_TEACHER,
    Role.RATER: pb.ROLE_RATER,
    Role.AUTHOR: pb.ROLE_AUTHOR,
    Role.ADMIN: pb.ROLE_ADMIN,
}
PROTO_TO_ROLE = {value: key for key, value in ROLE_TO_PROTO.items()}


@overload
def timestamp(ms: int) -> Timestamp: ...
@overload
def timestamp(ms: None) -> None: ...
@overload
def timestamp(ms: int | None) -> Timestamp | None: ...
def timestamp(ms: int | None) -> Timestamp | None:
    if ms is None:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def user_proto(user: UserRecord) -> pb.User:
    return pb.User(
        user_id=user.user_id,
        username=user.username,
        display_name=user.display_name,
        role=ROLE_TO_PROTO.get(Role(user.role), pb.ROLE_UNSPECIFIED),
        create_time=timestamp(user.create_ms),
    )


def class_proto(record: ClassRecord) -> pb.Class:
    return pb.Class(
        class_id=record.class_id, name=record.name, teacher_id=record.teacher_id, student_ids=record.student_ids
    )


def module_summary(module: ModuleRecord) -> pb.ModuleSummary:
    return pb.ModuleSummary(
        module_id=module.module_id,
        section=item_pb2.Section.Value(module.section),
        stage=pb.ModuleStage.Value(module.stage),
        status=pb.ModuleStatus.Value(module.status),
        sequence=module.sequence,
        item_count=module.item_count,
        answered_count=module.answered_count,
        start_time=timestamp(module.start_ms),
        close_time=timestamp(module.close_ms),
    )


def saved_response(record: ResponseRecord) -> pb.SavedResponse:
    return pb.SavedResponse(
        item_id=record.item_id,
        answer=answer_from_json(record.answer_json),
        revision=record.revision,
        saved_time=timestamp(record.saved_ms),
        request_id=record.request_id,
    )


def section_proto(figures: SectionFigures, *, detail: bool = True) -> spb.SectionScore:
    """A section's score; without `detail` (a student's own report) no theta or standard error, and no band, range
    or CEFR unless the domain says the student sees them (see `version_proto`)."""
    section = spb.SectionScore(
        section=item_pb2.Section.Value(figures.section),
        status=spb.ScoreStatus.Value(figures.status),
        items_used=figures.items_used,
        items_awaiting_rating=figures.items_awaiting_rating,
    )
    if detail:
        section.theta = figures.theta
        section.standard_error = figures.standard_error
    if detail or student_sees_band(**_counts(figures)):
        section.band = figures.band
        section.cefr = figures.cefr
        section.band_low = figures.band_low
        section.band_high = figures.band_high
    return section


def _counts(figures: SectionFigures) -> dict[str, int]:
    """The section's items shown and answered, summed over its task types."""
    entries = json.loads(figures.task_types_json)
    return {"items": sum(e["items"] for e in entries), "answered": sum(e["answered"] for e in entries)}


def version_proto(record: ScoreVersionRecord, *, detail: bool = True) -> spb.ScoreVersion:
    """A score version. Without `detail` it is a student's view of their own score: bands, ranges, CEFR and the
    comparable total only, each only where enough was answered that it names no single answer's correctness; no
    theta, standard error or parameter revisions, which move with every single response."""
    sections = [section_proto(f, detail=detail) for f in record.sections]
    version = spb.ScoreVersion(
        score_id=record.score_id,
        session_id=record.session_id,
        version=record.version,
        status=spb.ScoreStatus.Value(record.status),
        sections=sections,
        blueprint_version=record.blueprint_version,
        cut_table_version=record.cut_table_version,
        reason=record.reason,
        create_time=timestamp(record.create_ms),
    )
    if detail:
        for figures in record.sections:
            version.parameter_revisions.update(json.loads(figures.parameters_json))
    # The total is computed from every section's band: it is shown only where each of them is.
    if record.total is not None and all(section.band for section in sections):
        version.total_band = record.total.band
        version.total_cefr = record.total.cefr
        version.comparable_total.CopyFrom(
            spb.ComparableTotal(
                low=record.total.comparable_low,
                high=record.total.comparable_high,
                midpoint=record.total.comparable_midpoint,
            )
        )
    return version


def task_type_summaries(record: ScoreVersionRecord) -> list[spb.TaskTypeSummary]:
    totals: dict[int, spb.TaskTypeSummary] = {}
    for figures in record.sections:
        for entry in json.loads(figures.task_types_json):
            task_type = item_pb2.TaskType.Value(entry["task_type"])
            summary = totals.setdefault(task_type, spb.TaskTypeSummary(task_type=task_type))
            summary.items += entry["items"]
            summary.answered += entry["answered"]
            summary.points += entry["points"]
            summary.max_points += entry["max_points"]
    return [totals[k] for k in sorted(totals)]


def describe_changes(previous: ScoreVersionRecord | None, current: ScoreVersionRecord) -> list[str]:
    """What a rescore changed, one line per section (and the cut table), for the job's report."""
    if previous is None:
        return ["first score of the session"]
    changes = []
    if previous.cut_table_version != current.cut_table_version:
        changes.append(f"cut table {previous.cut_table_version} -> {current.cut_table_version}")
    before = {f.section: f for f in previous.sections}
    for now in current.sections:
        old = before.get(now.section)
        if old is None:
            changes.append(f"{now.section}: newly scored, band {now.band}")
            continue
        parts = [
            f"{name} {getattr(old, name)} -> {getattr(now, name)}"
            for name in ("status", "band", "band_low", "band_high")
            if getattr(old, name) != getattr(now, name)
        ]
        if (old.theta, old.standard_error) != (now.theta, now.standard_error):
            parts.append(f"theta {old.theta:.4f} -> {now.theta:.4f}")
            parts.append(f"se {old.standard_error:.4f} -> {now.standard_error:.4f}")
        old_revisions, new_revisions = json.loads(old.parameters_json), json.loads(now.parameters_json)
        moved = sorted(k for k in new_revisions if old_revisions.get(k) != new_revisions[k])
        if moved:
            parts.append(f"parameters of {len(moved)} item(s) at new revisions: {', '.join(moved)}")
        if parts:
            changes.append(f"{now.section}: " + "; ".join(parts))
    return changes


def rescore_result(outcome: RescoreOutcome) -> bytes:
    current = version_proto(outcome.current)
    result = spb.RescoreResult(
        session_id=outcome.session_id,
        changed=outcome.changed,
        current=current,
        changes=describe_changes(outcome.previous, outcome.current) if outcome.changed else [],
    )
    if outcome.previous is not None:
        # Unchanged, the current version is the previous one: converted once.
        result.previous.CopyFrom(
            current if outcome.previous is outcome.current else version_proto(outcome.previous)
        )
    return result.SerializeToString(deterministic=True)


def rating_result(outcome: RatingOutcome) -> spb.RatingResult:
    result = spb.RatingResult(
        rating_id=outcome.rating_id,
        response_id=str(outcome.response_id),
        state=spb.RatingTaskState.Value(outcome.state),
        rule=outcome.rule,
    )
    if outcome.final_score is not None:
        result.final_score = outcome.final_score
    return result


def rating_task_proto(record: RatingTaskRecord) -> spb.RatingTask:
    item = item_pb2.Item.FromString(record.full_item)
    answer = json_format.Parse(record.answer_json, pb.Answer())
    task = spb.RatingTask(
        response_id=str(record.response_id),
        task_type=item_pb2.TaskType.Value(record.task_type),
        item_id=record.item_id,
        item=student_item(item),
        rubric=item.rubric,
        state=spb.RatingTaskState.Value(record.state),
        submit_time=timestamp(record.submit_ms),
    )
    if answer.WhichOneof("value") == "text":
        task.response_text = answer.text
    elif answer.WhichOneof("value") == "speech":
        task.audio_ref = answer.speech.audio_ref
        task.transcript = answer.speech.transcript
    return task


# An item is parsed once per process and shared by every module holding it (item_client.ModuleCache), so its form
# is read at its first answer, not at every one; by the item object itself, which the entry holds (its id cannot be
# reused meanwhile).
_FORMS: dict[int, tuple[item_pb2.Item, AnswerForm]] = {}
_MAX_FORMS = 4096


def answer_form(item: item_pb2.Item) -> AnswerForm:
    """What the item takes as an answer, for the domain's shape rule."""
    known = _FORMS.get(id(item))
    if known is not None and known[0] is item:
        return known[1]
    content = item.content
    form = AnswerForm(
        item_id=item.item_id,
        task_type=item_pb2.TaskType.Name(item.task_type),
        options=len(content.options),
        missing_letters=tuple(slot.missing_letters for slot in content.slots),
        word_bank=tuple(content.word_bank),
        max_words=content.max_words,
    )
    if len(_FORMS) >= _MAX_FORMS:
        _FORMS.clear()
    _FORMS[id(item)] = (item, form)
    return form


def answer_json(answer: pb.Answer) -> str:
    """The answer as it is stored: exactly json_format.MessageToJson(answer, indent=None), written directly
    (every answer is stored, and the generic walk of the message was a fifth of an answer's time on the event
    loop)."""
    kind = answer.WhichOneof("value")
    value: dict[str, object]
    if kind == "choice_index":
        value = {"choiceIndex": answer.choice_index}
    elif kind == "text":
        value = {"text": answer.text}
    elif kind == "completions" or kind == "word_sequence":
        words = list(answer.completions.values if kind == "completions" else answer.word_sequence.values)
        value = {"completions" if kind == "completions" else "wordSequence": {"values": words} if words else {}}
    elif kind == "speech":
        speech = answer.speech
        fields = {"audioRef": speech.audio_ref, "transcript": speech.transcript, "durationMs": speech.duration_ms}
        # As proto3 JSON: a field at its default value is left out.
        value = {"speech": {name: field for name, field in fields.items() if field}}
    else:
        value = {}
    return json.dumps(value)


def given_answer(answer: pb.Answer) -> GivenAnswer:
    """The answer as the domain's shape rule reads it."""
    kind = answer.WhichOneof("value")
    if kind == "completions":
        return GivenAnswer(kind, values=tuple(answer.completions.values))
    if kind == "word_sequence":
        return GivenAnswer(kind, values=tuple(answer.word_sequence.values))
    speech = answer.speech
    return GivenAnswer(
        kind,
        choice_index=answer.choice_index,
        text=answer.text,
        audio_ref=speech.audio_ref,
        transcript=speech.transcript,
        duration_ms=speech.duration_ms,
    )


def sitting_proto(sitting: SittingRecord, *, with_code: bool) -> pb.Sitting:
    """A sitting as a client sees it; `with_code`: its staff (a student is told only that it has a code)."""
    return pb.Sitting(
        sitting_id=sitting.sitting_id,
        class_id=sitting.class_id,
        title=sitting.title,
        blueprint_version=sitting.blueprint_version,
        scope=pb.SessionScope.Value(sitting.scope),
        section=item_pb2.Section.Value(sitting.section) if sitting.section else item_pb2.SECTION_UNSPECIFIED,
        open_time=timestamp(sitting.opens_ms),
        close_time=timestamp(sitting.closes_ms),
        access_code=sitting.access_code if with_code else "",
        has_access_code=bool(sitting.access_code),
        created_by=sitting.created_by,
        create_time=timestamp(sitting.create_ms),
        update_time=timestamp(sitting.update_ms),
        etag=str(sitting.revision),
    )


def accommodation_proto(
    student_id: str, accommodation: Accommodation, record: AccommodationRecord | None = None
) -> pb.Accommodation:
    return pb.Accommodation(
        student_id=student_id,
        extra_time_multiplier=accommodation.time_multiplier,
        break_seconds=accommodation.break_seconds,
        reason=record.reason if record is not None else "",
        set_by=record.set_by if record is not None else "",
        update_time=timestamp(record.update_ms if record is not None else None),
    )


def audit_proto(entry: AuditRecord) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        audit_id=entry.audit_id,
        time=timestamp(entry.time_ms),
        actor_id=entry.actor,
        actor_role=entry.actor_role,
        action=entry.action,
        target_type=entry.target_type,
        target_id=entry.target,
        student_id=entry.student_id or "",
        reason=entry.reason,
        detail_json=json.dumps(entry.detail, sort_keys=True),
    )


def sitting_view(sitting_id: str, seats: list[Seat], *, now_ms: int, full: bool) -> pb.SittingView:
    """Seats as a proctor sees them at `now_ms` (the time left computed then, frozen for a paused student)."""
    view = pb.SittingView(sitting_id=sitting_id, view_time=timestamp(now_ms), full=full)
    for seat in seats:
        entry = pb.Seat(
            student_id=seat.student_id,
            display_name=seat.display_name,
            state=pb.SeatState.Value(seat_state(seat)),
            session_id=seat.session_id or "",
            section=item_pb2.Section.Value(seat.section) if seat.section else item_pb2.SECTION_UNSPECIFIED,
            stage=pb.ModuleStage.Value(seat.stage) if seat.stage else pb.MODULE_STAGE_UNSPECIFIED,
            module_sequence=seat.module_sequence,
            answered_count=seat.answered,
            item_count=seat.items,
            focus_lost_count=seat.focus_lost,
        )
        if seat.module_open:
            left = remaining_ms(deadline_ms=seat.deadline_ms, now_ms=now_ms, paused_ms=seat.paused_ms)
            entry.remaining_seconds = left // 1000
            entry.deadline.CopyFrom(timestamp(seat.deadline_ms))
        if seat.last_activity_ms:
            entry.last_activity_time.CopyFrom(timestamp(seat.last_activity_ms))
        view.seats.append(entry)
    return view
