"""The role matrix: one table of role x route -> allow/deny, checked through the gateway and by direct gRPC."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import grpc
import pytest
from google.api import httpbody_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from toefl.common.v1 import ownership_pb2
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from gateway.backends import toefl_backends
from gateway.routes import Route, Router, build_routes
from gateway.transcoder import RequestBuilder
from tests.gateway.conftest import gateway_settings
from tests.security.conftest import Stack
from tests.support.audio import WAV, spoken_answer
from tests.support.exam import PASSWORD, answer, full_items
from tests.support.tokens import token
from toefl_core.auth import Role

ROLES = ("anonymous", "student", "teacher", "rater", "author", "admin", "service")
# Students read no bank item or passage directly (only their own module's, through the session routes): a bank
# they could read, with a score per answer, would let them harvest the keys.
# A = allowed; O = allowed on the caller's own data (the student's own account and sessions); C = allowed for a
# student of one of the teacher's classes; - = denied (401 for anonymous, 403 for everyone else); N = denied as if
# it did not exist (401 for anonymous, 404 for everyone else: a recording's existence is not told).
# The requests name the data of one student, S, in a class of the teacher T; the student caller is S.
MATRIX = {
    #                                                      anon stud teach rater author admin service
    "POST /api/auth/token": "A A A A A A A",
    # The refresh token is the credential: no bearer needed (the access token may have lapsed by then).
    "POST /api/auth/token:refresh": "A A A A A A A",
    "POST /api/auth/signOut": "A A A A A A A",
    "POST /api/users": "- - - - - A -",
    "POST /api/users/{user_id}:revokeTokens": "- - - - - A -",
    "GET /api/users/{user_id}": "- O C - - A A",
    "POST /api/classes": "- - A - - A -",
    "GET /api/classes": "- - A - - A -",
    "POST /api/sessions": "- O C - - A -",
    "GET /api/sessions": "- O C - - A A",
    "GET /api/sessions/{session_id}": "- O C - - A A",
    "GET /api/sessions/{session_id}/module": "- O C - - A A",
    "PUT /api/sessions/{session_id}/responses/{item_id}": "- O - - - - -",
    "POST /api/sessions/{session_id}:advance": "- O - - - A -",
    "POST /api/sessions/{session_id}:finish": "- O - - - A -",
    "POST /api/sessions/{session_id}/events:batchCreate": "- O - - - - -",
    "GET /api/sessions/{session_id}/scoreReport": "- O C - - A -",
    "GET /api/sessions/{session_id}/scores": "- O C - - A -",
    "POST /api/sessions/{session_id}:rescore": "- - - - - A A",
    "GET /api/classes/{class_id}/roster": "- - C - - A -",
    "GET /api/ratingTasks": "- - - A - A -",
    "POST /api/ratingTasks/{response_id}:rate": "- - - A - A -",
    "GET /api/raterStatistics": "- - - A - A -",
    "GET /api/analytics": "- - - - - A -",
    "GET /api/students/{student_id}:export": "- O - - - A -",
    "GET /api/students/{student_id}:exportArchive": "- O - - - A -",
    "POST /api/sessions/{session_id}/recordings/{item_id}": "- O - - - - -",
    # A rater hears a recording only through a rating task of it; the world's has none yet.
    "GET /api/recordings/{audio_ref}": "- O C N N A N",
    # Prompt audio by hash, without a signed link: the roles that read the bank.
    "GET /api/media/{sha256}": "- - A A A A A",
    "POST /api/students/{student_id}:erase": "- - - - - A -",
    "GET /api/items": "- - A A A A A",
    "POST /api/items": "- - - - A A -",
    "POST /api/items:batchGet": "- - A A A A A",
    "GET /api/items:export": "- - - - A A A",
    "POST /api/items:import": "- - - - - A -",
    "GET /api/items/{item_id}": "- - A A A A A",
    "PATCH /api/items/{item_id}": "- - - - A A -",
    "GET /api/items/{item_id}/revisions": "- - A A A A A",
    "GET /api/items/{item_id}/reviews": "- - - - A A A",
    "GET /api/items/{item_id}/statistics": "- - - - A A A",
    "POST /api/items/{item_id}:submitForReview": "- - - - A A -",
    "POST /api/items/{item_id}:review": "- - - - A A -",
    "POST /api/items/{item_id}:activate": "- - - - A A -",
    "POST /api/items/{item_id}:pretest": "- - - - A A -",
    "POST /api/items/{item_id}:retire": "- - - - A A -",
    "GET /api/passages": "- - A A A A A",
    "GET /api/passages/{passage_id}": "- - A A A A A",
    # Sittings are run by the teacher of their class (C: T's class) and admins; its students read them.
    "POST /api/sittings": "- - C - - A -",
    "GET /api/sittings": "- O C - - A -",
    "GET /api/sittings/{sitting_id}": "- O C - - A -",
    "PATCH /api/sittings/{sitting_id}": "- - C - - A -",
    "GET /api/sittings/{sitting_id}:watch": "- - C - - A -",
    "PUT /api/students/{student_id}/accommodation": "- - C - - A -",
    "GET /api/students/{student_id}/accommodation": "- O C - - A -",
    # A proctor's actions on a session of a sitting of T's class.
    "POST /api/sessions/{session_id}:pause": "- - C - - A -",
    "POST /api/sessions/{session_id}:resume": "- - C - - A -",
    "POST /api/sessions/{session_id}:extend": "- - C - - A -",
    "POST /api/sessions/{session_id}:void": "- - C - - A -",
    "GET /api/auditEntries": "- - - - - A -",
    "GET /api/auditEntries:export": "- - - - - A -",
    "GET /api/itemAuditEntries": "- - - - - A -",
}
# RPCs with no HTTP route: reached by our own services and jobs only, over gRPC.
GRPC_ONLY = {
    "item_service /toefl.item.v1.ItemService/AssembleModule": "- - - - - A A",
    "item_service /toefl.item.v1.ItemService/AssembleModules": "- - - - - A A",
    "item_service /toefl.item.v1.ItemService/WriteItemStatistics": "- - - - - A A",
    # The calibration job's estimates, put in review (never active on their own).
    "item_service /toefl.item.v1.ItemService/ProposeItemParameters": "- - - - - A A",
    "session_service /toefl.session.v1.ScoringService/BatchRescoreSessions": "- - - - - A A",
    "session_service /toefl.session.v1.ScoringService/ListFinishedSessions": "- - - - - A A",
    "session_service /toefl.session.v1.ScoringService/ExportResponses": "- - - - - A A",
    # Names the database and a fingerprint; the gateway's readiness check reads it with a service token.
    "item_service /toefl.common.v1.DatabaseOwnership/GetDatabaseOwnership": "- - - - - A A",
    "session_service /toefl.common.v1.DatabaseOwnership/GetDatabaseOwnership": "- - - - - A A",
}
ALLOWED = frozenset("AOC")
# The gateway's own list of backends and its route table, built as create_app builds them.
BACKENDS = toefl_backends(gateway_settings(item_service_addr="127.0.0.1:1", session_service_addr="127.0.0.1:2"))
ROUTES = build_routes(
    ((backend.name, service) for backend in BACKENDS for service in backend.services),
    frozenset().union(*(backend.public_methods for backend in BACKENDS)),
)
OWNERSHIP = ownership_pb2.DESCRIPTOR.services_by_name["DatabaseOwnership"]
ROUTER = Router(ROUTES)
DENIED_CODES = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
BROKEN_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE}


def row(key: str, table: dict[str, str]) -> dict[str, str]:
    return dict(zip(ROLES, table[key].split(), strict=True))


# ---- the world the requests name


@dataclass
class World:
    stack: Stack
    users: dict[str, pb.User]
    student: pb.User
    teacher: pb.User
    class_id: str
    active_item_id: str
    passage_id: str
    email_item: item_pb2.Item
    shared_session: pb.Session
    # A sitting of T's class, open now.
    sitting_id: str = ""
    # A recording of S's, and the SHA-256 of a prompt in the bank.
    audio_ref: str = ""
    media_digest: str = ""
    _counter: list[int] = field(default_factory=lambda: [0])

    @property
    def sessions(self) -> session_service_pb2_grpc.SessionServiceStub:
        return session_service_pb2_grpc.SessionServiceStub(self.stack.channels["session_service"])

    @property
    def items(self) -> item_service_pb2_grpc.ItemServiceStub:
        return item_service_pb2_grpc.ItemServiceStub(self.stack.channels["item_service"])

    def new_user(self, role: pb.Role.ValueType, class_id: str = "") -> pb.User:
        username = f"mx-{uuid.uuid4().hex[:12]}"
        user = pb.User(username=username, display_name=username, role=role, password=PASSWORD)
        return self.sessions.CreateUser(pb.CreateUserRequest(user=user, class_id=class_id), metadata=as_admin())

    def new_session(self, student: pb.User) -> pb.Session:
        return self.sessions.CreateSession(
            pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_WRITING),
            metadata=bearer(token(Role.STUDENT, student.user_id)),
        )

    def new_sitting_session(self, student: pb.User) -> pb.Session:
        return self.sessions.CreateSession(
            pb.CreateSessionRequest(sitting_id=self.sitting_id),
            metadata=bearer(token(Role.STUDENT, student.user_id)),
        )

    def new_draft(self) -> str:
        request = item_service_pb2.CreateItemRequest(item=self.email_item)
        return self.items.CreateItem(request, metadata=bearer(token(Role.AUTHOR, "mx-author"))).item_id


def bearer(access_token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {access_token}"),)


def as_admin() -> tuple[tuple[str, str], ...]:
    return bearer(token(Role.ADMIN, "mx-admin"))


def draft_content(stub: item_service_pb2_grpc.ItemServiceStub) -> item_pb2.Item:
    """What a new draft needs, copied from an active Write an Email item (so that it passes QA)."""
    model = stub.ListItems(
        item_service_pb2.ListItemsRequest(
            task_type=item_pb2.TASK_TYPE_WRITE_AN_EMAIL,
            status=item_pb2.ITEM_STATUS_ACTIVE,
            view=item_pb2.ITEM_VIEW_FULL,
            page_size=1,
        ),
        metadata=bearer(token(Role.AUTHOR, "mx-author")),
    ).items[0]
    return item_pb2.Item(
        task_type=model.task_type,
        content=model.content,
        answer_key=model.answer_key,
        irt=model.irt,
        rubric=model.rubric,
    )


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    sessions = session_service_pb2_grpc.SessionServiceStub(stack.channels["session_service"])
    items = item_service_pb2_grpc.ItemServiceStub(stack.channels["item_service"])
    bootstrap = World(
        stack=stack,
        users={},
        student=pb.User(),
        teacher=pb.User(),
        class_id="",
        active_item_id="",
        passage_id="",
        email_item=draft_content(items),
        shared_session=pb.Session(),
    )
    teacher = bootstrap.new_user(pb.ROLE_TEACHER)
    own_class = sessions.CreateClass(
        pb.CreateClassRequest(name="Matrix class", teacher_id=teacher.user_id), metadata=as_admin()
    )
    student = bootstrap.new_user(pb.ROLE_STUDENT, own_class.class_id)
    users = {
        "student": student,
        "teacher": teacher,
        "rater": bootstrap.new_user(pb.ROLE_RATER),
        "author": bootstrap.new_user(pb.ROLE_AUTHOR),
        "admin": bootstrap.new_user(pb.ROLE_ADMIN),
    }
    author_md = bearer(token(Role.AUTHOR, "mx-author"))
    active = items.ListItems(item_service_pb2.ListItemsRequest(page_size=1), metadata=author_md).items[0]
    passage = items.ListPassages(item_service_pb2.ListPassagesRequest(page_size=1), metadata=author_md)
    bootstrap.users = users
    bootstrap.student = student
    bootstrap.teacher = teacher
    bootstrap.class_id = own_class.class_id
    bootstrap.active_item_id = active.item_id
    bootstrap.passage_id = passage.passages[0].passage_id
    bootstrap.shared_session = bootstrap.new_session(student)
    bootstrap.sitting_id = sessions.CreateSitting(
        pb.CreateSittingRequest(sitting=sitting_body(own_class.class_id, "SESSION_SCOPE_SECTION")),
        metadata=as_admin(),
    ).sitting_id
    bootstrap.audio_ref, bootstrap.media_digest = _audio(sessions, items, student)
    return bootstrap


def sitting_body(class_id: str, scope: str) -> pb.Sitting:
    """A Writing sitting of the class, open from a minute ago for a day."""
    sitting = pb.Sitting(class_id=class_id, scope=pb.SessionScope.Value(scope), section=item_pb2.SECTION_WRITING)
    sitting.open_time.GetCurrentTime()
    sitting.open_time.seconds -= 60
    sitting.close_time.seconds = sitting.open_time.seconds + 86_400
    return sitting


def _audio(
    sessions: session_service_pb2_grpc.SessionServiceStub,
    items: item_service_pb2_grpc.ItemServiceStub,
    student: pb.User,
) -> tuple[str, str]:
    """A recording S uploaded in a Speaking section, and the SHA-256 of that item's prompt audio."""
    md = bearer(token(Role.STUDENT, student.user_id))
    session = sessions.CreateSession(
        pb.CreateSessionRequest(scope=pb.SESSION_SCOPE_SECTION, section=item_pb2.SECTION_SPEAKING), metadata=md
    )
    item = next(i for i in session.current_module.items if i.task_type == item_pb2.TASK_TYPE_LISTEN_AND_REPEAT)
    content_type, data = spoken_answer(WAV)
    recording = sessions.UploadRecording(
        pb.UploadRecordingRequest(
            session_id=session.session_id,
            item_id=item.item_id,
            request_id=uuid.uuid4().hex,
            audio=httpbody_pb2.HttpBody(content_type=content_type, data=data),
        ),
        metadata=md,
    )
    full = items.GetItem(
        item_service_pb2.GetItemRequest(item_id=item.item_id), metadata=bearer(token(Role.AUTHOR, "mx-author"))
    )
    return recording.audio_ref, full.content.audio_url.removeprefix("sha256:")


@dataclass(frozen=True)
class Caller:
    role: str
    token: str | None
    # The account behind the token ("" for anonymous and for the service principal).
    user_id: str


def caller(world: World, role: str) -> Caller:
    if role == "anonymous":
        return Caller(role, None, "")
    if role == "service":
        return Caller(role, token(Role.SERVICE, "mx-scoring-job"), "")
    user = world.users[role]
    return Caller(role, token(Role(role), user.user_id), user.user_id)


# ---- one request per route; `student` is whose data it names


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None


def answer_body(world: World, session: pb.Session) -> tuple[str, dict[str, Any]]:
    item = full_items(world.items, session.current_module.items[:1])[0]
    body = {"answer": json_format.MessageToDict(answer(item, correct=True)), "requestId": uuid.uuid4().hex}
    return item.item_id, body


def build_call(
    key: str, world: World, who: Caller, student: pb.User, session: pb.Session, class_id: str = ""
) -> Call:
    """The request of route `key` made by `who`, naming `student`, their `session` and class (default T's)."""
    method, template = key.split(" ", 1)
    sid = session.session_id
    item_id = world.active_item_id
    body: Any = None
    path = template
    if key == "POST /api/auth/token":
        body = {"username": student.username, "password": PASSWORD}
    elif key in {"POST /api/auth/token:refresh", "POST /api/auth/signOut"}:
        signed = world.sessions.Authenticate(pb.AuthenticateRequest(username=student.username, password=PASSWORD))
        body = {"refreshToken": signed.refresh_token}
    elif key == "POST /api/users":
        body = {"username": f"mx-{uuid.uuid4().hex[:12]}", "role": "ROLE_STUDENT", "password": PASSWORD}
    elif key == "POST /api/classes":
        body = {"name": "Another class", "teacherId": world.teacher.user_id}
    elif key == "POST /api/sessions":
        body = {"studentId": student.user_id, "scope": "SESSION_SCOPE_SECTION", "section": "SECTION_WRITING"}
    elif key == "GET /api/sessions":
        path = f"/api/sessions?studentId={student.user_id}"
    elif key == "PUT /api/sessions/{session_id}/responses/{item_id}":
        item_id, body = answer_body(world, session)
    elif key == "POST /api/sessions/{session_id}:advance":
        body = {"requestId": uuid.uuid4().hex}
    elif key == "POST /api/sessions/{session_id}/events:batchCreate":
        body = {"events": [{"type": "EVENT_TYPE_FOCUS_LOST"}]}
    elif key == "POST /api/students/{student_id}:erase":
        body = {"reason": "security matrix"}
    elif key == "POST /api/sittings":
        body = json_format.MessageToDict(sitting_body(world.class_id, "SESSION_SCOPE_SECTION"))
    elif key == "GET /api/sittings/{sitting_id}:watch":
        # One view, then the stream ends (a proctor's page keeps it open).
        path = f"{template}?maxViews=1"
    elif key == "PATCH /api/sittings/{sitting_id}":
        body = {"title": "Renamed"}
        path = f"{template}?updateMask=title"
    elif key == "PUT /api/students/{student_id}/accommodation":
        body = {"extraTimeMultiplier": 1.5, "reason": "security matrix"}
    elif key in PROCTORING:
        body = {
            "requestId": uuid.uuid4().hex,
            "reason": "security matrix",
            **({"minutes": 5} if "extend" in key else {}),
        }
    elif key == "POST /api/sessions/{session_id}:rescore":
        body = {"dryRun": True}
    elif key == "POST /api/ratingTasks/{response_id}:rate":
        body = {"score": 3, "requestId": uuid.uuid4().hex}
    elif key == "GET /api/items" or key == "GET /api/passages":
        path = f"{template}?pageSize=1"
    elif key == "POST /api/items":
        body = json_format.MessageToDict(world.email_item)
    elif key == "POST /api/items:batchGet":
        body = {"items": [{"itemId": world.active_item_id}]}
    elif key == "GET /api/items:export":
        path = f"{template}?taskType=TASK_TYPE_WRITE_AN_EMAIL&status=ITEM_STATUS_DRAFT"
    elif key == "POST /api/sessions/{session_id}/recordings/{item_id}":
        # Not audio: an allowed caller is refused for the body (415), after authorization.
        body = {}
        path = f"{template}?requestId={uuid.uuid4().hex}"
    elif key == "POST /api/items:import":
        body = {"dryRun": True}
    elif key == "PATCH /api/items/{item_id}":
        item_id = world.new_draft()
        body = {}
        path = f"{template}?note=security+matrix"
    elif key == "POST /api/items/{item_id}:review":
        item_id = world.new_draft()
        body = {"verdict": "REVIEW_VERDICT_REJECT", "comment": "security matrix"}
    elif key in {
        "POST /api/items/{item_id}:retire",
        "POST /api/items/{item_id}:activate",
        "POST /api/items/{item_id}:pretest",
    }:
        item_id = world.new_draft()
        body = {}
    elif key in {
        "POST /api/items/{item_id}:submitForReview",
        "GET /api/items/{item_id}/reviews",
        "GET /api/items/{item_id}/statistics",
    }:
        item_id = world.new_draft()
        body = {} if method == "POST" else None
    elif method == "POST":
        body = {}
    path = path.format(
        class_id=class_id or world.class_id,
        # No rating task has this id: an allowed caller learns NOT_FOUND, after authorization.
        response_id=987654321,
        user_id=student.user_id,
        session_id=sid,
        student_id=student.user_id,
        item_id=item_id,
        passage_id=world.passage_id,
        audio_ref=world.audio_ref,
        sha256=world.media_digest,
        sitting_id=world.sitting_id,
    )
    return Call(method, path, body)


PROCTORING = frozenset(
    {
        "POST /api/sessions/{session_id}:pause",
        "POST /api/sessions/{session_id}:resume",
        "POST /api/sessions/{session_id}:extend",
        "POST /api/sessions/{session_id}:void",
    }
)
MUTATING = frozenset(
    {
        "PUT /api/sessions/{session_id}/responses/{item_id}",
        "POST /api/sessions/{session_id}:advance",
        "POST /api/sessions/{session_id}:finish",
        "POST /api/sessions/{session_id}/events:batchCreate",
    }
)


def subject_of(key: str, world: World, who: Caller) -> tuple[pb.User, pb.Session]:
    """Whose data the request names: the student S, except that an erase never targets S for someone allowed."""
    if key == "POST /api/students/{student_id}:erase" and who.role != "student":
        # A throwaway student in T's class, so that an allowed erase never takes the data the other cells use.
        throwaway = world.new_user(pb.ROLE_STUDENT, world.class_id)
        return throwaway, pb.Session()
    if key in PROCTORING:
        return world.student, world.new_sitting_session(world.student)
    session = world.new_session(world.student) if key in MUTATING else world.shared_session
    return world.student, session


# ---- sending one call through the gateway and directly


def via_gateway(stack: Stack, who: Caller, call: Call) -> tuple[int, dict[str, Any]]:
    return stack.gateway.request(call.method, call.path, token=who.token, body=call.body)


def grpc_request(call: Call) -> tuple[Route, Message]:
    """The request message the gateway would send for `call`, built by the gateway's own transcoder."""
    parts = urlsplit(call.path)
    match = ROUTER.resolve(call.method, parts.path)
    body = b"" if call.body is None else json.dumps(call.body).encode()
    message = RequestBuilder(match.route).build(match.path_params, parse_qsl(parts.query), body)
    return match.route, message


def invoke(
    channel: grpc.Channel, path: str, message: Message, response: type[Message], who: Caller, streaming: bool
) -> grpc.StatusCode:
    metadata = () if who.token is None else bearer(who.token)
    try:
        if streaming:
            stream = channel.unary_stream(path, message.SerializeToString, response.FromString)
            list(stream(message, metadata=metadata, timeout=30))
        else:
            unary = channel.unary_unary(path, message.SerializeToString, response.FromString)
            unary(message, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def via_grpc(stack: Stack, who: Caller, call: Call) -> grpc.StatusCode:
    route, message = grpc_request(call)
    return invoke(
        stack.channels[route.backend], route.grpc_path, message, route.response_class, who, route.server_streaming
    )


def check_http(expected: str, who: Caller, status: int, body: dict[str, Any]) -> None:
    if expected in ALLOWED:
        assert status not in (401, 403) and status < 500, body
    elif who.role == "anonymous":
        assert status == 401, body
    else:
        assert status == (404 if expected == "N" else 403), body


def check_grpc(expected: str, who: Caller, code: grpc.StatusCode) -> None:
    if expected in ALLOWED:
        assert code not in DENIED_CODES | BROKEN_CODES, code
    elif who.role == "anonymous":
        assert code == grpc.StatusCode.UNAUTHENTICATED
    else:
        assert code == (grpc.StatusCode.NOT_FOUND if expected == "N" else grpc.StatusCode.PERMISSION_DENIED)


CELLS = [(key, role) for key in MATRIX for role in ROLES]


def cell_id(cell: tuple[str, str]) -> str:
    return f"{cell[0]} as {cell[1]}"


# ---- the table covers everything there is


def test_the_table_has_a_row_for_every_route_of_the_gateway(stack: Stack) -> None:
    status, document = stack.gateway.request("GET", "/openapi.json")
    assert status == 200
    served = {f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops}
    assert served == set(MATRIX), "every route needs a row in MATRIX (and every row a route)"


def all_rpcs() -> Iterable[str]:
    """Every RPC of every backend, DatabaseOwnership included where the backend owns a database."""
    for backend in BACKENDS:
        services = (*backend.services, OWNERSHIP) if backend.expected_owner else backend.services
        for service in services:
            for method in service.methods:
                yield f"{backend.name} /{service.full_name}/{method.name}"


def test_every_rpc_is_in_a_table() -> None:
    routed = {f"{route.backend} {route.grpc_path}" for route in ROUTES}
    assert routed.isdisjoint(GRPC_ONLY)
    assert set(all_rpcs()) == routed | set(GRPC_ONLY)


# ---- every cell, through the gateway and directly


@pytest.mark.parametrize("cell", CELLS, ids=cell_id)
def test_gateway_cell(world: World, cell: tuple[str, str]) -> None:
    key, role = cell
    who = caller(world, role)
    student, session = subject_of(key, world, who)
    status, body = via_gateway(world.stack, who, build_call(key, world, who, student, session))
    check_http(row(key, MATRIX)[role], who, status, body)


@pytest.mark.parametrize("cell", CELLS, ids=cell_id)
def test_grpc_cell(world: World, cell: tuple[str, str]) -> None:
    key, role = cell
    who = caller(world, role)
    student, session = subject_of(key, world, who)
    check_grpc(
        row(key, MATRIX)[role], who, via_grpc(world.stack, who, build_call(key, world, who, student, session))
    )


def method_classes(path: str) -> tuple[type[Message], type[Message], bool]:
    service_name, method_name = path.strip("/").split("/")
    service = OWNERSHIP if service_name == OWNERSHIP.full_name else None
    for backend in BACKENDS:
        for candidate in backend.services:
            if candidate.full_name == service_name:
                service = candidate
    assert service is not None, path
    method = service.methods_by_name[method_name]
    return GetMessageClass(method.input_type), GetMessageClass(method.output_type), method.server_streaming


@pytest.mark.parametrize("cell", [(key, role) for key in GRPC_ONLY for role in ROLES], ids=cell_id)
def test_grpc_only_cell(world: World, cell: tuple[str, str]) -> None:
    key, role = cell
    backend, path = key.split(" ", 1)
    request, response, streaming = method_classes(path)
    who = caller(world, role)
    # An empty request: authorization comes before any check of the arguments.
    code = invoke(world.stack.channels[backend], path, request(), response, who, streaming)
    check_grpc(row(key, GRPC_ONLY)[role], who, code)


# ---- ownership: another student's ids, a teacher outside their classes


ID_BEARING = [
    key
    for key in MATRIX
    if any(name in key for name in ("{session_id}", "{student_id}", "{user_id}", "{class_id}"))
    or key in {"POST /api/sessions", "GET /api/sessions"}
]


@pytest.fixture(scope="module")
def other(world: World) -> tuple[pb.User, pb.User, str]:
    """Student O in a class of another teacher, and O's class."""
    other_teacher = world.new_user(pb.ROLE_TEACHER)
    their_class = world.sessions.CreateClass(
        pb.CreateClassRequest(name="Not T's class", teacher_id=other_teacher.user_id), metadata=as_admin()
    )
    return world.new_user(pb.ROLE_STUDENT, their_class.class_id), other_teacher, their_class.class_id


@pytest.mark.parametrize("role", ["student", "teacher"])
@pytest.mark.parametrize("key", ID_BEARING)
def test_never_another_students_data(
    world: World, other: tuple[pb.User, pb.User, str], key: str, role: str
) -> None:
    """S (or S's teacher T) names O's account, sessions, answers: refused through the gateway and directly."""
    victim, _their_teacher, their_class = other
    session = world.new_session(victim)
    who = caller(world, role)
    before = world.sessions.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=as_admin())
    status, body = via_gateway(world.stack, who, build_call(key, world, who, victim, session, their_class))
    assert status == 403, body
    code = via_grpc(world.stack, who, build_call(key, world, who, victim, session, their_class))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    after = world.sessions.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=as_admin())
    # Compared field by field: remaining_seconds ticks on its own.
    assert (after.state, list(after.modules)) == (before.state, list(before.modules))
    assert list(after.current_module.responses) == list(before.current_module.responses) == []


def test_lists_hold_only_what_the_caller_may_see(world: World, other: tuple[pb.User, pb.User, str]) -> None:
    victim, _their_teacher, their_class = other
    world.new_session(victim)
    student, teacher = caller(world, "student"), caller(world, "teacher")
    for who in (student, teacher):
        status, body = world.stack.gateway.request("GET", "/api/sessions?pageSize=200", token=who.token)
        assert status == 200, body
        owners = {session["studentId"] for session in body.get("sessions", [])}
        assert owners == {world.student.user_id}, owners
    status, body = world.stack.gateway.request("GET", f"/api/sessions?classId={their_class}", token=teacher.token)
    assert status == 403, body
    status, body = world.stack.gateway.request("GET", "/api/classes", token=teacher.token)
    assert status == 200, body
    classes = body["classes"]
    assert {c["teacherId"] for c in classes} == {world.teacher.user_id}, classes
    assert world.class_id in {c["classId"] for c in classes} and their_class not in {c["classId"] for c in classes}
    assert victim.user_id not in {s for c in classes for s in c.get("studentIds", [])}
