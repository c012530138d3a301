"""A whole test in Chromium on the short blueprint: every task type taken, a module's clock run out, the spoken
answers recorded and rated from the queue (played), and the final report with bands, ranges, CEFR and the total."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.web.conftest import check_page, create_student
from tests.web.test_listening import hear_the_recording, play_faster
from tests.web.test_speaking import record_the_answer
from tests.web.test_staff import new_account, rate_the_queue, sign_out
from tests.web.test_student_exam import SAVED, answer_current, sign_in
from tests.web.test_writing import POST, build_the_sentence, write_the_response

# The short form of the whole test (session_service/blueprints); one rating makes a rated response final.
SESSION_ENV = {"SESSION_BLUEPRINT": "toefl2026-short-v1", "SESSION_SECOND_RATING_SHARE": "0"}
MICROPHONE_SAYS = "I would choose the quiet library, because I can think clearly there."
# The long talks and conversations, and the speaking prompts, play this much faster (the first recording at its own
# pace).
LISTENING_SPEED = 8.0


def take_the_question(page: Page, *, first_recording: bool) -> str:
    """Answers the question on screen as its task needs; returns what kind it was."""
    if page.get_by_label("Word bank").count() > 0:
        build_the_sentence(page)
        return "sentence"
    if page.get_by_label("Your response").count() > 0:
        write_the_response(page, POST)
        return "text"
    if page.get_by_role("button", name=re.compile("^(Play the prompt|Start recording|Start preparing)$")).count():
        # The prompt as fast as the talks (test_speaking hears one at its own pace); the response window is the
        # item's, kept: the recording is what is checked.
        if page.get_by_role("button", name="Play the prompt").count() > 0:
            play_faster(page, LISTENING_SPEED)
        record_the_answer(page)
        return "speech"
    if page.get_by_role("button", name="Play the recording").count() > 0:
        hear_the_recording(page, speed=1.0 if first_recording else LISTENING_SPEED, check=first_recording)
        answer_current(page)
        return "listening"
    return answer_current(page)


def take_the_part(page: Page, section: str, part: int, kinds: list[str]) -> None:
    """Every question of the part answered in turn, then the part finished."""
    expect(page.get_by_text(re.compile(rf"^{section}, part {part}: question 1 of"))).to_be_visible()
    while True:
        kinds.append(take_the_question(page, first_recording="listening" not in kinds))
        if page.get_by_role("button", name="Finish this part").count() > 0:
            page.get_by_role("button", name="Finish this part").click()
            return
        page.get_by_role("button", name="Next").click()


def test_a_student_takes_the_whole_test_and_reads_the_final_report(stack: Stack, page: Page) -> None:
    assert stack.gateway is not None
    base = stack.gateway.url
    student = create_student(stack)
    sign_in(page, base, student.username)
    page.get_by_role("button", name="Full test").click()
    page.on("dialog", lambda dialog: dialog.accept())
    kinds: list[str] = []

    take_the_part(page, "Reading", 1, kinds)
    # The second Reading part lasts 25 s: one answer, then its clock runs out and the client moves on by itself.
    expect(page.get_by_text(re.compile(r"^Reading, part 2: question 1 of"))).to_be_visible()
    kinds.append(answer_current(page))
    expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Listening, part 3: question 1 of"))).to_be_visible(timeout=90_000)

    take_the_part(page, "Listening", 3, kinds)
    take_the_part(page, "Listening", 4, kinds)
    take_the_part(page, "Writing", 5, kinds)
    take_the_part(page, "Speaking", 6, kinds)
    expect(page.get_by_role("heading", name="Score report")).to_be_visible()
    expect(page.get_by_text("These scores are provisional")).to_be_visible()
    assert {"complete-the-words", "choice", "listening", "sentence", "text", "speech"} <= set(kinds), kinds
    assert kinds.count("speech") == 2 and kinds.count("text") == 2, kinds
    sign_out(page)

    # The email, the post and both spoken answers, rated from the queue; the recordings are played.
    rater = new_account(stack, "RATER")
    sign_in(page, base, rater["username"], lands_on="Rating queue")
    assert rate_the_queue(page, essay=POST) == 4
    check_page(page, "rating-queue-empty")
    sign_out(page)

    sign_in(page, base, student.username)
    page.get_by_role("link", name=re.compile("Full test.*score report")).click()
    expect(page.get_by_text("These scores are final.")).to_be_visible()
    band = r"[1-6]\.[05]"
    # In the order the test took them.
    assert page.get_by_role("rowheader").all_inner_texts() == ["Reading", "Listening", "Writing", "Speaking"]
    for section in ("Reading", "Listening", "Writing", "Speaking"):
        row = page.get_by_role("row", name=re.compile(f"^{section}"))
        expect(row).to_have_text(re.compile(rf"{section}\s*{band}\s*{band} to {band}\s*[ABC][12]\s*final"))
    total = r"on the former 0-120 scale about \d+ \(between \d+ and \d+\)"
    expect(page.get_by_text(re.compile(r"^Overall band"))).to_have_text(
        re.compile(rf"^Overall band {band} \(CEFR [ABC][12]\); {total}\.$")
    )
    check_page(page, "score-report-final")
