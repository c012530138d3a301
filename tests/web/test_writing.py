"""A Writing section in Chromium: Build a Sentence by picking words in order, an email and a discussion post with a
live word count, every answer saved; the report waits for the raters."""

from __future__ import annotations

import sqlite3

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.web.conftest import check_page
from tests.web.test_student_exam import SAVED, start_practice

POST = "Online classes save time, but I think students learn more when they meet their teachers in person."


def build_the_sentence(page: Page) -> None:
    """Every word of the bank picked, in the bank's order."""
    bank = page.get_by_label("Word bank")
    while bank.get_by_role("button").count() > 0:
        bank.get_by_role("button").first.click()
    expect(page.get_by_label("Your sentence").get_by_role("button").first).to_be_visible()


def write_the_response(page: Page, text: str, *, check: bool = False) -> None:
    """The email or the post typed, its word count live, then left (which saves it)."""
    box = page.get_by_label("Your response")
    box.fill(text)
    expect(page.get_by_text(f"{len(text.split())} words")).to_be_visible()
    if check:
        check_page(page, "exam-writing")
    box.blur()


def test_a_student_writes_a_writing_section(stack: Stack, page: Page) -> None:
    session_id = start_practice(stack, page, "Writing")
    page.on("dialog", lambda dialog: dialog.accept())
    kinds: list[str] = []
    # The email's points to cover, one "- " line each in its prompt, shown as a list.
    points = 0
    while True:
        if page.get_by_label("Word bank").count() > 0:
            build_the_sentence(page)
            kinds.append("sentence")
        else:
            points = max(points, page.get_by_role("listitem").count())
            write_the_response(page, POST, check="text" not in kinds)
            kinds.append("text")
        expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
        if page.get_by_role("button", name="Finish this part").count() > 0:
            page.get_by_role("button", name="Finish this part").click()
            break
        page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Score report")).to_be_visible()
    expect(page.get_by_text("These scores are provisional")).to_be_visible()
    assert "sentence" in kinds and kinds.count("text") >= 2, kinds
    assert points >= 2
    # Every question answered once at least, the texts as typed.
    conn = sqlite3.connect(f"file:{stack.user_db}?mode=ro", uri=True, timeout=30)
    try:
        query = "SELECT item_id, answer_json FROM responses WHERE session_id = ?"
        rows = conn.execute(query, (session_id,)).fetchall()
    finally:
        conn.close()
    assert len({item_id for item_id, _ in rows}) == len(kinds)
    assert sum(POST in answer for _, answer in rows) >= 2
