"""A section's score computed before the advance or the finish that closes it (writer.closing_score): stored as
computed when nothing moved since its read, computed again in the write's transaction when an answer, a score
version or a module came after it; SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select, update
from toefl.item.v1 import item_pb2

from session_service import writer
from session_service.domain.scores import ClosingScore
from session_service.domain.states import STAGE_LINEAR, STATUS_CLOSED
from session_service.storage import answers, scores, sessions
from session_service.storage.engine import Database
from session_service.storage.models import ExamSession, Module, RatingTask
from tests.session_service.test_advance_groups import SCORER, T0, seat
from tests.session_service.test_section_inputs import WRITING_ITEMS, answer, module, pinned

RATED = tuple(item for item in WRITING_ITEMS if item[0] != "itm-bas")


def in_writing(db: Database) -> None:
    """ses-0 past its Reading router, in a Writing module of two rated items whose email is answered."""
    seat(db, 1)
    with db.unit_of_work() as tx:
        tx.execute(update(Module).where(Module.module_id == "mod-0-1").values(status=STATUS_CLOSED))
        items = tuple(pinned(*item) for item in RATED)
        sessions.add_module(
            tx, session_id="ses-0", module=module("mod-w", 2, "SECTION_WRITING", STAGE_LINEAR, items)
        )
        tx.execute(update(ExamSession).where(ExamSession.session_id == "ses-0").values(current_module_id="mod-w"))
        answers.insert_response(tx, record=answer("mod-w", "itm-email", 1, "email"))


def leave_writing(db: Database, prepared: ClosingScore | None) -> writer.Advanced | Exception:
    job = writer.Advance(
        session_id="ses-0",
        request_id="adv-1",
        from_module_id="mod-w",
        now_ms=T0 + 5_000,
        router_score=None,
        next_module=None,
        closing_score=prepared,
    )
    return writer.advance_group(db, jobs=[job], scorer=SCORER)[0]


def prepare(db: Database, *, finishing: bool = False) -> ClosingScore | None:
    return writer.closing_score(db, session_id="ses-0", finishing=finishing, scorer=SCORER, now_ms=T0 + 5_000)


def rated_items(db: Database) -> set[str]:
    with db.read_transaction() as conn:
        return set(conn.execute(select(RatingTask.item_id).where(RatingTask.session_id == "ses-0")).scalars())


def test_a_score_computed_before_the_close_is_stored_as_computed(db: Database) -> None:
    in_writing(db)
    prepared = prepare(db)
    assert prepared is not None and prepared.closing_modules == {"mod-w"} and prepared.base_version == 0

    assert isinstance(leave_writing(db, prepared), writer.Advanced)

    stored = scores.latest_version(db, session_id="ses-0")
    assert stored is not None and stored.score_id == prepared.scores.version.score_id
    (writing,) = stored.sections
    assert writing.section == "SECTION_WRITING" and writing.items_awaiting_rating == 1
    assert rated_items(db) == {"itm-email"}


def test_an_answer_after_the_read_has_the_close_score_it_again(db: Database) -> None:
    in_writing(db)
    prepared = prepare(db)
    assert prepared is not None
    with db.unit_of_work() as tx:
        answers.insert_response(tx, record=answer("mod-w", "itm-disc", 1, "discussion"))

    assert isinstance(leave_writing(db, prepared), writer.Advanced)

    stored = scores.latest_version(db, session_id="ses-0")
    assert stored is not None and stored.score_id != prepared.scores.version.score_id
    (writing,) = stored.sections
    assert writing.items_awaiting_rating == 2
    assert rated_items(db) == {"itm-email", "itm-disc"}


def scored_meanwhile(db: Database) -> ClosingScore:
    """The Writing score computed before the close, and a version stored after that read (by another process,
    or an expiry), which makes it stale."""
    in_writing(db)
    prepared = prepare(db)
    assert prepared is not None
    with db.unit_of_work() as tx:
        scores.insert_versions(tx, versions=[prepared.scores.version])
    return prepared


def test_a_version_stored_after_the_read_is_kept_over_the_one_computed_before_it(db: Database) -> None:
    prepared = scored_meanwhile(db)

    assert isinstance(leave_writing(db, prepared), writer.Advanced)

    # The section had its score already: the close adds no version and no second set of rating tasks.
    versions = scores.list_versions(db, session_id="ses-0")
    assert [v.version for v in versions] == [1]
    assert rated_items(db) == set()


def test_no_score_is_computed_beforehand_for_a_section_scored_already(db: Database) -> None:
    scored_meanwhile(db)

    assert prepare(db) is None


def test_a_finish_stores_the_score_computed_before_it(db: Database) -> None:
    in_writing(db)
    prepared = prepare(db, finishing=True)
    assert prepared is not None

    writer.finish(db, session_id="ses-0", now_ms=T0 + 5_000, scorer=SCORER, prepared=prepared)

    stored = scores.latest_version(db, session_id="ses-0")
    assert stored is not None and stored.score_id == prepared.scores.version.score_id
    # (The Reading router it also closes holds no item here, so gives no figures.)
    assert [s.section for s in stored.sections] == ["SECTION_WRITING"]


def test_a_module_opened_after_the_read_has_the_finish_score_it_again(db: Database) -> None:
    in_writing(db)
    prepared = prepare(db, finishing=True)
    assert prepared is not None
    # An advance into Speaking (a second click) wrote between the finish's read and its write.
    with db.unit_of_work() as tx:
        tx.execute(update(Module).where(Module.module_id == "mod-w").values(status=STATUS_CLOSED))
        items = (pinned("itm-rep", "TASK_TYPE_LISTEN_AND_REPEAT", item_pb2.TASK_TYPE_LISTEN_AND_REPEAT),)
        sessions.add_module(
            tx, session_id="ses-0", module=module("mod-s", 3, "SECTION_SPEAKING", STAGE_LINEAR, items)
        )

    writer.finish(db, session_id="ses-0", now_ms=T0 + 5_000, scorer=SCORER, prepared=prepared)

    stored = scores.latest_version(db, session_id="ses-0")
    assert stored is not None and stored.score_id != prepared.scores.version.score_id
    assert [s.section for s in stored.sections] == ["SECTION_SPEAKING", "SECTION_WRITING"]
