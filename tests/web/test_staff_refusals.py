"""Refusals on the staff pages said as sentences: a step another member of staff took first (the item's status,
a response's final rating) and a server error whose body is not ours (a proxy's JSON), never the server's text."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, Route, expect

from launcher.stack import Stack
from tests.support.tokens import token
from tests.web.test_keyboard import draft_in_review
from tests.web.test_staff import api, finished_writing, new_account
from tests.web.test_student_exam import sign_in
from toefl_core.auth import Role

# One rating makes a response final: a second rater's submit meets RATING_FINAL.
SESSION_ENV = {"SESSION_SECOND_RATING_SHARE": "0"}


def approved_item_open(stack: Stack, page: Page) -> str:
    """An item another author approved, open in a reviewer's item bank with its Activate button; its id."""
    assert stack.gateway is not None
    writer, reviewer = new_account(stack, "AUTHOR"), new_account(stack, "AUTHOR")
    item_id, prompt = draft_in_review(stack, writer)
    review = {"verdict": "REVIEW_VERDICT_APPROVE", "comment": "Checked."}
    api(stack, "POST", f"/api/items/{item_id}:review", review, token(Role.AUTHOR, reviewer["userId"]))
    sign_in(page, stack.gateway.url, reviewer["username"], lands_on="Item bank")
    page.get_by_label("Status").select_option("ITEM_STATUS_APPROVED")
    page.get_by_role("list", name="Items").get_by_role("button", name=re.compile(re.escape(prompt[:40]))).click()
    expect(page.get_by_role("button", name="Activate")).to_be_visible()
    return item_id


def test_a_step_another_author_took_first_is_said_as_a_sentence(stack: Stack, page: Page) -> None:
    item_id = approved_item_open(stack, page)
    # Another admin activates it while the page still offers Activate: the page's Activate meets ITEM_STATUS.
    api(stack, "POST", f"/api/items/{item_id}:activate", {})
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("status")).to_have_text(
        "The item's status does not allow this step (someone may have moved it on meanwhile). Please reload it."
    )


def test_a_server_error_that_is_not_ours_is_a_sentence_not_json(stack: Stack, page: Page) -> None:
    item_id = approved_item_open(stack, page)

    def proxy_error(route: Route) -> None:
        route.fulfill(status=502, content_type="application/json", body='{"error": "upstream connect error"}')

    page.route(f"**/api/items/{item_id}:activate", proxy_error)
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("status")).to_have_text(
        "Something went wrong on the server. Please try again; if it keeps happening, tell an administrator."
    )
    assert "{" not in page.inner_text("main") and "upstream" not in page.inner_text("main")


def test_a_response_another_rater_made_final_is_said_as_a_sentence(stack: Stack, page: Page) -> None:
    assert stack.gateway is not None
    finished_writing(stack, new_account(stack, "STUDENT"))
    first, second = new_account(stack, "RATER"), new_account(stack, "RATER")
    with page.expect_response(re.compile(r"/api/ratingTasks\?")) as listed:
        sign_in(page, stack.gateway.url, second["username"], lands_on="Rating queue")
    shown = listed.value.json()["tasks"][0]["responseId"]
    form = page.get_by_role("form", name="Rate this response")
    expect(form.get_by_role("heading", name="Response")).to_be_visible()
    # The first rater rates the same response meanwhile, which makes it final.
    rating = {"score": 3, "comment": "First.", "requestId": uuid.uuid4().hex}
    api(stack, "POST", f"/api/ratingTasks/{shown}:rate", rating, token(Role.RATER, first["userId"]))
    form.get_by_role("group").first.get_by_role("radio").nth(3).check()
    form.get_by_role("button", name="Submit rating and take the next").click()
    expect(form.get_by_role("alert")).to_have_text(
        "This response already has its final rating. Please take the next one."
    )
