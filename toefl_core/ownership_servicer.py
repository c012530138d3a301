"""DatabaseOwnership for both services: which database a process serves, for the gateway's readiness check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from toefl.common.v1 import ownership_pb2, ownership_pb2_grpc

from toefl_core.auth import Role, TokenCache, require_role
from toefl_core.ownership import identify

Context = grpc.aio.ServicerContext[Any, Any]
# The report is for our own operations (the gateway's readiness check mints a service token; an admin may ask
# with grpcurl): it names the database and its fingerprint, which no student or staff member needs.
OWNERSHIP_ROLES = (Role.SERVICE, Role.ADMIN)


class OwnershipServicer(ownership_pb2_grpc.DatabaseOwnershipServicer):
    """Reports the service's database, read from the database's own owner mark and version table.

    `inspect` is the storage package's blocking read of (owner mark, schema revision), None or "" for absent;
    it runs in a worker thread.
    """

    def __init__(
        self,
        *,
        service: str,
        expected_owner: str,
        database_url: str,
        token_key: str,
        inspect: Callable[[], tuple[str | None, str | None]],
    ) -> None:
        self._service = service
        self._expected_owner = expected_owner
        self._identity = identify(database_url)
        self._tokens = TokenCache(token_key)
        self._inspect = inspect

    async def GetDatabaseOwnership(
        self, request: ownership_pb2.GetDatabaseOwnershipRequest, context: Context
    ) -> ownership_pb2.DatabaseOwnershipReport:
        principal = self._tokens.authenticate(context.invocation_metadata())
        require_role(principal, OWNERSHIP_ROLES, "GetDatabaseOwnership")
        owner, revision = await asyncio.to_thread(self._inspect)
        return ownership_pb2.DatabaseOwnershipReport(
            service=self._service,
            owner=owner or "",
            expected_owner=self._expected_owner,
            fingerprint=self._identity.fingerprint,
            backend=self._identity.backend,
            database_name=self._identity.database_name,
            schema_revision=revision or "",
        )
