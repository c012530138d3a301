"""Keyboard-only passes in Chromium: a module of each section taken with Tab, typing, Space and Enter alone."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.support.exam import PASSWORD
from tests.web.conftest import create_student
from tests.web.test_listening import heard_to_the_end, play_faster
from tests.web.test_speaking import answer_recorded

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


def start_by_keyboard(stack: Stack, page: Page, section: str) -> None:
    """A new student signs in and starts a section's practice with Tab, typing and Enter alone."""
    assert stack.gateway is not None
    student = create_student(stack)
    page.goto(stack.gateway.url + "/")
    tab_to(page, "Username")
    page.keyboard.type(student.username)
    tab_to(page, "Password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your tests")).to_be_visible()
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
