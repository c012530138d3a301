"""Access tokens that lapse during the test: the client renews them with the refresh token; the student notices
nothing."""

from __future__ import annotations

import re
import sqlite3
import time

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.web.conftest import create_student
from tests.web.test_student_exam import SAVED, answer_current, start_practice

# Access tokens live 4 s: a few of them lapse while the student answers.
SESSION_ENV = {"SESSION_ACCESS_TOKEN_TTL_SECONDS": "4"}


def refresh_tokens_of(stack: Stack, user_id: str) -> int:
    conn = sqlite3.connect(f"file:{stack.user_db}?mode=ro", uri=True, timeout=30)
    try:
        (count,) = conn.execute(
            "SELECT count(*) FROM refresh_tokens r JOIN sign_ins s ON s.sign_in_id = r.sign_in_id"
            " WHERE s.user_id = ?",
            (user_id,),
        ).fetchone()
    finally:
        conn.close()
    return int(count)


def test_a_lapsed_access_token_is_renewed_without_the_student_noticing(stack: Stack, page: Page) -> None:
    student = create_student(stack)
    start_practice(stack, page, "Reading", student)
    for turn in range(3):
        # Longer than an access token lives.
        time.sleep(5)
        answer_current(page)
        expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
        page.get_by_role("button", name="Next").click()
        expect(page.get_by_text(re.compile(rf"question {turn + 2} of"))).to_be_visible()
    # A reload with a lapsed token: still signed in, still in the exam.
    time.sleep(5)
    page.reload()
    expect(page.get_by_text(re.compile(r"question 4 of"))).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    # The password was typed once; each renewal spent one refresh token and got the next.
    assert refresh_tokens_of(stack, student.user_id) >= 4
