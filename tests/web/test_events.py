"""Focus lost and regained during the exam reach the session's event log, in batches, from Chromium."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.web.conftest import create_student
from tests.web.test_student_exam import BATCH_SECONDS, events_of, sign_in


def test_focus_lost_and_regained_are_logged(stack: Stack, page: Page) -> None:
    assert stack.gateway is not None
    student = create_student(stack)
    sign_in(page, stack.gateway.url, student.username)
    page.get_by_role("button", name="Reading practice").click()
    expect(page.get_by_text(re.compile(r"question 1 of"))).to_be_visible()
    session_id = page.url.rsplit("/", 1)[-1]
    # As the browser reports a student switching to another window and back.
    page.evaluate("() => { window.dispatchEvent(new Event('blur')); window.dispatchEvent(new Event('focus')); }")
    deadline = time.monotonic() + 4 * BATCH_SECONDS
    while time.monotonic() < deadline and len(focus_events(stack, session_id)) < 2:
        time.sleep(0.5)
    assert focus_events(stack, session_id) == ["EVENT_TYPE_FOCUS_LOST", "EVENT_TYPE_FOCUS_REGAINED"]


def focus_events(stack: Stack, session_id: str) -> list[str]:
    # The same batches carry each question the student moves to (EVENT_TYPE_ITEM_VIEWED).
    return [event for event in events_of(stack, session_id) if event.startswith("EVENT_TYPE_FOCUS_")]
