"""The module's clock runs out in the browser: the client saves, asks for the next module and shows it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from launcher.stack import Stack
from tests.web.test_student_exam import SAVED, answer_current, start_practice

# The Reading router module (900 s) lasts about 11 s at this scale.
SESSION_ENV = {"SESSION_TIME_SCALE": "0.012"}


def test_time_up_moves_the_student_to_the_next_module(stack: Stack, page: Page) -> None:
    start_practice(stack, page, "Reading")
    answer_current(page)
    expect(page.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
    # No click: the clock runs out, and the client moves on by itself.
    expect(page.get_by_text(re.compile(r"part 2: question 1 of"))).to_be_visible(timeout=30_000)
