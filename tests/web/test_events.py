"""Focus lost and regained during the exam reach the session's event log, in batches, from Chromium."""

from __future__ import annotations

import time

from playwright.sync_api import Page

from launcher.stack import Stack
from tests.web.test_student_exam import BATCH_SECONDS, events_of, start_practice


def test_focus_lost_and_regained_are_logged(stack: Stack, page: Page) -> None:
    session_id = start_practice(stack, page, "Reading")
    # As the browser reports a student switching to another window and back.
    page.evaluate("() => { window.dispatchEvent(new Event('blur')); window.dispatchEvent(new Event('focus')); }")
    deadline = time.monotonic() + 4 * BATCH_SECONDS
    while time.monotonic() < deadline and len(focus_events(stack, session_id)) < 2:
        time.sleep(0.5)
    assert focus_events(stack, session_id) == ["EVENT_TYPE_FOCUS_LOST", "EVENT_TYPE_FOCUS_REGAINED"]


def focus_events(stack: Stack, session_id: str) -> list[str]:
    # The same batches carry each question the student moves to (EVENT_TYPE_ITEM_VIEWED).
    return [event for event in events_of(stack, session_id) if event.startswith("EVENT_TYPE_FOCUS_")]
