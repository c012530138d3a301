"""The exam platform's own API through a real gateway in front of real item_service and session_service."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import quote

import grpc
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from google.protobuf import json_format
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc

from launcher.procs import ServiceProcess
from tests.support.tokens import token
from toefl_core.auth import Role

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Fields a student must never see populated, at any depth, in proto3 JSON spelling.
SECRET_MESSAGE_FIELDS = frozenset({"answerKey", "irt", "rubric", "provenance"})
SECRET_STRING_FIELDS = frozenset({"transcript", "externalId"})
PASSWORD = "correct horse battery staple"


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


ADMIN = bearer(token(Role.ADMIN, "usr-gateway-admin"))
AUTHOR = bearer(token(Role.AUTHOR, "usr-gateway-author"))
# Staff who read the bank in the STUDENT view; students themselves do not read the bank.
TEACHER = bearer(token(Role.TEACHER, "usr-gateway-teacher"))


async def request(
    client: TestClient[Any, Any], method: str, url: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    async with client.request(method, url, json=body, headers=headers) as response:
        text = await response.text()
        return response.status, json.loads(text) if response.content_type == "application/json" else text


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def student(client: TestClient[Any, Any]) -> dict[str, str]:
    """A student created by an admin through the gateway, logged in through POST /api/auth/token."""
    username = f"gw-student-{uuid.uuid4().hex[:8]}"
    user = {"username": username, "displayName": "Gateway Student", "role": "ROLE_STUDENT", "password": PASSWORD}
    status, created = await request(client, "POST", "/api/users", ADMIN, user)
    assert status == 200, created
    assert created["password"] == ""
    status, login = await request(
        client, "POST", "/api/auth/token", {}, {"username": username, "password": PASSWORD}
    )
    assert status == 200, login
    assert login["role"] == "ROLE_STUDENT" and login["userId"] == created["userId"]
    return bearer(login["accessToken"])


def leaks(value: Any, path: str = "$") -> list[str]:
    """Every populated secret field at any depth of a JSON value."""
    found = []
    if isinstance(value, dict):
        for key, child in value.items():
            if key in SECRET_MESSAGE_FIELDS or (key in SECRET_STRING_FIELDS and child):
                found.append(f"{path}.{key}")
            found.extend(leaks(child, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(leaks(child, f"{path}[{index}]"))
    return found


async def test_readyz_with_both_services(client: TestClient[Any, Any]) -> None:
    status, body = await request(client, "GET", "/readyz", {})
    assert status == 200, body
    assert body["backends"]["item_service"]["owner"] == "item_bank"
    assert body["backends"]["session_service"]["owner"] == "user_data"


async def test_items_need_a_token(client: TestClient[Any, Any]) -> None:
    status, body = await request(client, "GET", "/api/items", {})
    assert status == 401
    assert body["code"] == 16 and set(body) == {"code", "message", "details"}


async def test_wrong_password_is_401(client: TestClient[Any, Any], student: dict[str, str]) -> None:
    status, body = await request(client, "POST", "/api/auth/token", {}, {"username": "nobody", "password": "x"})
    assert status == 401
    assert body["code"] == 16


async def test_the_student_view_holds_no_key_rubric_or_irt(client: TestClient[Any, Any]) -> None:
    """The bank in the STUDENT view, as staff without the FULL view read it."""
    answers: list[tuple[str, Any]] = []
    status, page = await request(client, "GET", "/api/items?pageSize=1000&status=ITEM_STATUS_ACTIVE", TEACHER)
    assert status == 200, page
    assert len(page["items"]) >= 12
    answers.append(("list items", page))
    task_types = {item["taskType"] for item in page["items"]}
    for task_type in sorted(task_types):
        first = next(item for item in page["items"] if item["taskType"] == task_type)
        status, item = await request(client, "GET", f"/api/items/{first['itemId']}", TEACHER)
        assert status == 200, item
        answers.append((f"get item {task_type}", item))
    status, passages = await request(client, "GET", "/api/passages?pageSize=50", TEACHER)
    assert status == 200, passages
    answers.append(("list passages", passages))
    for passage in passages["passages"][:10]:
        status, one = await request(client, "GET", f"/api/passages/{passage['passageId']}", TEACHER)
        assert status == 200, one
        answers.append((f"get passage {passage['passageId']}", one))
    ids = [{"itemId": item["itemId"]} for item in page["items"][:50]]
    status, batch = await request(client, "POST", "/api/items:batchGet", TEACHER, {"items": ids})
    assert status == 200, batch
    answers.append(("batch get", batch))
    assert {name: leaks(body) for name, body in answers if leaks(body)} == {}
    # The walk is only meaningful if the same responses for an author do hold the secrets.
    status, full = await request(
        client, "GET", f"/api/items/{page['items'][0]['itemId']}?view=ITEM_VIEW_FULL", AUTHOR
    )
    assert status == 200 and leaks(full)


async def test_students_are_refused_the_bank(client: TestClient[Any, Any], student: dict[str, str]) -> None:
    """Issue 15: a student token listed the whole bank, DRAFT and RETIRED items included."""
    status, page = await request(client, "GET", "/api/items?pageSize=2", TEACHER)
    assert status == 200, page
    item_id = page["items"][0]["itemId"]
    status, passages = await request(client, "GET", "/api/passages?pageSize=1", TEACHER)
    assert status == 200, passages
    passage_id = passages["passages"][0]["passageId"]
    refused = [
        ("GET", "/api/items?pageSize=1000", None),
        ("GET", f"/api/items?pageSize=1000&pageToken={quote(page['nextPageToken'])}", None),
        ("GET", "/api/items?status=ITEM_STATUS_DRAFT", None),
        ("GET", "/api/items?status=ITEM_STATUS_RETIRED", None),
        ("GET", f"/api/items/{item_id}", None),
        ("GET", f"/api/items/{item_id}/revisions", None),
        ("POST", "/api/items:batchGet", {"items": [{"itemId": item_id}]}),
        ("GET", "/api/passages?pageSize=50", None),
        ("GET", f"/api/passages/{passage_id}", None),
    ]
    for method, url, payload in refused:
        status, body = await request(client, method, url, student, payload)
        assert (status, body["code"]) == (403, 7), (url, body)
        assert "current module" in body["message"], body


async def test_gateway_json_equals_json_format_on_the_whole_bank(
    client: TestClient[Any, Any], item_service_proc: ServiceProcess
) -> None:
    query = "pageSize=1000&view=ITEM_VIEW_FULL"
    status, page = await request(client, "GET", f"/api/items?{query}", AUTHOR)
    assert status == 200, page
    async with grpc.aio.insecure_channel(item_service_proc.address) as channel:
        stub = item_service_pb2_grpc.ItemServiceStub(channel)
        reply = await stub.ListItems(
            item_service_pb2.ListItemsRequest(page_size=1000, view=item_pb2.ITEM_VIEW_FULL),
            metadata=(("authorization", AUTHOR["Authorization"]),),
        )
    assert len(reply.items) == len(page["items"]) >= 1000
    assert page == json_format.MessageToDict(reply, always_print_fields_with_no_presence=True)


async def test_student_cannot_ask_for_the_full_view(client: TestClient[Any, Any], student: dict[str, str]) -> None:
    status, body = await request(client, "GET", "/api/items?view=ITEM_VIEW_FULL", student)
    assert status == 403
    assert body["code"] == 7


async def test_session_round_trip(client: TestClient[Any, Any], student: dict[str, str]) -> None:
    create = {"scope": "SESSION_SCOPE_SECTION", "section": "SECTION_WRITING", "requestId": uuid.uuid4().hex}
    status, session = await request(client, "POST", "/api/sessions", student, create)
    assert status == 200, session
    assert session["state"] == "SESSION_STATE_IN_PROGRESS"
    session_id = session["sessionId"]
    status, again = await request(client, "POST", "/api/sessions", student, create)
    assert (status, again["sessionId"]) == (200, session_id)
    status, module = await request(client, "GET", f"/api/sessions/{session_id}/module", student)
    assert status == 200, module
    assert module["items"] and leaks(module) == [] and leaks(session) == []
    email = next(item for item in module["items"] if item["taskType"] == "TASK_TYPE_WRITE_AN_EMAIL")
    url = f"/api/sessions/{session_id}/responses/{email['itemId']}"
    answer = {"answer": {"text": "Dear Professor, I would like to ask about the deadline."}, "requestId": "r-1"}
    status, saved = await request(client, "PUT", url, student, answer)
    assert status == 200, saved
    assert saved["replayed"] is False and saved["response"]["revision"] == 1
    status, replay = await request(client, "PUT", url, student, answer)
    assert status == 200 and replay["replayed"] is True
    status, events = await request(
        client,
        "POST",
        f"/api/sessions/{session_id}/events:batchCreate",
        student,
        {"events": [{"type": "EVENT_TYPE_FOCUS_LOST", "clientTime": "2026-01-01T10:00:00Z", "detail": "tab"}]},
    )
    assert status == 200 and events["stored"] == 1
    status, finished = await request(client, "POST", f"/api/sessions/{session_id}:finish", student, {})
    assert status == 200, finished
    assert finished["state"] == "SESSION_STATE_FINISHED"
    status, body = await request(client, "PUT", url, student, {**answer, "requestId": "r-2"})
    assert status == 400 and body["code"] == 9


async def test_another_student_cannot_read_the_session(
    client: TestClient[Any, Any], student: dict[str, str]
) -> None:
    create = {"scope": "SESSION_SCOPE_SECTION", "section": "SECTION_SPEAKING", "requestId": uuid.uuid4().hex}
    status, session = await request(client, "POST", "/api/sessions", student, create)
    assert status == 200, session
    intruder = bearer(token(Role.STUDENT, "usr-someone-else"))
    status, body = await request(client, "GET", f"/api/sessions/{session['sessionId']}", intruder)
    assert status in (403, 404) and body["code"] in (5, 7)


def unsigned(payload: object) -> str:
    """A page token as a client could make one: base64 of JSON, with no signature of ours."""
    return base64.b64encode(json.dumps(payload).encode()).decode()


async def test_page_tokens_are_signed_and_bound_to_their_query(
    client: TestClient[Any, Any], student: dict[str, str]
) -> None:
    for section in ("SECTION_READING", "SECTION_LISTENING"):
        create = {"scope": "SESSION_SCOPE_SECTION", "section": section, "requestId": uuid.uuid4().hex}
        status, body = await request(client, "POST", "/api/sessions", student, create)
        assert status == 200, body
    status, page = await request(client, "GET", "/api/sessions?pageSize=1", student)
    assert status == 200 and len(page["sessions"]) == 1, page
    issued = page["nextPageToken"]
    status, second = await request(client, "GET", f"/api/sessions?pageSize=1&pageToken={issued}", student)
    assert status == 200 and second["sessions"][0]["sessionId"] != page["sessions"][0]["sessionId"]
    # "WyJ4IiwgMV0=" is base64 of ["x", 1]: each of these was answered 500 when tokens were plain JSON.
    odd = ["WyJ4IiwgMV0=", unsigned([None, "x"]), unsigned([1e400, "x"]), unsigned([[1], "x"])]
    # A token of ours with one character changed, and an unsigned copy of a real position.
    altered = issued[:5] + ("A" if issued[5] != "A" else "B") + issued[6:]
    forged = [unsigned([0, page["sessions"][0]["sessionId"]]), altered, issued + "x", "%%%", "a.b.c", "x" * 600]
    cases = [("", t) for t in odd + forged]
    # Of another query: other filters, another caller, another list.
    cases.append(("&state=SESSION_STATE_FINISHED", issued))
    status, items = await request(client, "GET", "/api/items?pageSize=1", TEACHER)
    assert status == 200 and items["nextPageToken"]
    cases.append(("", items["nextPageToken"]))
    for extra, page_token in cases:
        url = f"/api/sessions?pageSize=1{extra}&pageToken={quote(page_token)}"
        status, body = await request(client, "GET", url, student)
        assert (status, body["code"]) == (400, 3), (page_token, body)
        assert "page_token" in json.dumps(body), body
    status, body = await request(client, "GET", f"/api/sessions?pageSize=1&pageToken={issued}", ADMIN)
    assert (status, body["code"]) == (400, 3), body
    status, body = await request(
        client, "GET", f"/api/passages?pageSize=1&pageToken={items['nextPageToken']}", TEACHER
    )
    assert (status, body["code"]) == (400, 3), body


async def test_author_partial_update_with_field_mask(client: TestClient[Any, Any]) -> None:
    status, page = await request(client, "GET", "/api/items?pageSize=1&view=ITEM_VIEW_FULL", AUTHOR)
    assert status == 200, page
    draft = {
        key: value
        for key, value in page["items"][0].items()
        if key
        not in {"itemId", "etag", "revision", "status", "externalId", "createTime", "updateTime", "passageId"}
    }
    # Only a DRAFT's content may change: create one (body "item", request_id from the query) and edit that.
    status, item = await request(client, "POST", f"/api/items?requestId={uuid.uuid4().hex}", AUTHOR, draft)
    assert status == 200, item
    assert item["status"] == "ITEM_STATUS_DRAFT"
    body = {"etag": item["etag"], "content": {"prompt": "A clearer prompt."}}
    url = f"/api/items/{item['itemId']}?updateMask=content.prompt&note=gateway%20test"
    status, updated = await request(client, "PATCH", url, AUTHOR, body)
    assert status == 200, updated
    assert updated["content"]["prompt"] == "A clearer prompt."
    assert int(updated["revision"]) == int(item["revision"]) + 1
    status, stale = await request(client, "PATCH", url, AUTHOR, body)
    assert status == 409 and stale["code"] == 10


async def test_export_streams_ndjson(client: TestClient[Any, Any]) -> None:
    url = "/api/items:export?section=SECTION_WRITING&taskType=TASK_TYPE_WRITE_AN_EMAIL"
    status, text = await request(client, "GET", url, ADMIN)
    assert status == 200
    records = [json.loads(line) for line in text.splitlines()]
    assert records and all(set(record) == {"result"} for record in records)
    assert all(record["result"]["item"]["taskType"] == "TASK_TYPE_WRITE_AN_EMAIL" for record in records)


async def test_malformed_json_and_unknown_route(client: TestClient[Any, Any], student: dict[str, str]) -> None:
    headers = {**student, "Content-Type": "application/json"}
    async with client.post("/api/sessions", data=b"{oops", headers=headers) as response:
        assert response.status == 400
        assert (await response.json())["code"] == 3
    status, body = await request(client, "GET", "/api/nothing-here", student)
    assert status == 404 and body["code"] == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": 7}, "scope"),
        ({"scope": -1}, "scope"),
        ({"scope": "SESSION_SCOPE_SECTION", "section": 9}, "section"),
        ({"scope": "SESSION_SCOPE_NOWHERE"}, "scope"),
    ],
    ids=["scope 7", "scope -1", "section 9", "unknown name"],
)
async def test_unknown_enum_values_are_400_naming_the_field(
    client: TestClient[Any, Any], student: dict[str, str], body: dict[str, Any], field: str
) -> None:
    status, answer = await request(client, "POST", "/api/sessions", student, body)
    assert status == 400, answer
    assert answer["code"] == 3 and field in answer["message"], answer


async def test_a_sitting_is_watched_as_server_sent_events_and_the_audit_log_exported_as_json_lines(
    client: TestClient[Any, Any],
) -> None:
    status, teacher = await request(
        client,
        "POST",
        "/api/users",
        ADMIN,
        {"username": f"gw-teacher-{uuid.uuid4().hex[:8]}", "role": "ROLE_TEACHER", "password": PASSWORD},
    )
    assert status == 200, teacher
    status, room = await request(
        client, "POST", "/api/classes", ADMIN, {"name": "Room 4", "teacherId": teacher["userId"]}
    )
    assert status == 200, room
    body = {
        "classId": room["classId"],
        "scope": "SESSION_SCOPE_SECTION",
        "section": "SECTION_WRITING",
        "openTime": "2026-01-01T08:00:00Z",
        "closeTime": "2026-01-01T12:00:00Z",
    }
    status, sitting = await request(client, "POST", "/api/sittings", ADMIN, body)
    assert status == 200, sitting
    url = f"/api/sittings/{sitting['sittingId']}:watch?maxViews=1"
    async with client.get(url, headers={**ADMIN, "Accept": "text/event-stream"}) as response:
        assert response.status == 200 and response.content_type == "text/event-stream"
        events = [block for block in (await response.text()).split("\n\n") if block]
    (event,) = events
    view = json.loads(event.removeprefix("data: "))["result"]
    assert view["sittingId"] == sitting["sittingId"] and view.get("seats", []) == []
    async with client.get(f"/api/auditEntries:export?targetId={sitting['sittingId']}", headers=ADMIN) as response:
        assert response.status == 200 and response.content_type == "application/x-ndjson"
        (line,) = (await response.text()).splitlines()
    assert json.loads(line)["action"] == "create_sitting"
