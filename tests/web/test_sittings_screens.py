"""Sittings and proctoring in Chromium: a teacher schedules a sitting, a student starts in it, the teacher's live
view follows them, and the teacher pauses, resumes, extends (by keyboard) and voids their test; the student's
screens while paused and once voided; a student's accommodations set from the roster."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Playwright, Route, expect

from launcher.answers import answer_for
from launcher.gateway import GatewayProcess
from launcher.stack import Stack
from tests.support.tokens import TEST_TOKEN_KEY, token
from tests.web.conftest import WEB_DIST, check_page, open_browser
from tests.web.test_keyboard import tab_to
from tests.web.test_staff import api, new_account, sign_out
from tests.web.test_student_exam import SAVED, answer_current, sign_in, stored_responses
from toefl_core.auth import Role

# Every stream ends after about 10 s here (60 s by default): the live view reconnects several times in each test.
STREAM_SECONDS = "10"
CODE = "RIVER-7"
TITLE = "Mock exam, Reading"
NO_SCORE = "\N{EN DASH}"
CLOCK = re.compile(r"(\d+):(\d\d)")


@pytest.fixture(scope="module")
def stack(demo_bank_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The three services, the gateway's longest stream (GATEWAY_MAX_TIMEOUT) cut to STREAM_SECONDS."""
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail("the web client is not built: `make web` (make unit builds it first)")
    workdir = tmp_path_factory.mktemp("sittings-stack")
    bank = workdir / "item_bank.db"
    shutil.copyfile(demo_bank_template, bank)
    running = Stack(workdir, bank, TEST_TOKEN_KEY)
    try:
        running.start()
        assert running.gateway is not None and running.item is not None and running.session is not None
        running.gateway.terminate()
        running.gateway = GatewayProcess(
            workdir=workdir / "gateway-short-streams",
            item_address=running.item.address,
            session_address=running.session.address,
            token_key=TEST_TOKEN_KEY,
            env={"GATEWAY_MAX_TIMEOUT": STREAM_SECONDS},
            log_level="WARNING",
        ).start()
        yield running
    finally:
        running.stop()


def seconds(text: str) -> int:
    found = CLOCK.search(text)
    assert found is not None, text
    return int(found.group(1)) * 60 + int(found.group(2))


def session_of(stack: Stack, session_id: str) -> dict[str, Any]:
    return api(stack, "GET", f"/api/sessions/{session_id}")


def audit_entries(stack: Stack, session_id: str, action: str) -> list[dict[str, Any]]:
    return list(api(stack, "GET", f"/api/auditEntries?target_id={session_id}&action={action}")["entries"])


def audit_details(stack: Stack, session_id: str, action: str) -> list[dict[str, Any]]:
    return [json.loads(entry["detailJson"]) for entry in audit_entries(stack, session_id, action)]


def pending_answers(page: Page, session_id: str) -> list[dict[str, Any]]:
    """The answers the student's browser holds, not yet acknowledged (its saver's queue)."""
    raw = page.evaluate(f"() => localStorage.getItem('toefl.pending.{session_id}')")
    return list(json.loads(raw)) if raw else []


def answer_a_choice(page: Page) -> None:
    """Moves on to the next multiple-choice question and answers it."""
    page.get_by_role("button", name="Next").click()
    while page.get_by_role("radio").count() == 0:
        page.get_by_role("button", name="Next").click()
    answer_current(page)


def seat(page: Page, name: str) -> Locator:
    return page.get_by_role("table", name="Live view of the room").get_by_role("row").filter(has_text=name)


COLUMNS = ("State", "Part", "Answered", "Time left", "Focus lost", "Last activity")


def seat_cell(page: Page, name: str, column: str) -> Locator:
    """One cell of the student's row in the live view (the row's header is their name)."""
    return seat(page, name).get_by_role("cell").nth(COLUMNS.index(column))


def schedule_a_sitting(page: Page, class_name: str) -> str:
    """The teacher schedules a Reading sitting with an access code, opening now; returns its id."""
    page.get_by_role("link", name="Sittings", exact=True).click()
    form = page.get_by_role("form", name="Schedule a sitting")
    form.get_by_role("combobox", name=re.compile("^Class")).select_option(label=class_name)
    form.get_by_label("Title", exact=True).fill(TITLE)
    form.get_by_role("combobox", name=re.compile("^Test")).select_option(label="Reading section")
    form.get_by_label(re.compile("^Access code")).fill(CODE)
    check_page(page, "sittings-new")
    form.get_by_role("button", name="Schedule the sitting").click()
    expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
    page.wait_for_url(re.compile(r"/sittings/sit-[^/]+$"))
    return page.url.rsplit("/", 1)[-1]


def test_a_teacher_proctors_a_sitting_from_start_to_void(
    stack: Stack, page: Page, playwright: Playwright, tmp_path: Path
) -> None:
    assert stack.gateway is not None
    base = stack.gateway.url
    teacher = new_account(stack, "TEACHER")
    class_name = f"Class {uuid.uuid4().hex[:4]}"
    school_class = api(stack, "POST", "/api/classes", {"name": class_name, "teacherId": teacher["userId"]})
    student = new_account(stack, "STUDENT", class_id=school_class["classId"])
    name = student["displayName"]

    sign_in(page, base, teacher["username"], lands_on="Your classes")
    sitting_id = schedule_a_sitting(page, class_name)
    sitting = api(stack, "GET", f"/api/sittings/{sitting_id}")
    assert (sitting["classId"], sitting["scope"], sitting["section"]) == (
        school_class["classId"],
        "SESSION_SCOPE_SECTION",
        "SECTION_READING",
    )
    assert sitting["accessCode"] == CODE
    expect(page.get_by_text(re.compile("^Live: updated at"))).to_be_visible()
    expect(seat_cell(page, name, "State")).to_have_text("Not started")

    student_browser = open_browser(playwright, tmp_path / "student")
    try:
        spage = student_browser.pages[0] if student_browser.pages else student_browser.new_page()
        spage.set_default_timeout(20_000)
        sign_in(spage, base, student["username"])
        start = spage.get_by_role("region", name="Your sittings").get_by_role("form", name=TITLE)
        start.get_by_label("Access code").fill(CODE)
        check_page(spage, "home-sittings")
        start.get_by_role("button", name=f"Start {TITLE}").click()
        expect(spage.get_by_text(re.compile(r"^Reading, part 1: question 1 of \d+"))).to_be_visible()
        session_id = spage.url.rsplit("/", 1)[-1]
        assert session_of(stack, session_id)["sittingId"] == sitting_id

        # The live view shows the start, then the first answer.
        expect(seat_cell(page, name, "State")).to_have_text("In progress")
        expect(seat_cell(page, name, "Part")).to_have_text("Reading, part 1")
        expect(seat_cell(page, name, "Answered")).to_have_text(re.compile(r"^0 of \d+$"))
        answer_current(spage)
        expect(spage.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
        expect(seat_cell(page, name, "Answered")).to_have_text(re.compile(r"^1 of \d+$"))

        # The teacher pauses; the student's next answer meets the pause: the screen says so, the answer is kept.
        seat(page, name).get_by_role("button", name=f"Pause {name}").click()
        expect(page.get_by_role("status").filter(has_text=f"Paused the test of {name}.")).to_be_visible()
        expect(seat_cell(page, name, "State")).to_have_text("Paused")
        check_page(page, "sitting-live-view")
        answer_a_choice(spage)
        paused = spage.get_by_role("dialog", name="Your proctor has paused your exam; your answers are kept.")
        expect(paused).to_be_visible()
        expect(paused.get_by_text(re.compile(r"Time left in this part: \d+:\d\d"))).to_be_visible()
        check_page(spage, "exam-paused")
        (kept,) = pending_answers(spage, session_id)
        assert [row for row in stored_responses(stack.user_db, session_id) if row[0] == kept["itemId"]] == []
        # A reload during the pause opens on the paused screen, the answer still held.
        spage.reload()
        expect(paused).to_be_visible()
        expect(paused.get_by_text(re.compile(r"Time left in this part: \d+:\d\d"))).to_be_visible()
        assert pending_answers(spage, session_id) == [kept]
        stopped_at = seconds(paused.inner_text())
        # The clock stands still through several of the page's looks at the session.
        time.sleep(5)
        assert seconds(paused.inner_text()) == stopped_at
        (pause,) = audit_details(stack, session_id, "pause_session")
        assert stopped_at == pause["remaining_ms"] // 1000

        # Resumed: the exam comes back with the time that was left, and the kept answer is stored once.
        seat(page, name).get_by_role("button", name=f"Resume {name}").click()
        expect(seat_cell(page, name, "State")).to_have_text("In progress")
        expect(paused).to_be_hidden()
        expect(spage.get_by_role("status").filter(has_text=SAVED)).to_be_visible()
        (resume,) = audit_details(stack, session_id, "resume_session")
        assert resume["remaining_ms"] == pause["remaining_ms"]
        shown = seconds(spage.get_by_label("Time left in this part").inner_text())
        server = session_of(stack, session_id)["currentModule"]["remainingSeconds"]
        assert server - 2 <= shown <= stopped_at, (server, shown, stopped_at)
        assert pending_answers(spage, session_id) == []
        stored = [row for row in stored_responses(stack.user_db, session_id) if row[0] == kept["itemId"]]
        assert stored == [(kept["itemId"], kept["requestId"], 1)]

        # Ten more minutes, given by keyboard alone. The first attempt's answer is lost on the way back (the server
        # did extend): the retry sends the same request id, and the server extends once.
        before = session_of(stack, session_id)["currentModule"]["deadline"]
        sent: list[dict[str, Any]] = []

        def answer_lost_once(route: Route) -> None:
            sent.append(dict(route.request.post_data_json or {}))
            if len(sent) == 1:
                route.fetch()
                route.abort("connectionreset")
            else:
                route.continue_()

        page.route(re.compile(r"/api/sessions/[^/]+:extend$"), answer_lost_once)
        tab_to(page, f"Extend time of {name}")
        page.keyboard.press("Enter")
        page.keyboard.press("Control+A")
        page.keyboard.type("10")
        tab_to(page, re.compile("^Reason"))
        page.keyboard.type("Fire alarm in the building")
        check_page(page, "sitting-extend")
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert").filter(has_text="You are offline")).to_be_visible()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status").filter(has_text=f"Gave {name} 10 more minutes.")).to_be_visible()
        assert len(sent) == 2 and sent[0]["requestId"] == sent[1]["requestId"], sent
        after = session_of(stack, session_id)["currentModule"]["deadline"]
        assert iso_seconds(after) - iso_seconds(before) == 600
        (extension,) = audit_entries(stack, session_id, "extend_session")
        assert extension["reason"] == "Fire alarm in the building"

        # Every question of the part answered (through the API), so there is a score to withhold; then voided.
        answer_the_rest(stack, student, session_id)
        seat(page, name).get_by_role("button", name=f"Void the test of {name}").click()
        confirm = page.get_by_role("form", name=f"Void the test of {name}")
        confirm.get_by_label(re.compile("^Reason")).fill("A phone was used during the test")
        check_page(page, "sitting-void")
        confirm.get_by_role("button", name=f"Void the test of {name}").click()
        expect(seat_cell(page, name, "State")).to_have_text("Voided")
        answer_a_choice(spage)
        voided = spage.get_by_role("dialog", name="Your proctor has voided this test")
        expect(voided).to_contain_text("will not be scored")
        check_page(spage, "exam-voided")
        voided.get_by_role("link", name="Back to your tests").click()
        spage.get_by_role("link", name=re.compile("Reading practice.*voided by the proctor.*score report")).click()
        expect(spage.get_by_text("Your proctor voided this test, so it has no score.")).to_be_visible()
        expect(spage.get_by_role("table")).to_have_count(0)
    finally:
        student_browser.close()

    # The sitting in the teacher's list of sittings.
    page.get_by_role("link", name="All sittings").click()
    listed = page.get_by_role("table", name="Sittings of your classes, latest first").get_by_role("row")
    expect(listed.filter(has_text=TITLE)).to_contain_text(class_name)
    check_page(page, "sittings")

    # Staff still read the score; the roster leaves it out.
    staff_report = api(stack, "GET", f"/api/sessions/{session_id}/scoreReport")
    assert staff_report["voided"] is True
    assert any(section.get("band") for section in staff_report["score"]["sections"]), staff_report
    page.get_by_role("link", name="Classes", exact=True).click()
    page.get_by_role("button", name=re.compile(re.escape(class_name))).click()
    row = page.get_by_role("table", name=f"Roster of {class_name}").get_by_role("row").filter(has_text=name)
    # The first cell is the latest score: a dash, none.
    expect(row.get_by_role("cell").nth(0)).to_have_text(NO_SCORE)
    sign_out(page)


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def answer_the_rest(stack: Stack, student: dict[str, Any], session_id: str) -> None:
    access = token(Role.STUDENT, student["userId"])
    module = api(stack, "GET", f"/api/sessions/{session_id}/module", access=access)
    answered = {r["itemId"] for r in module.get("responses", [])}
    for item in module["items"]:
        if item["itemId"] in answered:
            continue
        body = {"answer": answer_for(item), "requestId": uuid.uuid4().hex}
        api(stack, "PUT", f"/api/sessions/{session_id}/responses/{item['itemId']}", body, access)


def test_a_teacher_sets_a_students_extra_time_from_the_roster(stack: Stack, page: Page) -> None:
    assert stack.gateway is not None
    teacher = new_account(stack, "TEACHER")
    class_name = f"Class {uuid.uuid4().hex[:4]}"
    school_class = api(stack, "POST", "/api/classes", {"name": class_name, "teacherId": teacher["userId"]})
    student = new_account(stack, "STUDENT", class_id=school_class["classId"])

    sign_in(page, stack.gateway.url, teacher["username"], lands_on="Your classes")
    page.get_by_role("button", name=f"{class_name} (1 student)", exact=True).click()
    page.get_by_role("button", name=student["displayName"]).click()
    form = page.get_by_role("form", name=f"Accommodations of {student['displayName']}")
    expect(form.get_by_label("Extra time")).to_have_value("1")
    form.get_by_label("Extra time").select_option(label="1.5 times the standard time")
    form.get_by_label(re.compile("^Reason")).fill("Approved by the school's learning support team")
    form.get_by_role("button", name="Save accommodations").click()
    expect(form.get_by_role("status")).to_contain_text("Saved: 1.5 times the standard time")
    check_page(page, "teacher-accommodation")
    saved = api(stack, "GET", f"/api/students/{student['userId']}/accommodation")
    assert saved["extraTimeMultiplier"] == 1.5
    assert saved["reason"] == "Approved by the school's learning support team"
    assert saved["setBy"] == teacher["userId"]


def test_a_student_who_starts_before_the_sitting_opens_is_told_when_it_opens(stack: Stack, page: Page) -> None:
    assert stack.gateway is not None
    teacher = new_account(stack, "TEACHER")
    school_class = api(stack, "POST", "/api/classes", {"name": "Early birds", "teacherId": teacher["userId"]})
    student = new_account(stack, "STUDENT", class_id=school_class["classId"])
    opens = datetime.now(UTC) + timedelta(hours=2)
    sitting = {
        "classId": school_class["classId"],
        "title": "Afternoon mock",
        "scope": "SESSION_SCOPE_SECTION",
        "section": "SECTION_READING",
        "openTime": opens.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "closeTime": (opens + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    api(stack, "POST", "/api/sittings", sitting)

    sign_in(page, stack.gateway.url, student["username"])
    start = page.get_by_role("region", name="Your sittings").get_by_role("form", name="Afternoon mock")
    start.get_by_role("button", name="Start Afternoon mock").click()
    # The refusal names the opening time the service sent with it, in the browser's own way of writing times.
    shown = page.evaluate("(iso) => new Date(iso).toLocaleString()", sitting["openTime"])
    expect(start.get_by_role("alert")).to_have_text(f"This exam opens at {shown}. Please start it then.")
