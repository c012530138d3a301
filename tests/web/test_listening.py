"""A Listening question in Chromium: the prompt audio, fetched through its signed link, plays once, then the
question appears; there is no way to play it again, on this device or another."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page, Playwright, expect

from launcher.stack import Stack
from tests.web.conftest import check_page, create_student, open_browser
from tests.web.test_student_exam import BATCH_SECONDS, events_of, sign_in, start_practice


def hear_the_recording(page: Page, *, speed: float = 1.0, check: bool = False) -> None:
    """Plays the question's recording (at `speed`, see play_faster) to its end; the media element reports it."""
    play = page.get_by_role("button", name="Play the recording")
    expect(play).to_be_visible()
    if check:
        check_page(page, "exam-listening")
    play_faster(page, speed)
    play.click()
    heard_to_the_end(page)


def play_faster(page: Page, speed: float) -> None:
    """The recording on screen plays `speed` times faster, as only a test may: the whole-test run and the keyboard
    pass hear every Listening task type within their minutes."""
    if speed == 1.0:
        return
    # Both rates: loading the source resets playbackRate to defaultPlaybackRate.
    page.evaluate(
        "speed => { const a = document.querySelector('audio');"
        " a.defaultPlaybackRate = speed; a.playbackRate = speed; }",
        speed,
    )


def heard_to_the_end(page: Page) -> None:
    """The questions show once the recording ended, which the media element itself reports; no second play."""
    expect(page.get_by_role("radio").first).to_be_visible(timeout=60_000)
    played = page.evaluate(
        "() => { const a = document.querySelector('audio');"
        " return a ? [a.ended, a.played.length, a.duration] : null }"
    )
    assert played is not None and played[0] is True and played[1] >= 1 and played[2] > 0.5, played
    expect(page.get_by_role("button", name="Heard: it plays once")).to_be_disabled()
    expect(page.get_by_text("The audio could not be played")).to_have_count(0)


def test_the_recording_plays_once_then_the_question_shows(stack: Stack, page: Page) -> None:
    start_practice(stack, page, "Listening")
    hear_the_recording(page, check=True)


def test_another_device_does_not_offer_a_recording_already_played(
    stack: Stack, page: Page, playwright: Playwright, tmp_path: Path
) -> None:
    """The audio plays once per test, not once per browser: played on one device and left unanswered, the question
    opens on a second one (a profile with no storage of its own) with the questions and no way to play it."""
    assert stack.gateway is not None
    student = create_student(stack)
    session_id = start_practice(stack, page, "Listening", student)
    hear_the_recording(page, speed=8.0)
    # The play goes to the server with the next batch of events.
    deadline = time.monotonic() + 4 * BATCH_SECONDS
    while time.monotonic() < deadline and "EVENT_TYPE_AUDIO_PLAYED" not in events_of(stack, session_id):
        time.sleep(0.5)
    assert events_of(stack, session_id).count("EVENT_TYPE_AUDIO_PLAYED") == 1

    other = open_browser(playwright, tmp_path / "other-device")
    try:
        second = other.pages[0] if other.pages else other.new_page()
        second.set_default_timeout(20_000)
        sign_in(second, stack.gateway.url, student.username)
        second.get_by_role("link", name=re.compile("Listening practice.*continue")).click()
        expect(second.get_by_text(re.compile(r"Listening, part 1: question 1 of \d+"))).to_be_visible()
        expect(second.get_by_text("The audio for this question has already been played.")).to_be_visible()
        expect(second.get_by_role("button", name="Play the recording")).to_have_count(0)
        expect(second.get_by_role("radio").first).to_be_visible()
        check_page(second, "exam-listening-played-elsewhere")
    finally:
        other.close()
