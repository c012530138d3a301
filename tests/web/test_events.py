"""Focus lost and regained during the exam reach the session's event log, in batches, from Chromium."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from playwright.sync_api import Page, Route

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


def test_a_batch_whose_reply_was_lost_is_sent_again_with_its_request_id_and_stored_once(
    stack: Stack, page: Page
) -> None:
    """The server stores the first batch and its reply never reaches the browser: the client sends the same batch
    again, with the same request id, and the server stores it once."""
    sent: list[dict[str, Any]] = []

    def lose_the_first_reply(route: Route) -> None:
        body = route.request.post_data_json
        assert isinstance(body, dict), body
        sent.append(body)
        if len(sent) == 1:
            route.fetch()  # the server gets the batch and stores it...
            route.abort("connectionreset")  # ...and the browser never hears back
        else:
            route.continue_()

    page.route("**/events:batchCreate", lose_the_first_reply)
    session_id = start_practice(stack, page, "Reading")
    deadline = time.monotonic() + 6 * BATCH_SECONDS
    while time.monotonic() < deadline and len(sent) < 2:
        page.wait_for_timeout(500)
    assert len(sent) >= 2, sent
    first, retry = sent[0], sent[1]
    assert first["requestId"] and retry["requestId"] == first["requestId"]
    assert retry["events"] == first["events"]
    viewed = [e for e in first["events"] if e["type"] == "EVENT_TYPE_ITEM_VIEWED"]
    assert len(viewed) == 1
    # The retry's reply got through: nothing of the batch waits in the browser's storage any more.
    page.wait_for_function(f"() => localStorage.getItem('toefl.events.{session_id}') === null", timeout=30_000)
    assert events_of(stack, session_id).count("EVENT_TYPE_ITEM_VIEWED") == 1
    stored = [batch for batch in batches_of(stack, session_id) if batch[0] == first["requestId"]]
    assert stored == [(first["requestId"], len(first["events"]))]


def batches_of(stack: Stack, session_id: str) -> list[tuple[str, int]]:
    """The request ids of the session's stored event batches and their sizes (read-only)."""
    conn = sqlite3.connect(f"file:{stack.user_db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT request_id, stored FROM event_batches WHERE session_id = ?", (session_id,))
        return [(request_id, stored) for request_id, stored in rows]
    finally:
        conn.close()
