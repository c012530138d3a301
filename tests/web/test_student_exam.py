"""A student in Chromium: sign in, take a Reading section, reload mid-module, answer offline, read the report;
another device resumes at the same question."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, Playwright, expect
from toefl.session.v1 import session_service_pb2 as pb

from launcher.stack import Stack
from tests.support.exam import PASSWORD
from tests.web.conftest import check_page, create_student, open_browser

SAVED = "All answers saved"
OFFLINE = "Offline: answers kept here"
# The client sends its batch of events every 5 s.
BATCH_SECONDS = 5


def sign_in(page: Page, base: str, username: str, *, check: bool = False, lands_on: str = "Your tests") -> None:
    """Signs in through the page; `lands_on` is the heading of the first page the role sees."""
    page.goto(base + "/")
    if check:
        check_page(page, "sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=lands_on)).to_be_visible()


def start_practice(stack: Stack, page: Page, section: str, student: pb.User | None = None) -> str:
    """A student (a new one unless given) signs in and starts a section's practice; returns the session's id."""
    assert stack.gateway is not None
    who = student if student is not None else create_student(stack)
    sign_in(page, stack.gateway.url, who.username)
    page.get_by_role("button", name=f"{section} practice").click()
    expect(page.get_by_text(re.compile(rf"^{section}, part 1: question 1 of \d+"))).to_be_visible()
    return page.url.rsplit("/", 1)[-1]


def question_number(page: Page) -> tuple[int, int]:
    text = page.get_by_text(re.compile(r"question \d+ of \d+")).inner_text()
    found = re.search(r"question (\d+) of (\d+)", text)
    assert found is not None, text
    return int(found.group(1)), int(found.group(2))


def answer_current(page: Page) -> str:
    """Answers the item on screen as a student would; returns what kind of item it was."""
    radios = page.get_by_role("radio")
    if radios.count() > 0:
        radios.nth(0).check()
        return "choice"
    slots = page.get_by_label(re.compile("^Missing letters"))
    if slots.count() > 0:
        for index in range(slots.count()):
            slot = slots.nth(index)
            width = int(slot.get_attribute("maxlength") or "1")
            slot.fill("e" * width)
        # Leaving the last slot saves the paragraph's letters.
        slots.nth(slots.count() - 1).blur()
        return "complete-the-words"
    raise AssertionError(f"no answer control on the page: {page.inner_text('main')[:500]}")


def expect_answer_shown(page: Page, kind: str) -> None:
    """The answer answer_current gave, shown again on the question on screen."""
    if kind == "choice":
        expect(page.get_by_role("radio").nth(0)).to_be_checked()
    else:
        expect(page.get_by_label(re.compile("^Missing letters")).nth(0)).not_to_have_value("")


def stored_responses(database: Path, session_id: str) -> list[tuple[str, str, int]]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(
            "SELECT item_id, request_id, revision FROM responses WHERE session_id = ?", (session_id,)
        ).fetchall()
    finally:
        conn.close()


def events_of(stack: Stack, session_id: str) -> list[str]:
    """The session's event types in the order they arrived (read-only)."""
    conn = sqlite3.connect(f"file:{stack.user_db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT event_type FROM events WHERE session_id = ? ORDER BY event_id", (session_id,))
        return [event_type for (event_type,) in rows]
    finally:
        conn.close()


def test_a_student_takes_a_reading_section(stack: Stack, context: BrowserContext, page: Page) -> None:
    assert stack.gateway is not None
    student = create_student(stack)
    sign_in(page, stack.gateway.url, student.username, check=True)
    check_page(page, "home")
    page.get_by_role("button", name="Reading practice").click()
    page.wait_for_url(re.compile(r"/exam/ses-"))
    session_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_text(re.compile(r"question 1 of \d+"))).to_be_visible()

    first_kind = answer_current(page)
    expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
    check_page(page, "exam-reading")

    # A reload lands on the same question with the answer still there.
    page.reload()
    expect(page.get_by_text(re.compile(r"question 1 of \d+"))).to_be_visible()
    expect_answer_shown(page, first_kind)

    # Five multiple-choice answers given offline: kept in the browser, then sent once each when back online.
    context.set_offline(True)
    offline_positions: list[int] = []
    while len(offline_positions) < 5:
        page.get_by_role("button", name="Next").click()
        if page.get_by_role("radio").count() == 0:
            continue
        answer_current(page)
        offline_positions.append(question_number(page)[0])
    expect(page.get_by_role("status").filter(has_text=OFFLINE)).to_be_visible()
    check_page(page, "exam-offline")
    context.set_offline(False)
    expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()

    rows = stored_responses(stack.user_db, session_id)
    request_ids = [request_id for _, request_id, _ in rows]
    assert len(request_ids) == len(set(request_ids))
    by_item: dict[str, list[int]] = {}
    for item_id, _, revision in rows:
        by_item.setdefault(item_id, []).append(revision)
    # The first item (Complete the Words saves at each slot left) and the five offline ones, once each.
    assert len(by_item) == 6, by_item
    assert sorted(len(revisions) for revisions in by_item.values())[:5] == [1, 1, 1, 1, 1], by_item

    # The rest of the module, then the second module, then the report.
    page.on("dialog", lambda dialog: dialog.accept())
    for part in (1, 2):
        expect(page.get_by_text(re.compile(rf"part {part}: question"))).to_be_visible()
        while page.get_by_role("button", name="Finish this part").count() == 0:
            page.get_by_role("button", name="Next").click()
        page.get_by_role("button", name="Finish this part").click()
    expect(page.get_by_role("heading", name="Score report")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("^Reading"))).to_be_visible()
    check_page(page, "score-report")


def test_another_device_resumes_at_the_same_question_with_every_answer(
    stack: Stack, page: Page, playwright: Playwright, tmp_path: Path
) -> None:
    """The first device reports each question the student moves to in the event log; a second one, with no storage
    of its own, opens the test at that question with the answers saved from the first."""
    assert stack.gateway is not None
    student = create_student(stack)
    session_id = start_practice(stack, page, "Reading", student)
    kinds: list[str] = []
    for number in (1, 2, 3):
        expect(page.get_by_text(re.compile(rf"question {number} of \d+"))).to_be_visible()
        kinds.append(answer_current(page))
        page.get_by_role("button", name="Next").click()
    expect(page.get_by_text(re.compile(r"question 4 of \d+"))).to_be_visible()
    expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
    # The move to question 4 goes with the next batch of events.
    deadline = time.monotonic() + 4 * BATCH_SECONDS
    while time.monotonic() < deadline and events_of(stack, session_id).count("EVENT_TYPE_ITEM_VIEWED") < 4:
        time.sleep(0.5)
    assert events_of(stack, session_id).count("EVENT_TYPE_ITEM_VIEWED") == 4

    other = open_browser(playwright, tmp_path / "other-device")
    try:
        second = other.pages[0] if other.pages else other.new_page()
        second.set_default_timeout(20_000)
        sign_in(second, stack.gateway.url, student.username)
        second.get_by_role("link", name=re.compile("Reading practice.*continue")).click()
        expect(second.get_by_text(re.compile(r"question 4 of \d+"))).to_be_visible()
        for number in (3, 2, 1):
            second.get_by_role("button", name="Previous").click()
            expect(second.get_by_text(re.compile(rf"question {number} of \d+"))).to_be_visible()
            expect_answer_shown(second, kinds[number - 1])
    finally:
        other.close()
