"""A Listening question in Chromium: the prompt audio, fetched through its signed link, plays once, then the
question appears; there is no way to play it again."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.web.conftest import check_page
from tests.web.test_student_exam import start_practice


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
