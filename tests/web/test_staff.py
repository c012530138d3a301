"""Staff in Chromium: a rater rates a student's writing from the queue, the report becomes final, the teacher sees
the student on the roster, an author reviews and activates items."""

from __future__ import annotations

import re
import sqlite3
import uuid
from typing import Any

from playwright.sync_api import Page, expect

from launcher.answers import answer_for
from launcher.stack import Stack
from tests.support.exam import PASSWORD
from tests.support.tokens import token
from tests.web.conftest import check_page
from tests.web.test_student_exam import sign_in
from toefl_core.auth import Role

# One rating makes a response final: the second, blind rating is another test's subject.
SESSION_ENV = {"SESSION_SECOND_RATING_SHARE": "0"}
ADMIN = token(Role.ADMIN, "usr-web-admin")
ESSAY = (
    "I believe that schools should offer more practical courses, because students learn best when they can use "
    "what they study. For example, a cooking class teaches chemistry and planning at the same time. "
) * 3


def api(stack: Stack, method: str, path: str, body: Any = None, access: str = ADMIN) -> dict[str, Any]:
    assert stack.gateway is not None
    status, reply = stack.gateway.request(method, path, token=access, body=body)
    assert status == 200, (method, path, reply)
    return reply


def new_account(stack: Stack, role: str, class_id: str = "") -> dict[str, Any]:
    username = f"web-{role.lower()}-{uuid.uuid4().hex[:6]}"
    user = {"username": username, "displayName": username.title(), "role": f"ROLE_{role}", "password": PASSWORD}
    # The body is the user; the class to enrol a student in is a query parameter.
    return api(stack, "POST", f"/api/users?class_id={class_id}" if class_id else "/api/users", user)


def finished_writing(stack: Stack, student: dict[str, Any]) -> str:
    """A Writing section the student took through the API, every task answered, finished: its rated responses
    wait in the raters' queue."""
    access = token(Role.STUDENT, student["userId"])
    body = {"scope": "SESSION_SCOPE_SECTION", "section": "SECTION_WRITING", "requestId": uuid.uuid4().hex}
    session = api(stack, "POST", "/api/sessions", body, access)
    session_id = session["sessionId"]
    for item in session["currentModule"]["items"]:
        answer = {"text": ESSAY} if item["taskType"] != "TASK_TYPE_BUILD_A_SENTENCE" else answer_for(item)
        path = f"/api/sessions/{session_id}/responses/{item['itemId']}"
        api(stack, "PUT", path, {"answer": answer, "requestId": uuid.uuid4().hex}, access)
    api(stack, "POST", f"/api/sessions/{session_id}:finish", {}, access)
    return str(session_id)


def test_rater_teacher_and_student_see_a_section_rated(stack: Stack, page: Page) -> None:
    assert stack.gateway is not None
    base = stack.gateway.url
    teacher = new_account(stack, "TEACHER")
    school_class = api(stack, "POST", "/api/classes", {"name": "Class 7B", "teacherId": teacher["userId"]})
    # Enrolled by creating the student in the class.
    student = new_account(stack, "STUDENT", class_id=school_class["classId"])
    session_id = finished_writing(stack, student)
    rater = new_account(stack, "RATER")

    sign_in(page, base, rater["username"], lands_on="Rating queue")
    check_page(page, "rating-queue")
    rated = rate_the_queue(page, essay=ESSAY)
    assert rated >= 2
    assert ratings_of(stack, session_id) == rated
    sign_out(page)

    sign_in(page, base, student["username"], lands_on="Your tests")
    page.get_by_role("link", name=re.compile("Writing practice.*score report")).click()
    expect(page.get_by_text("These scores are final.")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("^Writing.*final"))).to_be_visible()
    sign_out(page)

    sign_in(page, base, teacher["username"], lands_on="Your classes")
    page.get_by_role("button", name=re.compile("Class 7B")).click()
    roster = page.get_by_role("table", name=re.compile("Roster of Class 7B"))
    row = roster.get_by_role("row", name=re.compile(student["displayName"]))
    expect(row).to_contain_text(re.compile(r"Writing \d"))
    check_page(page, "teacher-roster")


def test_an_author_writes_a_draft_another_reviews_it_and_it_is_activated(stack: Stack, page: Page) -> None:
    """The draft's whole path in the item bank's pages: submitted by its author (automated QA passes it), refused
    to its own author's approval, approved by another author, then activated."""
    assert stack.gateway is not None
    base = stack.gateway.url
    writer, reviewer = new_account(stack, "AUTHOR"), new_account(stack, "AUTHOR")
    # The writer's draft: a demo Build a Sentence item's content and parameters under a prompt of their own.
    (model,) = api(
        stack,
        "GET",
        "/api/items?status=ITEM_STATUS_DRAFT&task_type=TASK_TYPE_BUILD_A_SENTENCE&view=ITEM_VIEW_FULL&page_size=1",
    )["items"]
    prompt = f"Answer the question: put the words in order ({uuid.uuid4().hex[:6]})."
    draft = {key: model[key] for key in ("section", "taskType", "content", "answerKey", "irt")}
    draft["content"]["prompt"] = prompt
    item = api(stack, "POST", "/api/items", draft, token(Role.AUTHOR, writer["userId"]))
    assert item["status"] == "ITEM_STATUS_DRAFT"

    sign_in(page, base, writer["username"], lands_on="Item bank")
    check_page(page, "item-bank")
    page.get_by_role("list", name="Items").get_by_role("button", name=re.compile(re.escape(prompt[:40]))).click()
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_role("status").filter(has_text="Submitted for review: done.")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"\(in review, revision"))).to_be_visible()
    # Four eyes: its author cannot approve it, and is told so in a sentence.
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status").filter(has_text="another author must review it")).to_be_visible()
    sign_out(page)

    sign_in(page, base, reviewer["username"], lands_on="Item bank")
    page.get_by_label("Status").select_option("ITEM_STATUS_IN_REVIEW")
    page.get_by_role("list", name="Items").get_by_role("button", name=re.compile(re.escape(prompt[:40]))).click()
    page.get_by_label("Review comment").fill("Key and word bank checked.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status").filter(has_text="Approved: done.")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"\(approved, revision"))).to_be_visible()
    expect(page.get_by_text(f"approve by {reviewer['userId']}: Key and word bank checked.")).to_be_visible()
    check_page(page, "item-review")
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("status").filter(has_text="Activated: done.")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"\(active, revision"))).to_be_visible()
    assert api(stack, "GET", f"/api/items/{item['itemId']}")["status"] == "ITEM_STATUS_ACTIVE"


def rate_the_queue(page: Page, *, essay: str | None = None) -> int:
    """Rates every response in the rater's queue, 3 on each scale; a written one must show `essay`, a spoken one is
    played (its media element reports time played). Returns how many were rated."""
    rated = 0
    submit = page.get_by_role("button", name="Submit rating and take the next")
    empty = page.get_by_text("No response is waiting for your rating.")
    # The queue is read once the page shows: either a response to rate or none.
    expect(submit.or_(empty)).to_be_visible()
    while submit.count() > 0:
        form = page.get_by_role("form", name="Rate this response")
        expect(form.get_by_role("heading", name="Response")).to_be_visible()
        recording = form.get_by_label("The spoken response")
        if form.get_by_text("Loading the recording…").count() > 0 or recording.count() > 0:
            expect(recording).to_be_visible()
            recording.evaluate("audio => audio.play()")
            page.wait_for_function(
                "() => { const a = document.querySelector('audio'); return a !== null && a.currentTime > 0.5; }"
            )
        elif essay is not None:
            expect(form.get_by_text(essay[:40])).to_be_visible()
        for group in form.get_by_role("group").all():
            group.get_by_role("radio").nth(3).check()
        form.get_by_label("Comment").fill("Clear position, well supported.")
        submit.click()
        rated += 1
        expect(page.get_by_text(f"Rated in this sitting: {rated}.")).to_be_visible()
        expect(submit.or_(empty)).to_be_visible()
    expect(empty).to_be_visible()
    return rated


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def ratings_of(stack: Stack, session_id: str) -> int:
    conn = sqlite3.connect(f"file:{stack.user_db}?mode=ro", uri=True, timeout=30)
    try:
        (count,) = conn.execute(
            "SELECT count(*) FROM ratings g JOIN responses r ON r.response_id = g.response_id"
            " WHERE r.session_id = ?",
            (session_id,),
        ).fetchone()
    finally:
        conn.close()
    return int(count)


def test_an_admin_reads_the_analytics_charts(stack: Stack, page: Page) -> None:
    assert stack.gateway is not None
    admin = new_account(stack, "ADMIN")
    sign_in(page, stack.gateway.url, admin["username"], lands_on="Item bank")
    page.get_by_role("link", name="Analytics").click()
    expect(page.get_by_role("heading", name="Analytics, last 30 days")).to_be_visible()
    # Drawn by Chart.js on canvases, each with its figures as a table.
    charts = page.get_by_role("img", name=re.compile("Band distribution|Routing|Mean seconds"))
    expect(charts).to_have_count(3)
    expect(page.get_by_role("table", name="Band distribution per section")).to_be_visible()
    drawn = page.evaluate("() => [...document.querySelectorAll('canvas')].map(c => c.width * c.height)")
    assert all(area > 0 for area in drawn), drawn
    check_page(page, "analytics")
