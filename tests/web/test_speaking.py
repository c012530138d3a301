"""A Speaking question in Chromium with a fake microphone: the prompt plays once, the answer is recorded with its
countdown, uploaded and saved as the question's answer; the stored recording is real audio."""

from __future__ import annotations

import json
import re
import sqlite3

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.web.conftest import check_page
from tests.web.test_student_exam import SAVED, start_practice

MICROPHONE_SAYS = "The library opens at nine on weekdays and at ten on weekends."


def record_the_answer(page: Page, *, check: bool = False) -> None:
    """The prompt played, the answer recorded through its countdown, uploaded, saved as the question's answer."""
    start_recording(page, check=check)
    answer_recorded(page, check=check)


def start_recording(page: Page, *, check: bool = False) -> None:
    """The prompt played (if the question has one), then recording started, after preparation if any."""
    play = page.get_by_role("button", name="Play the prompt")
    if play.count() > 0:
        play.click()
    start = page.get_by_role("button", name=re.compile("^Start (preparing|recording)$"))
    expect(start).to_be_enabled(timeout=60_000)
    if check:
        check_page(page, "exam-speaking")
    start.click()


def answer_recorded(page: Page, *, check: bool = False) -> None:
    """Once recording started: its countdown shows, then the answer is uploaded and saved."""
    expect(page.get_by_text(re.compile(r"^Recording: \d+:\d\d left\.$"))).to_be_visible(timeout=60_000)
    if check:
        check_page(page, "exam-recording")
    # The response window runs out by itself; the recording is sent and becomes the answer.
    expect(page.get_by_text("Your spoken answer is saved.")).to_be_visible(timeout=90_000)
    expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()


def test_a_spoken_answer_is_recorded_uploaded_and_saved(stack: Stack, page: Page) -> None:
    session_id = start_practice(stack, page, "Speaking")
    record_the_answer(page, check=True)

    check_one_recording_named_by_the_answer(stack, session_id)


def check_one_recording_named_by_the_answer(stack: Stack, session_id: str) -> None:
    """One recording stored for the session, real audio of the window's length, and the answer names it."""
    conn = sqlite3.connect(f"file:{stack.user_db}?mode=ro", uri=True, timeout=30)
    try:
        recordings = conn.execute(
            "SELECT recording_id, content_type, duration_ms, byte_size FROM recordings WHERE session_id = ?",
            (session_id,),
        ).fetchall()
        answers = [
            json.loads(a)
            for (a,) in conn.execute("SELECT answer_json FROM responses WHERE session_id = ?", (session_id,))
        ]
    finally:
        conn.close()
    ((recording_id, content_type, duration_ms, byte_size),) = recordings
    # What Chromium's MediaRecorder makes, checked by the service to decode, and of the window's length.
    assert content_type.startswith("audio/webm") and duration_ms > 1000 and byte_size > 1000, recordings
    assert [a["speech"]["audioRef"] for a in answers] == [recording_id], answers


def test_a_recording_not_yet_sent_survives_a_reload(stack: Stack, page: Page) -> None:
    """The network drops as the recording stops: the page is reloaded before any upload got through, and the
    recording, kept in the browser (IndexedDB), is sent from there and saved as the answer."""
    session_id = start_practice(stack, page, "Speaking")
    uploads = re.compile(r"/api/sessions/[^/]+/recordings/")
    # The uploads fail as on a dropped network (the rest of the page, the exam's clock included, keeps working).
    page.route(uploads, lambda route: route.abort("internetdisconnected"))
    start_recording(page)
    expect(page.get_by_text(re.compile(r"^Recording: \d+:\d\d left\.$"))).to_be_visible(timeout=60_000)
    # The first upload is tried only once the recording is kept.
    page.wait_for_event("requestfailed", lambda request: uploads.search(request.url) is not None, timeout=90_000)
    expect(page.get_by_text("Sending your recording…")).to_be_visible()
    page.unroute(uploads)
    page.reload()
    expect(page.get_by_text("Your spoken answer is saved.")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
    check_one_recording_named_by_the_answer(stack, session_id)


def test_leaving_the_question_while_recording_keeps_what_was_said(stack: Stack, page: Page) -> None:
    """Next pressed during the response window: the recording ends there, is uploaded and saved as the answer."""
    session_id = start_practice(stack, page, "Speaking")
    start_recording(page)
    countdown = page.get_by_text(re.compile(r"^Recording: \d+:\d\d left\.$"))
    expect(countdown).to_be_visible(timeout=60_000)
    # Two ticks of the countdown: more than a second said.
    for _ in range(2):
        expect(page.get_by_text(countdown.inner_text(), exact=True)).to_have_count(0)
    with page.expect_response(lambda reply: "/responses/" in reply.url and reply.request.method == "PUT"):
        page.get_by_role("button", name="Next").click()
    expect(page.get_by_text(re.compile(r"Speaking, part 1: question 2 of"))).to_be_visible()
    expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
    page.get_by_role("button", name="Previous").click()
    expect(page.get_by_text("Your spoken answer is saved.")).to_be_visible()
    check_one_recording_named_by_the_answer(stack, session_id)
