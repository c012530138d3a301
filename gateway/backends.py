"""The gRPC backends the gateway fronts: which services each serves and which database it must own."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor import ServiceDescriptor
from toefl.item.v1 import item_service_pb2
from toefl.session.v1 import scoring_service_pb2, session_service_pb2

from gateway.config import GatewaySettings
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


ITEM_SERVICE = item_service_pb2.DESCRIPTOR.services_by_name["ItemService"]
SESSION_SERVICE = session_service_pb2.DESCRIPTOR.services_by_name["SessionService"]


def toefl_backends(settings: GatewaySettings) -> tuple[Backend, ...]:
    """The services of the exam platform: the one list of descriptors the gateway fronts."""
    return (
        Backend("item_service", settings.item_service_addr, (ITEM_SERVICE,), ITEM_BANK_OWNER),
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
        ),
    )
