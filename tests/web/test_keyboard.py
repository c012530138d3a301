"""Keyboard-only passes in Chromium: a module of each section taken with Tab, typing, Space and Enter alone; a
rater rates a response from the queue and an author reviews and activates an item the same way (arrow keys too,
where a radio group or a select takes them)."""

from __future__ import annotations

import re
import sqlite3
import uuid
from typing import Any

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.support.exam import PASSWORD
from tests.support.tokens import token
from tests.web.conftest import create_student
from tests.web.test_listening import heard_to_the_end, play_faster
from tests.web.test_speaking import answer_recorded
from tests.web.test_staff import api, finished_writing, new_account
from toefl_core.auth import Role

MAX_TABS = 60
# The short form of the whole test: every task type of a section in one module, few enough to hear and speak them
# all; the microphone (Chromium's fake one) says this.
SESSION_ENV = {"SESSION_BLUEPRINT": "toefl2026-short-v1"}
MICROPHONE_SAYS = "I would like to study biology, because living things fascinate me."


def focused(page: Page) -> str:
    """The focused element's accessible name as a test reads it (its label, text or aria-label)."""
    return str(
        page.evaluate(
            """() => { const e = document.activeElement; if (!e) return "";
            if (e.labels && e.labels.length) return e.labels[0].innerText.trim();
            return (e.getAttribute("aria-label") || e.innerText || e.value || "").trim(); }"""
        )
    )


def tab_to(page: Page, name: str | re.Pattern[str]) -> None:
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        text = focused(page)
        if (text == name) if isinstance(name, str) else name.search(text):
            return
    raise AssertionError(f"Tab never reached {name!r}; last focus: {focused(page)!r}")


def finished_or_next_by_keyboard(page: Page) -> bool:
    """Enter on Next, or on Finish this part at the part's last question (True then)."""
    last = page.get_by_role("button", name="Finish this part").count() > 0
    tab_to(page, "Finish this part" if last else "Next")
    page.keyboard.press("Enter")
    return last


def sign_in_by_keyboard(stack: Stack, page: Page, username: str, *, lands_on: str) -> None:
    """Signs in with Tab, typing and Enter alone; `lands_on` is the heading of the role's first page."""
    assert stack.gateway is not None
    page.goto(stack.gateway.url + "/")
    tab_to(page, "Username")
    page.keyboard.type(username)
    tab_to(page, "Password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=lands_on)).to_be_visible()


def start_by_keyboard(stack: Stack, page: Page, section: str) -> None:
    """A new student signs in and starts a section's practice with Tab, typing and Enter alone."""
    sign_in_by_keyboard(stack, page, create_student(stack).username, lands_on="Your tests")
    tab_to(page, f"{section} practice")
    page.keyboard.press("Enter")


def test_a_reading_module_by_keyboard_alone(stack: Stack, page: Page) -> None:
    start_by_keyboard(stack, page, "Reading")
    expect(page.get_by_text(re.compile(r"part 1: question 1 of"))).to_be_visible()
    page.on("dialog", lambda dialog: dialog.accept())

    while True:
        slots = page.get_by_label(re.compile("^Missing letters"))
        if slots.count() > 0:
            for index in range(slots.count()):
                tab_to(page, re.compile(rf"^Missing letters of word {index + 1},"))
                width = int(slots.nth(index).get_attribute("maxlength") or "1")
                page.keyboard.type("e" * width)
            expect(slots.nth(0)).to_have_value(re.compile("^e+$"))
        elif page.get_by_role("radio").count() > 0:
            choose_first_option(page)
        if finished_or_next_by_keyboard(page):
            break
    expect(page.get_by_text(re.compile(r"part 2: question 1 of"))).to_be_visible()


def test_a_writing_module_by_keyboard_alone(stack: Stack, page: Page) -> None:
    """Build a Sentence by Tab and Enter on the word bank, the email and the post typed, Finish by Enter."""
    start_by_keyboard(stack, page, "Writing")
    expect(page.get_by_text(re.compile(r"Writing, part 1: question 1 of"))).to_be_visible()
    page.on("dialog", lambda dialog: dialog.accept())
    while True:
        bank = page.get_by_label("Word bank")
        if bank.count() > 0:
            while bank.get_by_role("button").count() > 0:
                word = bank.get_by_role("button").first.inner_text()
                tab_to(page, word)
                page.keyboard.press("Enter")
            expect(page.get_by_label("Your sentence").get_by_role("button").first).to_be_visible()
        else:
            tab_to(page, "Your response")
            page.keyboard.type("I agree, because practice makes the ideas stick.")
            expect(page.get_by_text("8 words")).to_be_visible()
        if finished_or_next_by_keyboard(page):
            break
    expect(page.get_by_role("heading", name="Score report")).to_be_visible()


def choose_first_option(page: Page) -> None:
    tab_to(page, page.get_by_role("radio").first.evaluate("e => e.labels[0].innerText.trim()"))
    page.keyboard.press("Space")
    expect(page.get_by_role("radio").first).to_be_checked()


def test_a_listening_module_by_keyboard_alone(stack: Stack, page: Page) -> None:
    """Each recording started by Enter and heard to its end (the long ones faster), the first option chosen by
    Space, Next and Finish by Enter."""
    start_by_keyboard(stack, page, "Listening")
    expect(page.get_by_text(re.compile(r"Listening, part 1: question 1 of"))).to_be_visible()
    page.on("dialog", lambda dialog: dialog.accept())
    while True:
        if page.get_by_role("button", name="Play the recording").count() > 0:
            play_faster(page, 8.0)
            tab_to(page, "Play the recording")
            page.keyboard.press("Enter")
            heard_to_the_end(page)
        choose_first_option(page)
        if finished_or_next_by_keyboard(page):
            break
    expect(page.get_by_text(re.compile(r"Listening, part 2: question 1 of"))).to_be_visible()


def test_a_speaking_module_by_keyboard_alone(stack: Stack, page: Page) -> None:
    """Each prompt played and each recording started by Enter; the answers recorded, uploaded and saved."""
    start_by_keyboard(stack, page, "Speaking")
    expect(page.get_by_text(re.compile(r"Speaking, part 1: question 1 of"))).to_be_visible()
    page.on("dialog", lambda dialog: dialog.accept())
    while True:
        if page.get_by_role("button", name="Play the prompt").count() > 0:
            tab_to(page, "Play the prompt")
            page.keyboard.press("Enter")
        start = page.get_by_role("button", name=re.compile("^Start (preparing|recording)$"))
        expect(start).to_be_enabled(timeout=60_000)
        tab_to(page, re.compile("^Start (preparing|recording)$"))
        page.keyboard.press("Enter")
        answer_recorded(page)
        if finished_or_next_by_keyboard(page):
            break
    expect(page.get_by_role("heading", name="Score report")).to_be_visible()


def focused_radio_group(page: Page) -> str:
    """The name of the radio group the focused element belongs to; "" if it is no radio."""
    return str(
        page.evaluate("() => { const e = document.activeElement; return e && e.type === 'radio' ? e.name : ''; }")
    )


def test_a_rater_rates_a_response_by_keyboard_alone(stack: Stack, page: Page) -> None:
    """Each scale's radio group reached by Tab and set to 3 by Space and the arrow keys, the comment typed, the
    rating submitted by Enter."""
    finished_writing(stack, new_account(stack, "STUDENT"))
    rater = new_account(stack, "RATER")
    sign_in_by_keyboard(stack, page, rater["username"], lands_on="Rating queue")
    form = page.get_by_role("form", name="Rate this response")
    expect(form.get_by_role("heading", name="Response")).to_be_visible()
    groups = form.evaluate("f => [...new Set([...f.querySelectorAll('input[type=radio]')].map(r => r.name))]")
    assert groups and groups[0] == "score", groups
    for group in groups:
        for _ in range(MAX_TABS):
            page.keyboard.press("Tab")
            if focused_radio_group(page) == group:
                break
        assert focused_radio_group(page) == group, (group, focused(page))
        page.keyboard.press("Space")
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        expect(form.locator(f"input[name='{group}']:checked")).to_have_count(1)
        assert focused(page) == "3", (group, focused(page))
    tab_to(page, "Comment")
    page.keyboard.type("Clear position, well supported.")
    tab_to(page, "Submit rating and take the next")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Rated in this sitting: 1.")).to_be_visible()
    assert ratings_by(stack, rater["userId"]) == [(3, "Clear position, well supported.")]


def test_an_author_reviews_and_activates_an_item_by_keyboard_alone(stack: Stack, page: Page) -> None:
    """The status filter set by the arrow keys, the item opened by Enter (the focus moves to it), the review
    comment typed, Approve and then Activate by Enter."""
    writer, reviewer = new_account(stack, "AUTHOR"), new_account(stack, "AUTHOR")
    item_id, prompt = draft_in_review(stack, writer)
    sign_in_by_keyboard(stack, page, reviewer["username"], lands_on="Item bank")
    # A select's label reads its options too.
    tab_to(page, re.compile(r"^Status\b"))
    status = page.get_by_label("Status")
    while status.input_value() != "ITEM_STATUS_IN_REVIEW":
        page.keyboard.press("ArrowDown")
    listed = page.get_by_role("list", name="Items").get_by_role("button", name=re.compile(re.escape(prompt[:40])))
    expect(listed).to_be_visible()
    tab_to(page, re.compile(re.escape(prompt[:40])))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile(r"\(in review, revision"))).to_be_focused(timeout=20_000)
    tab_to(page, "Review comment")
    page.keyboard.type("Key and word bank checked.")
    tab_to(page, "Approve")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Approved: done.")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"\(approved, revision"))).to_be_focused(timeout=20_000)
    tab_to(page, "Activate")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Activated: done.")).to_be_visible()
    assert api(stack, "GET", f"/api/items/{item_id}")["status"] == "ITEM_STATUS_ACTIVE"


def draft_in_review(stack: Stack, writer: dict[str, Any]) -> tuple[str, str]:
    """An item `writer` wrote (a demo Build a Sentence item's content and parameters under a prompt of its own) and
    submitted for review, through the API; its id and prompt."""
    (model,) = api(
        stack,
        "GET",
        "/api/items?status=ITEM_STATUS_DRAFT&task_type=TASK_TYPE_BUILD_A_SENTENCE&view=ITEM_VIEW_FULL&page_size=1",
    )["items"]
    prompt = f"Answer the question: put the words in order ({uuid.uuid4().hex[:6]})."
    draft = {key: model[key] for key in ("section", "taskType", "content", "answerKey", "irt")}
    draft["content"]["prompt"] = prompt
    access = token(Role.AUTHOR, writer["userId"])
    item = api(stack, "POST", "/api/items", draft, access)
    api(stack, "POST", f"/api/items/{item['itemId']}:submitForReview", {}, access)
    assert api(stack, "GET", f"/api/items/{item['itemId']}")["status"] == "ITEM_STATUS_IN_REVIEW"
    return str(item["itemId"]), prompt


def ratings_by(stack: Stack, rater_id: str) -> list[tuple[int, str]]:
    conn = sqlite3.connect(f"file:{stack.user_db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT score, comment FROM ratings WHERE rater_id = ?", (rater_id,)).fetchall()
    finally:
        conn.close()
    return [(score, comment) for score, comment in rows]
