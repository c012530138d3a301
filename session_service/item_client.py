"""The gRPC client of item_service (service token, deadlines, retries with backoff) and the module item cache."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc

from session_service.views import student_item, student_passage
from toefl_core.auth import ServiceToken
from toefl_core.channels import RECONNECT_OPTIONS
from toefl_core.errors import FailedPrecondition, Unavailable
from toefl_core.grpc_errors import error_info, status_code_name, status_error_info
from toefl_core.lru import LRU

log = logging.getLogger(__name__)
SERVICE_SUBJECT = "session_service"
UNAVAILABLE_MESSAGE = "the item service is unavailable; your answers are saved; try again shortly"
# Status codes worth another attempt: the service is restarting, overloaded, or the attempt ran out of time.
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
ATTEMPT_TIMEOUT_SECONDS = 5.0
FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 2.0
# How long before the caller's own deadline we stop calling item_service: time left to write the reply.
DEADLINE_MARGIN_SECONDS = 0.5
# BatchGetItems takes at most this many items per call.
BATCH_GET_LIMIT = 500
CONNECT_WITHIN_SECONDS = 120.0
R = TypeVar("R")


ASSEMBLE = "assemble the module"
# AssembleModules takes at most this many modules per call.
ASSEMBLE_BATCH_LIMIT = 64


def module_request(
    *,
    spec: item_service_pb2.ModuleSpec,
    exclude_item_ids: Sequence[str],
    seed: int,
    pretest_administrations: Mapping[str, int] | None = None,
) -> item_service_pb2.AssembleModuleRequest:
    """A module's assembly in the FULL view (keys and parameters stay server-side)."""
    return item_service_pb2.AssembleModuleRequest(
        spec=spec,
        exclude_item_ids=exclude_item_ids,
        seed=seed,
        view=item_pb2.ITEM_VIEW_FULL,
        pretest_administrations=pretest_administrations or {},
    )


def _refusal(what: str, code: str, message: str, info: error_details_pb2.ErrorInfo | None) -> FailedPrecondition:
    """item_service's refusal of a call, or of one entry of a batch: its reason (an exhausted item pool, say) is
    what the caller acts on, so it passes through."""
    log.error("item service refused to %s: %s %s", what, code, message)
    return FailedPrecondition(
        f"the item service could not {what}: {message}",
        reason=info.reason if info is not None else "ITEM_SERVICE_REFUSED",
        metadata=dict(info.metadata) if info is not None else None,
    )


def call_budget(time_remaining: float | None) -> float | None:
    """What a call to item_service may take within an RPC that has `time_remaining` seconds left (None: no
    deadline)."""
    return None if time_remaining is None else max(0.0, time_remaining - DEADLINE_MARGIN_SECONDS)


class ItemClient:
    """Calls item_service on the session service's own behalf (Role.SERVICE)."""

    def __init__(self, *, address: str, token_key: str, retry_seconds: float) -> None:
        self._address = address
        self._channel = grpc.aio.insecure_channel(address, options=RECONNECT_OPTIONS)
        self._stub = item_service_pb2_grpc.ItemServiceStub(self._channel)
        self._token = ServiceToken(token_key, subject=SERVICE_SUBJECT)
        self._retry_seconds = retry_seconds

    async def connect(self, within_seconds: float = CONNECT_WITHIN_SECONDS) -> None:
        """Look item_service up and connect once at start, so that the first student to start a test does not wait
        for it (a container network's resolver can take seconds per look-up); logs how long it took."""
        started = time.monotonic()
        try:
            await asyncio.wait_for(self._channel.channel_ready(), within_seconds)
        except TimeoutError:
            log.warning(
                "item service at %s not reachable %g s after start; calls that need it retry, then answer 503",
                self._address,
                within_seconds,
            )
            return
        log.info("connected to the item service at %s in %.2f s", self._address, time.monotonic() - started)

    async def assemble_module(
        self, request: item_service_pb2.AssembleModuleRequest, *, budget_seconds: float | None = None
    ) -> item_service_pb2.AssembleModuleResponse:
        """One module (`module_request`); retries within the budget, then UNAVAILABLE."""
        return await self._call(self._stub.AssembleModule, request, ASSEMBLE, budget_seconds)

    async def assemble_modules(
        self, requests: Sequence[item_service_pb2.AssembleModuleRequest], *, budget_seconds: float | None = None
    ) -> list[item_service_pb2.AssembleModuleResponse | FailedPrecondition]:
        """Each module as `assemble_module` would assemble it, in calls of at most `ASSEMBLE_BATCH_LIMIT`; a module
        item_service could not assemble is its refusal, in its place. Retries each call within the budget, then
        UNAVAILABLE (for all)."""
        outcomes: list[item_service_pb2.AssembleModuleResponse | FailedPrecondition] = []
        for start in range(0, len(requests), ASSEMBLE_BATCH_LIMIT):
            batch = item_service_pb2.AssembleModulesRequest(
                requests=requests[start : start + ASSEMBLE_BATCH_LIMIT]
            )
            reply = await self._call(self._stub.AssembleModules, batch, "assemble the modules", budget_seconds)
            outcomes.extend(
                entry.module
                if entry.HasField("module")
                else _refusal(
                    ASSEMBLE, status_code_name(entry.error), entry.error.message, status_error_info(entry.error)
                )
                for entry in reply.entries
            )
        return outcomes

    async def current_items(
        self, item_ids: Sequence[str], *, budget_seconds: float | None = None
    ) -> list[item_pb2.Item]:
        """The FULL view of the items at their current revision (for rescoring), in the order asked."""
        items: list[item_pb2.Item] = []
        for start in range(0, len(item_ids), BATCH_GET_LIMIT):
            request = item_service_pb2.BatchGetItemsRequest(
                items=[item_service_pb2.ItemRef(item_id=i) for i in item_ids[start : start + BATCH_GET_LIMIT]],
                view=item_pb2.ITEM_VIEW_FULL,
            )
            reply = await self._call(self._stub.BatchGetItems, request, "read the items", budget_seconds)
            items.extend(reply.items)
        return items

    async def _call(
        self, method: Callable[..., Awaitable[R]], request: object, what: str, budget_seconds: float | None
    ) -> R:
        budget = self._retry_seconds if budget_seconds is None else min(self._retry_seconds, budget_seconds)
        give_up = time.monotonic() + max(0.0, budget)
        backoff = FIRST_BACKOFF_SECONDS
        attempt = 0
        while True:
            attempt += 1
            remaining = give_up - time.monotonic()
            timeout = max(0.2, min(ATTEMPT_TIMEOUT_SECONDS, remaining))
            try:
                # wait_for_ready: while item_service restarts, the attempt waits for the connection instead of
                # failing at once, and goes through as soon as the service is back.
                return await method(request, timeout=timeout, metadata=self._token.metadata(), wait_for_ready=True)
            except grpc.aio.AioRpcError as error:
                code = error.code()
                if code not in RETRYABLE:
                    raise _refusal(what, code.name, error.details() or "", error_info(error)) from error
                # Full jitter, so that many sessions waiting for a restarting item_service do not retry in step.
                pause = random.uniform(0, backoff)
                if time.monotonic() + pause >= give_up:
                    log.warning(
                        "item service: %s failed after %d attempts: %s %s",
                        what,
                        attempt,
                        code.name,
                        error.details(),
                    )
                    raise Unavailable(
                        UNAVAILABLE_MESSAGE, reason="ITEM_SERVICE_UNAVAILABLE", retry_after_seconds=1.0
                    ) from error
                await asyncio.sleep(pause)
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)

    async def close(self) -> None:
        await self._channel.close(None)


@dataclass(frozen=True)
class CachedModule:
    """A module's pinned items: FULL for validation and scoring, STUDENT for everything that leaves the service."""

    full_items: dict[str, item_pb2.Item]
    student_items: tuple[item_pb2.Item, ...]
    student_passages: tuple[item_pb2.Passage, ...]


class ModuleCache:
    """LRU of parsed modules by id; a module's pinned items never change, so entries never go stale.

    Modules of different sessions draw on one bank: `parse` keeps one parsed copy of each pinned item and passage
    (by its exact bytes) for every module that holds it, instead of one per module (most of the memory in an exam
    with hundreds of sessions).
    """

    MAX_SHARED = 20_000
    # Above the modules open at once (one per student sitting; twice the 10,000 students one process is meant to
    # carry): an LRU smaller than its working set misses on many answers, and each miss is a read and a parse
    # (at 10,164 students and 8,192 entries the misses queued answers for seconds). An entry holds references to
    # the shared items, about 1-2 kB.
    DEFAULT_CAPACITY = 20_000

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._entries: LRU[str, CachedModule] = LRU(capacity)
        self._items: dict[bytes, tuple[item_pb2.Item, item_pb2.Item]] = {}
        self._passages: dict[bytes, item_pb2.Passage] = {}

    def _item(self, data: bytes) -> tuple[item_pb2.Item, item_pb2.Item]:
        pair = self._items.get(data)
        if pair is None:
            full = item_pb2.Item.FromString(data)
            pair = (full, student_item(full))
            if len(self._items) >= self.MAX_SHARED:
                self._items.clear()
            self._items[data] = pair
        return pair

    def _passage(self, data: bytes) -> item_pb2.Passage:
        passage = self._passages.get(data)
        if passage is None:
            passage = student_passage(item_pb2.Passage.FromString(data))
            if len(self._passages) >= self.MAX_SHARED:
                self._passages.clear()
            self._passages[data] = passage
        return passage

    def parse(self, items: Sequence[bytes], passages: Sequence[bytes]) -> CachedModule:
        """The module of these pinned FULL items and passages; safe on any thread (at worst parsed twice)."""
        pairs = [self._item(data) for data in items]
        return CachedModule(
            full_items={full.item_id: full for full, _ in pairs},
            student_items=tuple(student for _, student in pairs),
            student_passages=tuple(self._passage(data) for data in passages),
        )

    def get(self, module_id: str) -> CachedModule | None:
        return self._entries.get(module_id)

    def drop(self, module_id: str) -> None:
        """Forget a module that takes no more answers (closed, or its session finished): only open modules are
        read for answering, and a finished exam's modules would otherwise fill the cache for hours."""
        self._entries.pop(module_id)

    def put(self, module_id: str, entry: CachedModule) -> None:
        self._entries.put(module_id, entry)
