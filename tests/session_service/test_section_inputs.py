"""What a section's score is computed from (scores.section_inputs): the named sections' own rows read alone give
what the whole session's read gives for them, final ratings included; SQLite and PostgreSQL."""

from __future__ import annotations

from toefl.item.v1 import item_pb2

from session_service.domain.scores import NewRatingTask
from session_service.domain.states import STAGE_LINEAR, STAGE_ROUTER, TASK_AWAITING, TASK_FINAL
from session_service.storage import answers, scores, sessions
from session_service.storage.answers import ResponseRecord
from session_service.storage.engine import Database
from session_service.storage.sessions import NewModule, PinnedItem
from tests.session_service.test_advance_groups import T0, seat

WRITING_ITEMS = (
    ("itm-bas", "TASK_TYPE_BUILD_A_SENTENCE", item_pb2.TASK_TYPE_BUILD_A_SENTENCE),
    ("itm-email", "TASK_TYPE_WRITE_AN_EMAIL", item_pb2.TASK_TYPE_WRITE_AN_EMAIL),
    ("itm-disc", "TASK_TYPE_ACADEMIC_DISCUSSION", item_pb2.TASK_TYPE_ACADEMIC_DISCUSSION),
)


def pinned(item_id: str, name: str, task_type: item_pb2.TaskType.ValueType) -> PinnedItem:
    body = item_pb2.Item(item_id=item_id, task_type=task_type).SerializeToString()
    return PinnedItem(item_id=item_id, revision=1, task_type=name, full_item=body)


def module(module_id: str, sequence: int, section: str, stage: str, items: tuple[PinnedItem, ...]) -> NewModule:
    return NewModule(
        module_id=module_id,
        sequence=sequence,
        plan_key=f"{section}-{stage}".lower(),
        section=section,
        stage=stage,
        seed=sequence,
        assembly_record=b"",
        start_ms=T0,
        deadline_ms=T0 + 600_000,
        items=items,
        passages=(),
    )


def answer(module_id: str, item_id: str, revision: int, text: str) -> ResponseRecord:
    return ResponseRecord(
        response_id=0,
        session_id="ses-0",
        module_id=module_id,
        item_id=item_id,
        revision=revision,
        answer_json=f'{{"text": "{text}"}}',
        request_id=f"req-{module_id}-{item_id}-{revision}",
        elapsed_ms=1_000,
        saved_ms=T0 + revision,
    )


def test_a_named_section_reads_what_the_whole_session_read_gives_it(db: Database) -> None:
    seat(db, 1)  # ses-0, its Reading router mod-0-1 open (no items)
    with db.unit_of_work() as tx:
        reading = (pinned("itm-ctw", "TASK_TYPE_COMPLETE_THE_WORDS", item_pb2.TASK_TYPE_COMPLETE_THE_WORDS),)
        sessions.add_module(
            tx, session_id="ses-0", module=module("mod-r", 2, "SECTION_READING", STAGE_ROUTER, reading)
        )
        writing = tuple(pinned(*item) for item in WRITING_ITEMS)
        sessions.add_module(
            tx, session_id="ses-0", module=module("mod-w", 3, "SECTION_WRITING", STAGE_LINEAR, writing)
        )
        answers.insert_response(tx, record=answer("mod-r", "itm-ctw", 1, "reading"))
        answers.insert_response(tx, record=answer("mod-w", "itm-bas", 1, "first"))
        latest_bas = answers.insert_response(tx, record=answer("mod-w", "itm-bas", 2, "second"))
        email = answers.insert_response(tx, record=answer("mod-w", "itm-email", 1, "email"))
        discussion = answers.insert_response(tx, record=answer("mod-w", "itm-disc", 1, "discussion"))
        tasks = [
            NewRatingTask(r.response_id, r.item_id, name, double_rated=False, submit_ms=r.saved_ms)
            for r, name in ((email, "TASK_TYPE_WRITE_AN_EMAIL"), (discussion, "TASK_TYPE_ACADEMIC_DISCUSSION"))
        ]
        scores.insert_rating_tasks(tx, session_id="ses-0", section="SECTION_WRITING", tasks=tasks, now_ms=T0)
        scores.update_rating_task(
            tx, response_id=email.response_id, state=TASK_FINAL, rule="single", final_score=4, final_ms=T0
        )
        scores.update_rating_task(
            tx, response_id=discussion.response_id, state=TASK_AWAITING, rule="", final_score=None, final_ms=None
        )

    with db.read_transaction() as conn:
        whole = scores.section_inputs(conn, session_id="ses-0")
        named = scores.section_inputs(conn, session_id="ses-0", sections=["SECTION_WRITING"])

    assert set(whole) == {"SECTION_READING", "SECTION_WRITING"}
    assert set(named) == {"SECTION_WRITING"}
    assert named["SECTION_WRITING"] == whole["SECTION_WRITING"]
    got = named["SECTION_WRITING"]
    assert [i.item_id for i in got.items] == [item_id for item_id, _, _ in WRITING_ITEMS]
    assert got.answers["itm-bas"].response_id == latest_bas.response_id
    assert set(got.answers) == {"itm-bas", "itm-email", "itm-disc"}
    # Only the final rating counts; the one still awaiting its rating is left out.
    assert got.final_ratings == {email.response_id: 4}
