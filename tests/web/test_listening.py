"""A Listening question in Chromium: the prompt audio, fetched through its signed link, plays once, then the
question appears; there is no way to play it again."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.web.conftest import check_page, create_student
from tests.web.test_student_exam import sign_in


def test_the_recording_plays_once_then_the_question_shows(stack: Stack, page: Page) -> None:
    assert stack.gateway is not None
    student = create_student(stack)
    sign_in(page, stack.gateway.url, student.username)
    page.get_by_role("button", name="Listening practice").click()
    expect(page.get_by_text(re.compile(r"Listening, part 1: question 1 of"))).to_be_visible()
    play = page.get_by_role("button", name="Play the recording")
    expect(play).to_be_visible()
    check_page(page, "exam-listening")
    play.click()
    # The media element itself reports that it played to the end (not just that the button changed).
    expect(page.get_by_role("radio").first).to_be_visible(timeout=60_000)
    played = page.evaluate(
        "() => { const a = document.querySelector('audio');"
        " return a ? [a.ended, a.played.length, a.duration] : null }"
    )
    assert played is not None and played[0] is True and played[1] >= 1 and played[2] > 0.5, played
    expect(page.get_by_role("button", name="Heard: it plays once")).to_be_disabled()
    expect(page.get_by_role("alert")).to_have_count(0)
