"""The gRPC backends the gateway fronts: which services each serves and which database it must own."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor import ServiceDescriptor
from toefl.item.v1 import item_service_pb2
from toefl.session.v1 import scoring_service_pb2, session_service_pb2

from gateway.config import GatewaySettings
from gateway.openapi import Link
from toefl_core.ownership import ITEM_BANK_OWNER, USER_DATA_OWNER


@dataclass(frozen=True)
class Backend:
    name: str
    # Empty when not configured: its routes answer 503 and /readyz names it.
    address: str
    services: tuple[ServiceDescriptor, ...]
    # The owner its DatabaseOwnership report must name; None for a backend that owns no database.
    expected_owner: str | None = None
    # RPCs callable without a bearer token (full names, e.g. "pkg.Service.Method").
    public_methods: frozenset[str] = frozenset()
    # The largest page_size its List RPCs take (the service's MAX_PAGE_SIZE; a test holds them equal), for the
    # OpenAPI document; None where unknown.
    max_page_size: int | None = None
    # OpenAPI links from its operations' answers to the next calls a client makes with them.
    links: tuple[Link, ...] = ()


ITEM_SERVICE = item_service_pb2.DESCRIPTOR.services_by_name["ItemService"]
SESSION_SERVICE = session_service_pb2.DESCRIPTOR.services_by_name["SessionService"]


_SESSION_ID = "$response.body#/sessionId"
_SAME_SESSION = "$request.path.session_id"
_USER_ID = "$response.body#/userId"
_CLASS_ID = "$response.body#/classId"
_NEXT_PAGE = "$response.body#/nextPageToken"


def _session_links() -> tuple[Link, ...]:
    """A session's life, create to score report, for clients and for schemathesis's stateful phase: the session id
    from the answer, the item to answer from the current module (the first one; any would do)."""
    reads = ("SessionService_GetSession", "SessionService_GetCurrentModule", "SessionService_LogEvents")
    moves = ("SessionService_AdvanceModule", "SessionService_FinishSession")
    scores = ("ScoringService_GetScoreReport", "ScoringService_ListScoreVersions")
    links = [
        Link(source, target, {"session_id": _SESSION_ID})
        for source in ("SessionService_CreateSession", "SessionService_GetSession", "SessionService_AdvanceModule")
        for target in (*reads, *moves, *scores)
    ]
    links += [
        Link(
            source,
            "SessionService_SubmitResponse",
            {"session_id": _SESSION_ID, "item_id": "$response.body#/currentModule/items/0/itemId"},
        )
        for source in ("SessionService_CreateSession", "SessionService_GetSession", "SessionService_AdvanceModule")
    ]
    links.append(
        Link(
            "SessionService_GetCurrentModule",
            "SessionService_SubmitResponse",
            {"session_id": _SAME_SESSION, "item_id": "$response.body#/items/0/itemId"},
        )
    )
    links += [
        Link(source, target, {"session_id": _SAME_SESSION})
        for source in ("SessionService_GetCurrentModule", "SessionService_SubmitResponse")
        for target in ("SessionService_GetCurrentModule", *moves)
        if source != target
    ]
    links += [
        Link("SessionService_FinishSession", target, {"session_id": _SESSION_ID})
        for target in (*scores, "ScoringService_RescoreSession")
    ]
    links += [
        Link("SessionService_CreateUser", "SessionService_GetUser", {"user_id": _USER_ID}),
        Link("SessionService_CreateUser", "SessionService_ExportStudentData", {"student_id": _USER_ID}),
        Link("SessionService_CreateUser", "SessionService_EraseStudentData", {"student_id": _USER_ID}),
        Link("SessionService_CreateClass", "ScoringService_GetClassRoster", {"class_id": _CLASS_ID}),
    ]
    # The next page: a page token is signed by the service, so only one it issued is a valid one.
    lists = ("SessionService_ListClasses", "SessionService_ListSessions", "ScoringService_ListRatingTasks")
    links += [Link(name, name, {"page_token": _NEXT_PAGE}) for name in lists]
    return tuple(links)


def _item_links() -> tuple[Link, ...]:
    """An item's life as its author and reviewers see it, and the next page of each list."""
    targets = (
        "ItemService_GetItem",
        "ItemService_UpdateItem",
        "ItemService_ListItemRevisions",
        "ItemService_SubmitForReview",
        "ItemService_ListReviews",
        "ItemService_RetireItem",
        "ItemService_GetItemStatistics",
    )
    links = [
        Link(source, target, {"item_id": "$response.body#/itemId"})
        for source in ("ItemService_CreateItem", "ItemService_UpdateItem")
        for target in targets
    ]
    links += [
        Link(name, name, {"page_token": _NEXT_PAGE, **({"item_id": "$request.path.item_id"} if path else {})})
        for name, path in (
            ("ItemService_ListItems", False),
            ("ItemService_ListPassages", False),
            ("ItemService_ListItemRevisions", True),
        )
    ]
    return tuple(links)


def toefl_backends(settings: GatewaySettings) -> tuple[Backend, ...]:
    """The services of the exam platform: the one list of descriptors the gateway fronts."""
    return (
        Backend(
            "item_service",
            settings.item_service_addr,
            (ITEM_SERVICE,),
            ITEM_BANK_OWNER,
            # Prompt audio: a student's <audio> element sends no token; a signed link is its permission.
            public_methods=frozenset({ITEM_SERVICE.methods_by_name["GetMedia"].full_name}),
            max_page_size=1000,
            links=_item_links(),
        ),
        Backend(
            "session_service",
            settings.session_service_addr,
            (SESSION_SERVICE, scoring_service_pb2.DESCRIPTOR.services_by_name["ScoringService"]),
            USER_DATA_OWNER,
            # Signing in, renewing with a refresh token and signing out: the access token may have lapsed by then.
            public_methods=frozenset(
                SESSION_SERVICE.methods_by_name[name].full_name
                for name in ("Authenticate", "RefreshToken", "SignOut")
            ),
            max_page_size=200,
            links=_session_links(),
        ),
    )
