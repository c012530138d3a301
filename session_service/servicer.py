"""SessionService: authorization, exam flow and privacy on top of the storage functions."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar

import grpc
from google.api import httpbody_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format
from toefl.item.v1 import item_pb2, item_service_pb2
from toefl.session.v1 import session_service_pb2 as pb
from toefl.session.v1 import session_service_pb2_grpc

from session_service import accounts, export, recordings, sign_in, staff, writer
from session_service.access import ANSWER, CONTROL, READ, AccessPolicy, check_request_id, check_session_id
from session_service.blueprint import CURRENT_VERSION, ModulePlan, known_versions, load_blueprint
from session_service.caches import PretestTally, SessionHeads, SharedBodies
from session_service.config import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Settings
from session_service.convert import (
    PROTO_TO_ROLE,
    ROLE_TO_PROTO,
    accommodation_proto,
    answer_form,
    answer_json,
    audit_proto,
    class_proto,
    given_answer,
    module_summary,
    saved_response,
    sitting_proto,
    sitting_view,
    timestamp,
    user_proto,
)
from session_service.decoder import AudioDecoder
from session_service.domain.accommodations import STANDARD, Accommodation, module_seconds
from session_service.domain.accommodations import checked as checked_accommodation
from session_service.domain.answers import (
    SessionHead,
    answer_refusal,
    check_shape,
    late_answer_error,
    too_late,
)
from session_service.domain.limits import check_daily_sessions, utc_day_start_ms
from session_service.domain.modules import (
    deadline_ms,
    first_of_later_section,
    module_seed,
    now_ms,
    remaining_seconds,
)
from session_service.domain.proctoring import (
    EXTEND,
    PAUSE,
    RESUME,
    VOID,
    check_minutes,
    check_reason,
    paused_error,
    remaining_ms,
    voided_error,
)
from session_service.domain.recordings import (
    RECORDING_PREFIX,
    NotAudio,
    audio_ref_refusal,
    check_audio,
    check_size,
    check_speaking,
    check_type,
    max_duration_ms,
    media_type,
    undecodable,
)
from session_service.domain.sign_ins import Verdict
from session_service.domain.sittings import (
    Seat,
    check_access_code,
    check_details,
    check_practice,
    check_window,
    start_refusal,
)
from session_service.domain.states import STATE_IN_PROGRESS, STATUS_OPEN
from session_service.group_writer import GroupWriter
from session_service.item_client import CachedModule, ItemClient, ModuleCache, call_budget, module_request
from session_service.prepare import Candidates, ModulePreparer, due_after_answers
from session_service.routing import router_ability
from session_service.scoring import SessionScorer, answer_from_json
from session_service.section_scoring import PendingScores
from session_service.sign_in import SignInThrottle, client_address
from session_service.storage import accounts as accounts_store
from session_service.storage import answers, privacy, sessions
from session_service.storage import audit as audit_store
from session_service.storage import content as content_store
from session_service.storage import pretest as pretest_store
from session_service.storage import recordings as recordings_store
from session_service.storage import sittings as sittings_store
from session_service.storage.engine import Conflict
from session_service.views import MEDIA_LINK_GRACE_SECONDS, with_signed_audio
from session_service.watch import SittingWatch
from session_service.workers import Workers
from toefl_core import paging
from toefl_core.auth import Principal, Role, mint_token
from toefl_core.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from toefl_core.media import media_signing_key
from toefl_core.scoring import is_pretest

log = logging.getLogger(__name__)
T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]

MAX_EVENTS = 500
# Modules closed per transaction of the deadline sweep.
SWEEP_CHUNK = 32
MAX_EVENT_DETAIL = 1000
# Sent by a client when the student moves to an item: the module's last one is where another device resumes.
ITEM_VIEWED = pb.EventType.Name(pb.EVENT_TYPE_ITEM_VIEWED)
AUDIO_PLAYED = pb.EventType.Name(pb.EVENT_TYPE_AUDIO_PLAYED)
# A recording's bytes never change, but who may hear them does (a rating task ends): a browser asks each time
# and gets a 304 while it has them.
RECORDING_CACHE_CONTROL = "private, no-cache"
EXPORT_CHUNK_BYTES = 1024 * 1024
# Audit entries per read of an export, and the export's media type (JSON lines).
AUDIT_EXPORT_CHUNK = 500
AUDIT_EXPORT_TYPE = "application/x-ndjson"
# The fields UpdateSitting changes (proto names); the class, the test and its scope stay as created.
SITTING_UPDATABLE = ("title", "open_time", "close_time", "access_code")
# A live view ends this long before its call's deadline, cleanly.
WATCH_DEADLINE_MARGIN_SECONDS = 0.5
INVALID_CREDENTIALS = "invalid username or password"
SIGN_IN_ENDED = "the refresh token renews nothing (signed out, revoked, expired or unknown); sign in again"


class SessionServicer(session_service_pb2_grpc.SessionServiceServicer):
    def __init__(
        self,
        *,
        settings: Settings,
        items: ItemClient,
        cache: ModuleCache,
        hashing: accounts.HashingPool,
        workers: Workers,
        scorer: SessionScorer,
        access: AccessPolicy,
        answer_writer: GroupWriter[answers.Submission, answers.SubmitOutcome],
        advance_writer: GroupWriter[writer.Advance, writer.Advanced],
        heads: SessionHeads,
        pages: paging.PageTokens,
        pending_scores: PendingScores,
        decoder: AudioDecoder,
    ) -> None:
        self._settings = settings
        self._decoder = decoder
        self._hashing = hashing
        self._key = settings.common.token_key
        self._media_key = media_signing_key(settings.common.token_key)
        self._access = access
        self._pages = pages
        self._items = items
        self._cache = cache
        self._workers = workers
        self._scorer = scorer
        self._throttle = SignInThrottle(workers, address_failures=settings.sign_in_address_failures)
        self._successors = sign_in.Successors.from_token_key(settings.common.token_key)
        self._answer_writer = answer_writer
        self._advance_writer = advance_writer
        self._heads = heads
        self._pending_scores = pending_scores
        self._pretest = PretestTally()
        self._bodies = SharedBodies()
        self._preparer = ModulePreparer(self._prepare)
        self._advances = asyncio.Semaphore(settings.concurrent_advances)
        self._watch = SittingWatch(look=self._look_at_room, interval=settings.watch_seconds)

    # ---- plumbing

    async def _write(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        return await self._workers.write(fn, **kwargs)

    async def _read(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        return await self._workers.read(fn, **kwargs)

    async def _lookup(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        return await self._workers.lookup(fn, **kwargs)

    async def _cpu(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await self._workers.cpu(fn, *args)

    def _principal(self, context: Context) -> Principal:
        return self._access.principal(context.invocation_metadata())

    async def sweep_forever(self) -> None:
        """Close modules whose deadline passed, even when nobody touches their session."""
        while True:
            try:
                closed = 0
                # A room whose modules expire together is closed in short transactions, so that the answers
                # of everyone else (urgent on the writer) pass between them rather than wait for the whole room.
                while (
                    chunk := await self._write(
                        writer.expire_due, now_ms=now_ms(), scorer=self._scorer, limit=SWEEP_CHUNK
                    )
                ) == SWEEP_CHUNK:
                    closed += chunk
                closed += chunk
                if closed:
                    log.info("deadline sweep closed %d module(s)", closed)
            except Exception:
                log.exception("deadline sweep failed; retrying at the next interval")
            await asyncio.sleep(self._settings.sweep_seconds)

    async def prepare_forever(self) -> None:
        """Assemble the modules that may follow an open module while it runs (session_service.prepare)."""
        await self._preparer.run_forever()

    async def _module(self, module_id: str) -> CachedModule:
        cached = self._cache.get(module_id)
        if cached is None:
            content = await self._read(sessions.module_content, module_id=module_id)
            cached = await self._cpu(self._cache.parse, [i.full_item for i in content.items], content.passages)
            self._cache.put(module_id, cached)
        return cached

    # ---- reading what a call is about, after authorization

    async def _session(self, principal: Principal, session_id: str, *, action: str) -> sessions.SessionRecord:
        """The whole session after authorization, its current module closed first if its deadline passed."""
        record, _ = await self._session_before_advance(principal, session_id, action=action, request_id="")
        return record

    async def _session_before_advance(
        self, principal: Principal, session_id: str, *, action: str, request_id: str
    ) -> tuple[sessions.SessionRecord, bool]:
        """As `_session`, and whether the advance with `request_id` was applied already (in the same read)."""
        check_session_id(session_id)
        found, applied = await self._lookup(
            sessions.session_before_advance, session_id=session_id, request_id=request_id
        )
        if found is None:
            raise NotFound(f"session {session_id} not found")
        await self._access.may_act_in_session(principal, found.student_id, action=action)
        return await self._expire_if_due(found), applied

    async def _head(self, principal: Principal, session_id: str, *, action: str) -> SessionHead:
        """The little answering needs to know about a session, after authorization (one indexed lookup)."""
        check_session_id(session_id)
        head = await self._lookup(sessions.session_head, session_id=session_id)
        if head is None:
            raise NotFound(f"session {session_id} not found")
        await self._access.may_act_in_session(principal, head.student_id, action=action)
        return head

    async def _answer_head(self, principal: Principal, session_id: str, *, fresh: bool) -> SessionHead:
        """The session's head for an answer: the cached one while its module is open and before its deadline
        (a deadline never moves; the writer re-checks everything), else read afresh."""
        head = None if fresh else self._heads.get(session_id)
        if head is not None and head.module_status == STATUS_OPEN and now_ms() < head.deadline_ms:
            await self._access.may_act_in_session(principal, head.student_id, action=ANSWER)
            return head
        head = await self._head(principal, session_id, action=ANSWER)
        self._heads.put(head)
        return head

    async def _expire_if_due(self, record: sessions.SessionRecord) -> sessions.SessionRecord:
        current = record.current_module
        if current is None or current.status != STATUS_OPEN or now_ms() < current.deadline_ms:
            return record
        if record.paused_ms is not None:
            # The clock stands still while paused: the deadline moves when the proctor resumes.
            return record
        await self._write(writer.expire_due, now_ms=now_ms(), scorer=self._scorer, session_id=record.session_id)
        fresh = await self._lookup(sessions.get_session, session_id=record.session_id)
        if fresh is None:
            raise NotFound(f"session {record.session_id} not found")
        return fresh

    # ---- building replies

    async def _module_state(
        self,
        module: sessions.ModuleRecord,
        *,
        with_items: bool,
        new: bool = False,
        paused_ms: int | None = None,
        accommodation: Accommodation = STANDARD,
    ) -> pb.ModuleState:
        """The module as a client sees it; `new`: just opened by this call, so no answer to read yet; `paused_ms`:
        when a proctor paused the session (its clock stopped then)."""
        now = now_ms()
        left_ms = remaining_ms(deadline_ms=module.deadline_ms, now_ms=now, paused_ms=paused_ms)
        state = pb.ModuleState(
            module_id=module.module_id,
            section=item_pb2.Section.Value(module.section),
            stage=pb.ModuleStage.Value(module.stage),
            status=pb.ModuleStatus.Value(module.status),
            sequence=module.sequence,
            start_time=timestamp(module.start_ms),
            deadline=timestamp(module.deadline_ms),
            remaining_seconds=left_ms // 1000 if module.status == STATUS_OPEN else 0,
            paused=paused_ms is not None,
            break_seconds=accommodation.break_seconds
            if first_of_later_section(module.sequence, module.stage)
            else 0,
        )
        if with_items:
            cached = await self._module(module.module_id)
            items, passages = with_signed_audio(
                cached.student_items,
                cached.student_passages,
                key=self._media_key,
                expires=module.deadline_ms // 1000 + MEDIA_LINK_GRACE_SECONDS,
            )
            state.items.extend(items)
            state.passages.extend(passages)
            if not new:
                latest = await self._lookup(answers.latest_responses, module_id=module.module_id)
                state.responses.extend(saved_response(r) for r in latest)
                marks = await self._lookup(
                    sessions.item_marks,
                    session_id=module.session_id,
                    viewed=ITEM_VIEWED,
                    played=AUDIO_PLAYED,
                    item_ids=[item.item_id for item in items],
                )
                state.current_item_id = marks.last_viewed
                state.audio_played_item_ids.extend(marks.played)
        return state

    async def _session_proto(
        self, record: sessions.SessionRecord, *, with_items: bool = True, new_module: str | None = None
    ) -> pb.Session:
        """The session as a client sees it; `new_module`: the id of a module this call just opened."""
        session = pb.Session(
            session_id=record.session_id,
            student_id=record.student_id,
            scope=pb.SessionScope.Value(record.scope),
            section=item_pb2.Section.Value(record.section) if record.section else item_pb2.SECTION_UNSPECIFIED,
            state=pb.SessionState.Value(record.state),
            blueprint_version=record.blueprint_version,
            modules=[module_summary(m) for m in record.modules],
            create_time=timestamp(record.create_ms),
            finish_time=timestamp(record.finish_ms),
            sitting_id=record.sitting_id or "",
            accommodation=accommodation_proto(record.student_id, record.accommodation),
            pause_time=timestamp(record.paused_ms),
            void_time=timestamp(record.voided_ms),
            void_reason=record.void_reason or "",
        )
        current = record.current_module
        if current is not None:
            state = await self._module_state(
                current,
                with_items=with_items,
                new=current.module_id == new_module,
                paused_ms=record.paused_ms,
                accommodation=record.accommodation,
            )
            session.current_module.CopyFrom(state)
        return session

    # ---- module assembly

    async def _assemble(
        self,
        context: Context,
        *,
        session_id: str,
        sequence: int,
        plan: ModulePlan,
        exclude_item_ids: Collection[str],
        accommodation: Accommodation = STANDARD,
        new_section: bool = False,
    ) -> sessions.NewModule:
        """The module assembled for this place in the session, opened now."""
        module = await self._assembled(
            session_id=session_id,
            sequence=sequence,
            plan=plan,
            exclude_item_ids=exclude_item_ids,
            budget_seconds=call_budget(context.time_remaining()),
        )
        return self._opened(module, plan=plan, accommodation=accommodation, new_section=new_section)

    async def _assembled(
        self,
        *,
        session_id: str,
        sequence: int,
        plan: ModulePlan,
        exclude_item_ids: Iterable[str],
        budget_seconds: float | None,
    ) -> sessions.NewModule:
        """The module item_service assembles for this place in the session (its seed follows from the place),
        not yet opened: no start, no deadline."""
        request = await self._module_request(session_id, sequence, plan, exclude_item_ids)
        assembled = await self._items.assemble_module(request, budget_seconds=budget_seconds)
        return self._pinned(sequence, plan, request.seed, assembled)

    async def _module_request(
        self, session_id: str, sequence: int, plan: ModulePlan, exclude_item_ids: Iterable[str]
    ) -> item_service_pb2.AssembleModuleRequest:
        # Only a module with pretest slots reads the tally that balances them.
        tally = (
            await self._pretest.current(lambda: self._lookup(pretest_store.administrations))
            if plan.pretest_counts
            else None
        )
        return module_request(
            spec=plan.spec(),
            exclude_item_ids=list(exclude_item_ids),
            seed=module_seed(session_id, sequence),
            pretest_administrations=tally,
        )

    def _pinned(
        self, sequence: int, plan: ModulePlan, seed: int, assembled: item_service_pb2.AssembleModuleResponse
    ) -> sessions.NewModule:
        """The module of what item_service assembled, its items and passages pinned (their bodies shared)."""
        if not assembled.items:
            raise FailedPrecondition(
                f"the item bank has no items for module {plan.key!r}", reason="ITEM_POOL_EXHAUSTED"
            )
        return sessions.NewModule(
            module_id=accounts.new_id("mod"),
            sequence=sequence,
            plan_key=plan.key,
            section=item_pb2.Section.Name(plan.section),
            stage=pb.ModuleStage.Name(plan.stage),
            seed=seed,
            assembly_record=assembled.record.SerializeToString(deterministic=True),
            start_ms=0,
            deadline_ms=0,
            items=tuple(
                sessions.PinnedItem(
                    item_id=item.item_id,
                    revision=item.revision,
                    task_type=item_pb2.TaskType.Name(item.task_type),
                    full_item=self._bodies.shared(item.SerializeToString(deterministic=True)),
                )
                for item in assembled.items
            ),
            passages=tuple(
                (passage.passage_id, self._bodies.shared(passage.SerializeToString(deterministic=True)))
                for passage in assembled.passages
            ),
            pretest_item_ids=tuple(item.item_id for item in assembled.items if is_pretest(item)),
        )

    def _opened(
        self, module: sessions.NewModule, *, plan: ModulePlan, accommodation: Accommodation, new_section: bool
    ) -> sessions.NewModule:
        """The assembled module timed from now, its pretest items counted in the tally and its items parsed for
        the calls that follow."""
        start = now_ms()
        opened = dataclasses.replace(
            module,
            start_ms=start,
            deadline_ms=deadline_ms(
                start_ms=start,
                time_limit_seconds=module_seconds(plan.time_limit_seconds, accommodation, new_section=new_section),
                time_scale=self._settings.time_scale,
            ),
        )
        self._pretest.count(opened.pretest_item_ids)
        # Right here, not on a reader thread: the items of a module assembled for one student were nearly all
        # parsed for another already (one shared copy each), so this is mostly look-ups.
        parsed = self._cache.parse([i.full_item for i in opened.items], [p for _, p in opened.passages])
        self._cache.put(opened.module_id, parsed)
        return opened

    async def _prepare(
        self, places: Sequence[tuple[Candidates, ModulePlan]]
    ) -> list[sessions.NewModule | DomainError]:
        """Modules assembled ahead of the close of the ones before (the preparer's own pace, no caller), in one
        call to item_service however many, each with the bodies of its items and passages that are stored
        already; a module that could not be assembled is why, in its place."""
        requests = [
            await self._module_request(place.session_id, place.sequence, plan, sorted(place.exclude_item_ids))
            for place, plan in places
        ]
        modules: list[sessions.NewModule | DomainError] = []
        for (place, plan), request, assembled in zip(
            places, requests, await self._items.assemble_modules(requests), strict=True
        ):
            try:
                modules.append(
                    assembled
                    if isinstance(assembled, DomainError)
                    else self._pinned(place.sequence, plan, request.seed, assembled)
                )
            except DomainError as error:
                modules.append(error)
        made = [module for module in modules if isinstance(module, sessions.NewModule)]
        if not made:
            return modules
        # A room's modules pin mostly the same items: found now, off the advance's path, their bytes are not sent
        # again by the advance's write, on the writer that every answer waits for. One read for the whole call:
        # a digest stored for one module is stored for all.
        stored = await self._read(content_store.stored_digests, bodies=[b for m in made for b in m.bodies])
        return [
            dataclasses.replace(module, stored_digests=stored)
            if isinstance(module, sessions.NewModule)
            else module
            for module in modules
        ]

    def _to_prepare(
        self,
        session_id: str,
        following: tuple[ModulePlan, ...],
        opened: sessions.NewModule,
        seen_before: Iterable[str],
    ) -> Candidates | None:
        """What to prepare once `opened` is stored: the modules that may follow it (`Blueprint.after`), if any."""
        if not following:
            return None
        after = self._settings.prepare_after_seconds
        return Candidates(
            after_module_id=opened.module_id,
            after_seconds=(opened.deadline_ms - opened.start_ms) / 2000 if after is None else after,
            after_answers=due_after_answers(len(opened.items)),
            session_id=session_id,
            sequence=opened.sequence + 1,
            plans=following,
            exclude_item_ids=frozenset([*seen_before, *(item.item_id for item in opened.items)]),
        )

    # ---- accounts

    async def Authenticate(self, request: pb.AuthenticateRequest, context: Context) -> pb.AuthenticateResponse:
        if not request.username or not request.password:
            raise InvalidArgument("username and password are required")
        address = client_address(context.invocation_metadata(), context.peer())
        # Before the password is looked at: a throttled guess learns nothing and costs no hashing.
        standing = await self._throttle.check(username=request.username, address=address)
        found = await self._lookup(accounts_store.get_credentials, username=request.username)
        password_hash = found[1] if found is not None else None
        verified, upgraded = await self._hashing.verify(
            password_hash, request.password, budget_seconds=context.time_remaining()
        )
        if not verified or found is None:
            await self._throttle.failed(standing)
            raise Unauthenticated(INVALID_CREDENTIALS)
        user = found[0]
        if upgraded is not None:
            # Stored with parameters no longer configured: the right password is at hand, so hash it anew.
            await self._write(accounts_store.set_password, user_id=user.user_id, password_hash=upgraded)
        refresh_token = sign_in.new_refresh_token()
        now = now_ms()
        expires_ms = now + self._settings.refresh_token_ttl_seconds * 1000
        await self._write(
            sign_in.start_sign_in,
            user_id=user.user_id,
            sign_in_id=accounts.new_id("sgn"),
            token=refresh_token,
            standing=standing,
            now_ms=now,
            expires_ms=expires_ms,
        )
        return self._signed_in(user.user_id, Role(user.role), refresh_token, expires_ms - now)

    def _signed_in(
        self, user_id: str, role: Role, refresh_token: str, remaining_ms: int
    ) -> pb.AuthenticateResponse:
        ttl = self._settings.access_token_ttl_seconds
        return pb.AuthenticateResponse(
            access_token=mint_token(self._key, subject=user_id, role=role, ttl_seconds=ttl),
            token_type="Bearer",
            expires_in=ttl,
            role=ROLE_TO_PROTO[role],
            user_id=user_id,
            refresh_token=refresh_token,
            refresh_expires_in=max(0, remaining_ms // 1000),
        )

    async def RefreshToken(self, request: pb.RefreshTokenRequest, context: Context) -> pb.AuthenticateResponse:
        if not request.refresh_token:
            raise InvalidArgument("refresh_token is required", field="refresh_token")
        # No password and no hashing thread: one indexed write, as cheap as an answer.
        successor = self._successors.of(request.refresh_token)
        now = now_ms()
        verdict, holder = await self._write(
            sign_in.renew, token=request.refresh_token, successor=successor, now_ms=now
        )
        if verdict is Verdict.REUSED and holder is not None:
            log.warning(
                "a spent refresh token was used again: sign-in %s of %s ended", holder.sign_in_id, holder.user_id
            )
        if holder is None or verdict not in (Verdict.RENEW, Verdict.ANSWER_AGAIN):
            raise Unauthenticated(SIGN_IN_ENDED, reason="SIGN_IN_ENDED")
        return self._signed_in(holder.user_id, Role(holder.role), successor, holder.state.expires_ms - now)

    async def SignOut(self, request: pb.SignOutRequest, context: Context) -> pb.SignOutResponse:
        if not request.refresh_token:
            raise InvalidArgument("refresh_token is required", field="refresh_token")
        # The same answer for an unknown token: signing out tells nobody which tokens exist.
        await self._write(sign_in.sign_out, token=request.refresh_token, now_ms=now_ms())
        return pb.SignOutResponse()

    async def RevokeUserTokens(
        self, request: pb.RevokeUserTokensRequest, context: Context
    ) -> pb.RevokeUserTokensResponse:
        principal = self._principal(context)
        if principal.role != Role.ADMIN:
            raise PermissionDenied("only an admin revokes a user's sign-ins")
        if not request.user_id:
            raise InvalidArgument("user_id is required", field="user_id")
        if await self._lookup(accounts_store.get_user, user_id=request.user_id) is None:
            raise NotFound(f"user {request.user_id} not found")
        revoked = await self._write(sign_in.revoke_user, user_id=request.user_id, now_ms=now_ms())
        log.info("admin %s ended %d sign-in(s) of %s", principal.subject, revoked, request.user_id)
        return pb.RevokeUserTokensResponse(sign_ins_revoked=revoked)

    async def CreateUser(self, request: pb.CreateUserRequest, context: Context) -> pb.User:
        principal = self._principal(context)
        if principal.role != Role.ADMIN:
            raise PermissionDenied("only an admin creates accounts")
        user = request.user
        accounts.check_username(user.username)
        accounts.check_password(user.password)
        role = PROTO_TO_ROLE.get(user.role)
        if role is None:
            raise InvalidArgument(
                "user.role must be a role (student, teacher, rater, author or admin)", field="user.role"
            )
        if request.class_id and role != Role.STUDENT:
            raise InvalidArgument("only a student is enrolled in a class", field="class_id")
        if len(user.display_name) > 200:
            raise InvalidArgument("display_name is longer than 200 characters", field="user.display_name")
        password_hash = await self._hashing.hash(user.password)
        record = await self._write(
            accounts_store.create_user,
            user_id=accounts.new_id("usr"),
            username=user.username,
            display_name=user.display_name,
            role=role.value,
            password_hash=password_hash,
            now_ms=now_ms(),
            class_id=request.class_id or None,
        )
        return user_proto(record)

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.User:
        principal = self._principal(context)
        record = await self._lookup(accounts_store.get_user, user_id=request.user_id)
        if principal.subject != request.user_id:
            if record is None or record.role != Role.STUDENT.value:
                if principal.role != Role.ADMIN:
                    raise PermissionDenied("you may only read your own account")
            else:
                await self._access.may_read_student(principal, record.user_id)
        if record is None:
            raise NotFound(f"user {request.user_id} not found")
        return user_proto(record)

    async def CreateClass(self, request: pb.CreateClassRequest, context: Context) -> pb.Class:
        principal = self._principal(context)
        teacher_id = request.teacher_id or (principal.subject if principal.role == Role.TEACHER else "")
        if principal.role == Role.TEACHER and teacher_id != principal.subject:
            raise PermissionDenied("a teacher may only create their own classes")
        if principal.role not in (Role.TEACHER, Role.ADMIN):
            raise PermissionDenied("only an admin or a teacher creates classes")
        if not teacher_id:
            raise InvalidArgument("teacher_id is required", field="teacher_id")
        if not request.name.strip() or len(request.name) > 200:
            raise InvalidArgument("name must be 1-200 characters", field="name")
        record = await self._write(
            accounts_store.create_class,
            class_id=accounts.new_id("cls"),
            name=request.name.strip(),
            teacher_id=teacher_id,
            now_ms=now_ms(),
        )
        return class_proto(record)

    async def ListClasses(self, request: pb.ListClassesRequest, context: Context) -> pb.ListClassesResponse:
        principal = self._principal(context)
        if principal.role == Role.TEACHER:
            teacher_id: str | None = principal.subject
        elif principal.role == Role.ADMIN:
            teacher_id = None
        else:
            raise PermissionDenied("only teachers and admins list classes")
        size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        query = ("ListClasses", teacher_id)
        position = self._pages.decode(request.page_token, query=query, shape=(str,))
        after = str(position[0]) if position else ""
        rows = await self._read(
            accounts_store.list_classes, teacher_id=teacher_id, after_class_id=after, limit=size + 1
        )
        page, next_token = self._pages.page(rows, size, query=query, position=lambda r: [r.class_id])
        return pb.ListClassesResponse(classes=[class_proto(r) for r in page], next_page_token=next_token)

    # ---- sessions

    async def CreateSession(self, request: pb.CreateSessionRequest, context: Context) -> pb.Session:
        principal = self._principal(context)
        student_id = request.student_id or principal.subject
        if principal.role == Role.STUDENT:
            if student_id != principal.subject:
                raise PermissionDenied("a student may only start their own sessions")
        elif principal.role in (Role.TEACHER, Role.ADMIN):
            if not request.student_id:
                raise InvalidArgument("student_id is required when a teacher or admin starts a session")
            await self._access.may_read_student(principal, student_id)
        else:
            raise PermissionDenied(f"the {principal.role.value} role cannot start exam sessions")
        check_request_id(request.request_id, required=False)
        # A retry gets the session its first call started, even after the sitting's window closed.
        if request.request_id:
            existing = await self._lookup(
                sessions.find_session_by_request, student_id=student_id, request_id=request.request_id
            )
            if existing is not None:
                return await self._session_proto(await self._expire_if_due(existing))
        sitting = await self._sitting_to_start(principal, request, student_id)
        scope = request.scope or pb.SESSION_SCOPE_FULL_TEST
        if sitting is not None:
            scope = pb.SessionScope.Value(sitting.scope)
        elif scope == pb.SESSION_SCOPE_SECTION and request.section == item_pb2.SECTION_UNSPECIFIED:
            raise InvalidArgument("a section session needs a section", field="section")
        elif scope == pb.SESSION_SCOPE_FULL_TEST and request.section != item_pb2.SECTION_UNSPECIFIED:
            raise InvalidArgument("a full test takes every section; leave section unset", field="section")
        student = await self._lookup(accounts_store.get_user, user_id=student_id)
        if student is None or student.role != Role.STUDENT.value or student.erased:
            raise NotFound(f"student {student_id} not found")
        # An admin (a proctor restarting a sitting after an incident) is not held to the daily limit.
        daily_limit = None if principal.role == Role.ADMIN else self._settings.daily_session_limit
        if daily_limit is not None:
            # Checked again on the writer thread; here it spares item_service a module assembly.
            started = await self._lookup(
                sessions.count_sessions_since, student_id=student_id, since_ms=utc_day_start_ms(now_ms())
            )
            check_daily_sessions(started_today=started, limit=daily_limit, now_ms=now_ms())
        section = request.section
        if sitting is not None:
            section = item_pb2.Section.Value(sitting.section) if sitting.section else item_pb2.SECTION_UNSPECIFIED
        blueprint = load_blueprint(
            sitting.blueprint_version if sitting is not None else self._settings.blueprint_version
        )
        sections = blueprint.sections_for(section if scope == pb.SESSION_SCOPE_SECTION else None)
        # Pinned now: a change to the student's accommodation later does not move this session's clock.
        accommodation = await self._lookup(sittings_store.pinned_accommodation, student_id=student_id)
        session_id = accounts.new_id("ses")
        module = await self._assemble(
            context,
            session_id=session_id,
            sequence=1,
            plan=sections[0].first(),
            exclude_item_ids=[],
            accommodation=accommodation,
        )
        record, created = await self._write(
            writer.start_session,
            daily_limit=daily_limit,
            session_id=session_id,
            student_id=student_id,
            scope=pb.SessionScope.Name(scope),
            section=item_pb2.Section.Name(section) if scope == pb.SESSION_SCOPE_SECTION else "",
            blueprint_version=blueprint.version,
            request_id=request.request_id or None,
            created_by=principal.subject,
            now_ms=now_ms(),
            first_module=module,
            sitting=sitting,
            accommodation=accommodation,
        )
        successors = self._to_prepare(
            session_id, blueprint.after(sections[0].first(), sections), module, seen_before=()
        )
        if created and successors is not None:
            self._preparer.module_opened(successors)
        # The student's first answer finds its session's head here, not in a read (a class starts together).
        self._heads.put(record.head)
        # A module opened just now has no answers and no marks yet: no reads for them (a class starting together
        # reads on one event loop). A retry that met its first call's session at the write reads them.
        return await self._session_proto(record, new_module=module.module_id if created else None)

    async def _sitting_to_start(
        self, principal: Principal, request: pb.CreateSessionRequest, student_id: str
    ) -> sittings_store.SittingRecord | None:
        """The sitting the new session is for, after its rules: the student is of its class, the code is right
        (staff starting it for a student need none), and it is open now. None: practice, where allowed."""
        if not request.sitting_id:
            if principal.role == Role.STUDENT:
                check_practice(allowed=self._settings.practice_outside_sittings)
            return None
        if request.scope or request.section:
            raise InvalidArgument(
                "a sitting's session takes its scope and section from the sitting", field="scope"
            )
        sitting = await self._lookup(sittings_store.get_sitting, sitting_id=request.sitting_id)
        if sitting is None:
            raise NotFound(f"sitting {request.sitting_id} not found")
        if not await self._lookup(sittings_store.is_enrolled, class_id=sitting.class_id, student_id=student_id):
            raise PermissionDenied("this sitting is for another class")
        if principal.role == Role.STUDENT:
            check_access_code(expected=sitting.access_code, given=request.access_code)
        refusal = start_refusal(opens_ms=sitting.opens_ms, closes_ms=sitting.closes_ms, now_ms=now_ms())
        if refusal is not None:
            raise refusal
        return sitting

    async def GetSession(self, request: pb.GetSessionRequest, context: Context) -> pb.Session:
        record = await self._session(self._principal(context), request.session_id, action=READ)
        return await self._session_proto(record)

    async def GetCurrentModule(self, request: pb.GetCurrentModuleRequest, context: Context) -> pb.ModuleState:
        record = await self._session(self._principal(context), request.session_id, action=READ)
        current = record.current_module
        if current is None:
            raise FailedPrecondition(
                "the session has no current module (it is finished or past its last module)",
                reason="NO_CURRENT_MODULE",
            )
        return await self._module_state(
            current, with_items=True, paused_ms=record.paused_ms, accommodation=record.accommodation
        )

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Context) -> pb.ListSessionsResponse:
        principal = self._principal(context)
        student_ids: set[str] | None
        if principal.role == Role.STUDENT:
            if request.class_id or request.student_id not in ("", principal.subject):
                raise PermissionDenied("a student may only list their own sessions")
            student_ids = {principal.subject}
        elif principal.role == Role.TEACHER:
            student_ids = set(await self._read(accounts_store.teacher_student_ids, teacher_id=principal.subject))
        elif principal.role in (Role.ADMIN, Role.SERVICE):
            student_ids = None
        else:
            raise PermissionDenied(f"the {principal.role.value} role has no access to session data")
        if request.class_id:
            found = await self._read(accounts_store.get_class, class_id=request.class_id)
            if found is None:
                raise NotFound(f"class {request.class_id} not found")
            AccessPolicy.may_read_class(principal, found.teacher_id)
            members = set(found.student_ids)
            student_ids = members if student_ids is None else student_ids & members
        if request.student_id:
            if student_ids is not None and request.student_id not in student_ids:
                if principal.role == Role.TEACHER:
                    raise PermissionDenied("this student is not in one of your classes")
                student_ids = set()
            else:
                student_ids = {request.student_id}
        if request.sitting_id:
            sitting = await self._lookup(sittings_store.get_sitting, sitting_id=request.sitting_id)
            if sitting is None:
                raise NotFound(f"sitting {request.sitting_id} not found")
            if principal.role in (Role.TEACHER, Role.ADMIN):
                AccessPolicy.may_run_sitting(principal, await self._class_teacher(sitting.class_id))
        size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        query = (
            "ListSessions",
            principal.subject,
            request.student_id,
            request.class_id,
            request.state,
            request.sitting_id,
        )
        position = self._pages.decode(request.page_token, query=query, shape=(int, str))
        after = (int(position[0]), str(position[1])) if position else None
        rows = await self._read(
            sessions.list_sessions,
            student_ids=student_ids,
            state=pb.SessionState.Name(request.state) if request.state else None,
            after=after,
            limit=size + 1,
            sitting_id=request.sitting_id or None,
        )
        page, next_token = self._pages.page(
            rows, size, query=query, position=lambda r: [r.create_ms, r.session_id]
        )
        return pb.ListSessionsResponse(
            sessions=[await self._session_proto(r, with_items=False) for r in page], next_page_token=next_token
        )

    async def SubmitResponse(
        self, request: pb.SubmitResponseRequest, context: Context
    ) -> pb.SubmitResponseResponse:
        principal = self._principal(context)
        check_request_id(request.request_id, required=True)
        if request.elapsed_ms < 0:
            raise InvalidArgument("elapsed_ms must not be negative", field="elapsed_ms")
        cached = request.session_id in self._heads
        head = await self._answer_head(principal, request.session_id, fresh=False)
        refusal, item = await self._answerable(head, request.item_id)
        if refusal is not None and cached:
            head = await self._answer_head(principal, request.session_id, fresh=True)
            refusal, item = await self._answerable(head, request.item_id)
        if refusal is not None or item is None or head.module_id is None:
            # A retry is answered from what was stored, whatever has happened to the module since.
            replay = await self._lookup(
                answers.find_submission, session_id=head.session_id, request_id=request.request_id
            )
            if replay is None:
                raise refusal or FailedPrecondition("no current module", reason="NO_CURRENT_MODULE")
        else:
            given = given_answer(request.answer)
            check_shape(answer_form(item), given)
            if given.audio_ref.startswith(RECORDING_PREFIX):
                await self._check_audio_ref(given.audio_ref, session_id=head.session_id, item_id=request.item_id)
            try:
                replay = await self._answer_writer.submit(
                    answers.Submission(
                        session_id=head.session_id,
                        module_id=head.module_id,
                        item_id=request.item_id,
                        request_id=request.request_id,
                        answer_json=answer_json(request.answer),
                        elapsed_ms=request.elapsed_ms,
                        received_ms=now_ms(),
                    )
                )
            except DomainError:
                # The session moved on (a deadline, another writer): the next answer reads its head afresh.
                self._heads.drop(head.session_id)
                raise
            if not replay.replayed and replay.response.revision == 1:
                self._preparer.answered(head.session_id)
        return pb.SubmitResponseResponse(
            response=saved_response(replay.response),
            replayed=replay.replayed,
            remaining_seconds=remaining_seconds(replay.deadline_ms, now_ms()),
        )

    async def _check_audio_ref(self, audio_ref: str, *, session_id: str, item_id: str) -> None:
        """A speech answer names a recording of this session's item, or none of ours."""
        found = await self._lookup(recordings_store.recording_info, recording_id=audio_ref)
        where = None if found is None else (found.session_id, found.item_id)
        refusal = audio_ref_refusal(audio_ref, found=where, session_id=session_id, item_id=item_id)
        if refusal is not None:
            raise refusal

    # ---- recordings

    async def UploadRecording(self, request: pb.UploadRecordingRequest, context: Context) -> pb.Recording:
        principal = self._principal(context)
        head = await self._head(principal, request.session_id, action=ANSWER)
        check_request_id(request.request_id, required=True)
        replay = await self._lookup(
            recordings_store.find_upload, session_id=head.session_id, request_id=request.request_id
        )
        if replay is not None:
            return _recording_proto(replay, replayed=True)
        # Read once: each read of a bytes field of a message is a new copy.
        audio = request.audio
        content_type, data = audio.content_type, audio.data
        kind = check_type(content_type)
        check_size(len(data), limit=self._settings.recording_max_bytes)
        refusal, item = await self._answerable(head, request.item_id)
        if refusal is not None or item is None or head.module_id is None:
            raise refusal or FailedPrecondition("no current module", reason="NO_CURRENT_MODULE")
        check_speaking(item_pb2.TaskType.Name(item.task_type), request.item_id)
        if too_late(head, now_ms()):
            raise late_answer_error()
        longest = max_duration_ms(item.content.response_seconds)
        try:
            facts = await self._decoder.probe(data, longest)
        except NotAudio as exc:
            raise undecodable(kind, str(exc)) from exc
        check_audio(kind, facts, max_ms=longest)
        new = recordings_store.NewRecording(
            recording_id=accounts.new_id(RECORDING_PREFIX.rstrip("-")),
            session_id=head.session_id,
            module_id=head.module_id,
            item_id=request.item_id,
            request_id=request.request_id,
            content_type=content_type.strip() if len(content_type.strip()) <= 100 else kind,
            sha256=hashlib.sha256(data).hexdigest(),
            duration_ms=facts.duration_ms,
            create_ms=now_ms(),
            data=data,
        )
        try:
            info, replayed = await self._write(
                recordings.store, recording=new, total_limit=self._settings.recordings_max_total_bytes
            )
        except Conflict:
            # The same request id stored by another process (PostgreSQL) in the meantime: its recording.
            found = await self._read(
                recordings_store.find_upload, session_id=head.session_id, request_id=request.request_id
            )
            if found is None:
                raise
            info, replayed = found, True
        log.info(
            "recording %s stored: %d bytes, %d ms of %s",
            info.recording_id,
            info.byte_size,
            info.duration_ms,
            media_type(info.content_type),
        )
        return _recording_proto(info, replayed=replayed)

    async def GetRecording(self, request: pb.GetRecordingRequest, context: Context) -> httpbody_pb2.HttpBody:
        principal = self._principal(context)
        audio_ref = request.audio_ref
        info = None
        if audio_ref.startswith(RECORDING_PREFIX) and len(audio_ref) <= 40:
            info = await self._lookup(recordings_store.recording_info, recording_id=audio_ref)

        async def rater_has_task() -> bool:
            assert info is not None
            return await self._read(recordings_store.rated_by, recording=info, rater_id=principal.subject)

        # One answer for a recording that does not exist and one the caller may not hear: nothing is learnt.
        if info is None or not await self._access.may_hear_recording(
            principal, info.student_id, rater_has_task=rater_has_task
        ):
            raise NotFound(f"recording {audio_ref} not found")
        found = await self._read(recordings_store.recording_audio, recording_id=info.recording_id)
        if found is None:
            raise NotFound(f"recording {audio_ref} not found")
        await context.send_initial_metadata((("cache-control", RECORDING_CACHE_CONTROL),))
        return httpbody_pb2.HttpBody(content_type=found[0], data=found[1])

    async def _answerable(
        self, head: SessionHead, item_id: str
    ) -> tuple[FailedPrecondition | None, item_pb2.Item | None]:
        """Why the session refuses an answer to the item (None if it takes it), and the item when it is there."""
        item = None
        if head.state == STATE_IN_PROGRESS and head.module_id is not None:
            item = (await self._module(head.module_id)).full_items.get(item_id)
        return answer_refusal(head, module_id=head.module_id, item_id=item_id, in_module=item is not None), item

    async def AdvanceModule(self, request: pb.AdvanceModuleRequest, context: Context) -> pb.Session:
        principal = self._principal(context)
        check_request_id(request.request_id, required=False)
        # The bound is on the work that takes the event loop (routing, assembly, the reply), not on the wait for
        # the write: advances waiting for their group's commit leave their turn to the next ones, so a room's
        # advances can all share one commit.
        async with self._advances:
            prepared = await self._prepare_advance(principal, request, context)
        if isinstance(prepared, pb.Session):
            return prepared
        record, job, successors = prepared
        advanced = await self._advance_writer.submit(job)
        if advanced.applied and successors is not None:
            self._preparer.module_opened(successors)
        if advanced.applied and advanced.section_closed:
            self._pending_scores.add(record.session_id)
        self._heads.drop(record.session_id)
        self._cache.drop(job.from_module_id)
        async with self._advances:
            left = record.current_module
            if advanced.applied and (
                advanced.closing is not None or (left is not None and left.status != STATUS_OPEN)
            ):
                # The session is what was read plus what was written: no second read (a room's advances come
                # together, and each read takes the event loop).
                fresh = record.advanced(closing=advanced.closing, opened=job.next_module)
            else:
                # Applied before, or its module closed at its deadline between the read and the write: the session
                # as stored.
                found = await self._lookup(sessions.get_session, session_id=record.session_id)
                assert found is not None
                fresh = found
            # The first answer in the module this advance opened finds its head here, not in a read (a room's
            # first answers after their module change come together).
            self._heads.put(fresh.head)
            # The module this advance opened has no answers yet: no read for them.
            opened = job.next_module.module_id if advanced.applied and job.next_module is not None else None
            return await self._session_proto(fresh, new_module=opened)

    async def _prepare_advance(
        self, principal: Principal, request: pb.AdvanceModuleRequest, context: Context
    ) -> pb.Session | tuple[sessions.SessionRecord, writer.Advance, Candidates | None]:
        """What the advance will write (the router's estimate, the next module assembled) and the modules to
        prepare that may follow that one; or the session as it stands when a retry finds its advance applied
        already."""
        # One read for the session and for whether this advance (a retry) was applied already.
        record, applied = await self._session_before_advance(
            principal, request.session_id, action=CONTROL, request_id=request.request_id
        )
        if applied:
            # As stored now: its current module may have closed at its deadline since.
            return await self._session_proto(record)
        if record.voided_ms is not None:
            raise voided_error()
        if record.state != STATE_IN_PROGRESS:
            raise FailedPrecondition("the session is finished", reason="SESSION_FINISHED")
        if record.paused_ms is not None:
            raise paused_error()
        current = record.current_module
        if current is None:
            raise FailedPrecondition(
                "the session is past its last module; finish it with FinishSession", reason="NO_CURRENT_MODULE"
            )
        blueprint = load_blueprint(record.blueprint_version)
        plan = blueprint.module(current.plan_key)
        sections = blueprint.sections_for(item_pb2.Section.Value(record.section) if record.section else None)
        router_score: sessions.RouterScore | None = None
        next_plan: ModulePlan | None
        routing = blueprint.routing_after(plan)
        if routing is not None:
            cached = await self._module(current.module_id)
            latest = await self._lookup(answers.latest_responses, module_id=current.module_id)
            given = {r.item_id: answer_from_json(r.answer_json) for r in latest}
            # Right here, not on a reader thread: a dozen items' likelihoods (each computed once per score, shared)
            # cost less than the two thread switches, and a room's advances come together.
            ability = router_ability(list(cached.full_items.values()), given, self._scorer.cut_table)
            stage, decision = routing.route(ability.theta)
            router_score = sessions.RouterScore(
                theta=ability.theta,
                theta_se=ability.se,
                decision=decision,
                scored_through=max((r.response_id for r in latest), default=0),
            )
            next_plan = blueprint.section(plan.section).stage(pb.ModuleStage.Value(stage))
            # Stored with the module that closes (its estimate and decision); a room's advances come together, and
            # a line for each was a measurable share of the event loop's time in their burst.
            log.debug("session %s: %s (se %.3f)", record.session_id, decision, ability.se)
        else:
            following = blueprint.after(plan, sections)
            next_plan = following[0] if following else None
        next_module = None
        successors = None
        if next_plan is not None:
            sequence = max(m.sequence for m in record.modules) + 1
            new_section = next_plan.section != plan.section
            ready = self._preparer.take(
                session_id=record.session_id,
                sequence=sequence,
                plan_key=next_plan.key,
                after_module_id=current.module_id,
            )
            seen: Collection[str]
            if ready is not None:
                prepared_module, seen = ready
                next_module = self._opened(
                    prepared_module, plan=next_plan, accommodation=record.accommodation, new_section=new_section
                )
            else:
                seen = await self._lookup(sessions.seen_item_ids, session_id=record.session_id)
                next_module = await self._assemble(
                    context,
                    session_id=record.session_id,
                    sequence=sequence,
                    plan=next_plan,
                    exclude_item_ids=seen,
                    accommodation=record.accommodation,
                    new_section=new_section,
                )
            successors = self._to_prepare(
                record.session_id, blueprint.after(next_plan, sections), next_module, seen_before=seen
            )
        job = writer.Advance(
            session_id=record.session_id,
            request_id=request.request_id or None,
            from_module_id=current.module_id,
            now_ms=now_ms(),
            router_score=router_score,
            next_module=next_module,
        )
        return record, job, successors

    async def FinishSession(self, request: pb.FinishSessionRequest, context: Context) -> pb.Session:
        record = await self._session(self._principal(context), request.session_id, action=CONTROL)
        if record.paused_ms is not None and record.state == STATE_IN_PROGRESS:
            raise paused_error()
        await self._write(writer.finish, session_id=record.session_id, now_ms=now_ms())
        self._pending_scores.add(record.session_id)
        self._heads.drop(record.session_id)
        for module in record.modules:
            self._cache.drop(module.module_id)
        fresh = await self._lookup(sessions.get_session, session_id=record.session_id)
        assert fresh is not None
        return await self._session_proto(fresh)

    async def LogEvents(self, request: pb.LogEventsRequest, context: Context) -> pb.LogEventsResponse:
        principal = self._principal(context)
        check_request_id(request.request_id, required=False)
        if len(request.events) > MAX_EVENTS:
            raise InvalidArgument(f"a batch holds at most {MAX_EVENTS} events, not {len(request.events)}")
        events: list[sessions.NewEvent] = []
        for index, event in enumerate(request.events):
            if event.type == pb.EVENT_TYPE_UNSPECIFIED or event.type not in pb.EventType.values():
                raise InvalidArgument(
                    f"event {index}: unknown event type {event.type}; nothing of the batch was stored",
                    field=f"events[{index}].type",
                )
            if len(event.detail) > MAX_EVENT_DETAIL:
                raise InvalidArgument(
                    f"event {index}: detail is longer than {MAX_EVENT_DETAIL} characters; nothing was stored",
                    field=f"events[{index}].detail",
                )
            if len(event.item_id) > 40:
                raise InvalidArgument(f"event {index}: item_id is too long", field=f"events[{index}].item_id")
            events.append(
                sessions.NewEvent(
                    event_type=pb.EventType.Name(event.type),
                    item_id=event.item_id,
                    detail=event.detail,
                    client_ms=event.client_time.ToMilliseconds() if event.HasField("client_time") else None,
                )
            )
        head = await self._head(principal, request.session_id, action=ANSWER)
        now = now_ms()
        logged = await self._write(
            sessions.log_events,
            session_id=head.session_id,
            request_id=request.request_id or None,
            events=events,
            now_ms=now,
        )
        return pb.LogEventsResponse(stored=logged.stored, server_time=timestamp(now), replayed=logged.replayed)

    # ---- sittings

    async def _class_teacher(self, class_id: str) -> str:
        found = await self._read(accounts_store.get_class, class_id=class_id)
        if found is None:
            raise NotFound(f"class {class_id} not found")
        return found.teacher_id

    def _actor(self, principal: Principal) -> staff.Actor:
        return staff.Actor(user_id=principal.subject, role=principal.role.value)

    async def CreateSitting(self, request: pb.CreateSittingRequest, context: Context) -> pb.Sitting:
        principal = self._principal(context)
        given = request.sitting
        if not given.class_id:
            raise InvalidArgument("sitting.class_id is required", field="sitting.class_id")
        AccessPolicy.may_run_sitting(principal, await self._class_teacher(given.class_id))
        version = given.blueprint_version or CURRENT_VERSION
        if version not in known_versions():
            raise InvalidArgument(f"no blueprint version {version!r}", field="sitting.blueprint_version")
        scope = given.scope or pb.SESSION_SCOPE_FULL_TEST
        if scope == pb.SESSION_SCOPE_SECTION:
            if given.section == item_pb2.SECTION_UNSPECIFIED:
                raise InvalidArgument("a section sitting needs a section", field="sitting.section")
            section = item_pb2.Section.Name(given.section)
        elif given.section != item_pb2.SECTION_UNSPECIFIED:
            raise InvalidArgument("a full test takes every section; leave section unset", field="sitting.section")
        else:
            section = ""
        opens_ms, closes_ms = given.open_time.ToMilliseconds(), given.close_time.ToMilliseconds()
        check_window(opens_ms=opens_ms, closes_ms=closes_ms)
        check_details(title=given.title, access_code=given.access_code)
        now = now_ms()
        record = sittings_store.SittingRecord(
            sitting_id=accounts.new_id("sit"),
            class_id=given.class_id,
            title=given.title.strip(),
            blueprint_version=version,
            scope=pb.SessionScope.Name(scope),
            section=section,
            opens_ms=opens_ms,
            closes_ms=closes_ms,
            access_code=given.access_code,
            created_by=principal.subject,
            create_ms=now,
            update_ms=now,
            revision=1,
        )
        await self._write(
            staff.create_sitting, sitting=record, actor=self._actor(principal), audit_id=accounts.new_id("aud")
        )
        log.info("sitting %s created for class %s by %s", record.sitting_id, record.class_id, principal.subject)
        return sitting_proto(record, with_code=True)

    async def _readable_sitting(
        self, principal: Principal, sitting_id: str
    ) -> tuple[sittings_store.SittingRecord, bool]:
        """The sitting and whether the caller runs it (sees its code); a student of its class reads it too."""
        if not sitting_id:
            raise InvalidArgument("sitting_id is required", field="sitting_id")
        sitting = await self._lookup(sittings_store.get_sitting, sitting_id=sitting_id)
        if sitting is None:
            raise NotFound(f"sitting {sitting_id} not found")
        if principal.role == Role.STUDENT:
            if not await self._lookup(
                sittings_store.is_enrolled, class_id=sitting.class_id, student_id=principal.subject
            ):
                raise PermissionDenied("this sitting is for another class")
            return sitting, False
        AccessPolicy.may_run_sitting(principal, await self._class_teacher(sitting.class_id))
        return sitting, True

    async def GetSitting(self, request: pb.GetSittingRequest, context: Context) -> pb.Sitting:
        sitting, runs = await self._readable_sitting(self._principal(context), request.sitting_id)
        return sitting_proto(sitting, with_code=runs)

    async def ListSittings(self, request: pb.ListSittingsRequest, context: Context) -> pb.ListSittingsResponse:
        principal = self._principal(context)
        class_ids: set[str] | None
        if principal.role == Role.ADMIN:
            class_ids = None
        elif principal.role == Role.TEACHER:
            class_ids = set(await self._read(sittings_store.class_ids_of, teacher_id=principal.subject))
        elif principal.role == Role.STUDENT:
            class_ids = set(await self._read(sittings_store.class_ids_of, student_id=principal.subject))
        else:
            raise PermissionDenied(f"the {principal.role.value} role has no sittings")
        if request.class_id:
            if class_ids is not None and request.class_id not in class_ids:
                raise PermissionDenied("this class is not yours")
            class_ids = {request.class_id}
        size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        query = ("ListSittings", principal.subject, request.class_id)
        position = self._pages.decode(request.page_token, query=query, shape=(int, str))
        after = (int(position[0]), str(position[1])) if position else None
        rows = await self._read(sittings_store.list_sittings, class_ids=class_ids, after=after, limit=size + 1)
        staff_view = principal.role != Role.STUDENT
        page, next_token = self._pages.page(rows, size, query=query, position=lambda r: [r.opens_ms, r.sitting_id])
        return pb.ListSittingsResponse(
            sittings=[sitting_proto(r, with_code=staff_view) for r in page], next_page_token=next_token
        )

    async def UpdateSitting(self, request: pb.UpdateSittingRequest, context: Context) -> pb.Sitting:
        principal = self._principal(context)
        given = request.sitting
        sitting, _runs = await self._readable_sitting(principal, given.sitting_id)
        AccessPolicy.may_run_sitting(principal, await self._class_teacher(sitting.class_id))
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidArgument("update_mask names no field", field="update_mask")
        unknown = sorted(set(paths) - set(SITTING_UPDATABLE))
        if unknown:
            raise InvalidArgument(
                f"update_mask names {', '.join(unknown)}; a sitting's updatable fields are "
                f"{', '.join(SITTING_UPDATABLE)}",
                field="update_mask",
            )
        if len(request.reason) > 1000:
            raise InvalidArgument("reason is longer than 1000 characters", field="reason")
        changes: dict[str, Any] = {}
        if "title" in paths:
            changes["title"] = given.title.strip()
        if "open_time" in paths:
            changes["opens_ms"] = given.open_time.ToMilliseconds()
        if "close_time" in paths:
            changes["closes_ms"] = given.close_time.ToMilliseconds()
        if "access_code" in paths:
            changes["access_code"] = given.access_code
        check_window(
            opens_ms=changes.get("opens_ms", sitting.opens_ms),
            closes_ms=changes.get("closes_ms", sitting.closes_ms),
        )
        check_details(
            title=changes.get("title", sitting.title), access_code=changes.get("access_code", sitting.access_code)
        )
        revision = None
        if given.etag:
            if not given.etag.isdigit():
                raise Aborted("the etag is not this sitting's; read it again", reason="STALE_ETAG")
            revision = int(given.etag)
        updated = await self._write(
            staff.update_sitting,
            sitting_id=sitting.sitting_id,
            changes=changes,
            revision=revision,
            actor=self._actor(principal),
            reason=request.reason,
            audit_id=accounts.new_id("aud"),
            now_ms=now_ms(),
        )
        return sitting_proto(updated, with_code=True)

    async def _look_at_room(self, sitting_id: str, class_id: str) -> list[Seat]:
        return await self._read(sittings_store.seats, sitting_id=sitting_id, class_id=class_id)

    async def WatchSitting(
        self, request: pb.WatchSittingRequest, context: Context
    ) -> AsyncIterator[pb.SittingView]:
        principal = self._principal(context)
        sitting, runs = await self._readable_sitting(principal, request.sitting_id)
        if not runs:
            raise PermissionDenied("only the sitting's proctors watch it")
        if request.max_views < 0:
            raise InvalidArgument("max_views must not be negative", field="max_views")
        sent = 0
        shown: dict[str, Seat] = {}
        async with contextlib.aclosing(self._watch.views(sitting.sitting_id, sitting.class_id)) as views:
            while not request.max_views or sent < request.max_views:
                left = context.time_remaining()
                # Ended cleanly before the deadline, so a client reconnects rather than reads an error.
                wait = None if left is None else left - WATCH_DEADLINE_MARGIN_SECONDS
                if wait is not None and wait <= 0:
                    return
                try:
                    seats = await asyncio.wait_for(anext(views), wait)
                except TimeoutError:
                    return
                # After the first view, what changed since this stream's last one (it may have missed several).
                full = not sent or shown.keys() != {seat.student_id for seat in seats}
                changed = seats if full else [seat for seat in seats if shown.get(seat.student_id) != seat]
                shown = {seat.student_id: seat for seat in seats}
                yield sitting_view(sitting.sitting_id, changed, now_ms=now_ms(), full=full)
                sent += 1

    # ---- accommodations

    async def SetAccommodation(self, request: pb.SetAccommodationRequest, context: Context) -> pb.Accommodation:
        principal = self._principal(context)
        if not request.student_id:
            raise InvalidArgument("student_id is required", field="student_id")
        await self._access.may_set_accommodation(principal, request.student_id)
        student = await self._lookup(accounts_store.get_user, user_id=request.student_id)
        if student is None or student.role != Role.STUDENT.value or student.erased:
            raise NotFound(f"student {request.student_id} not found")
        given = request.accommodation
        granted = checked_accommodation(
            time_multiplier=given.extra_time_multiplier, break_seconds=given.break_seconds, reason=given.reason
        )
        record = sittings_store.AccommodationRecord(
            student_id=request.student_id,
            accommodation=granted,
            reason=given.reason.strip(),
            set_by=principal.subject,
            update_ms=now_ms(),
        )
        await self._write(
            staff.set_accommodation, record=record, actor=self._actor(principal), audit_id=accounts.new_id("aud")
        )
        log.info("accommodation of %s set by %s", request.student_id, principal.subject)
        return accommodation_proto(request.student_id, granted, record)

    async def GetAccommodation(self, request: pb.GetAccommodationRequest, context: Context) -> pb.Accommodation:
        principal = self._principal(context)
        if not request.student_id:
            raise InvalidArgument("student_id is required", field="student_id")
        await self._access.may_read_student(principal, request.student_id, what="accommodations", services=False)
        found = await self._lookup(sittings_store.get_accommodation, student_id=request.student_id)
        if found is None:
            return accommodation_proto(request.student_id, STANDARD)
        return accommodation_proto(request.student_id, found.accommodation, found)

    # ---- proctoring

    async def _proctor(
        self, context: Context, action: str, request: pb.ProctorActionRequest | pb.ExtendSessionRequest
    ) -> pb.Session:
        principal = self._principal(context)
        session_id, request_id, reason = request.session_id, request.request_id, request.reason
        minutes = request.minutes if isinstance(request, pb.ExtendSessionRequest) else 0
        check_session_id(session_id)
        record = await self._lookup(sessions.get_session, session_id=session_id)
        if record is None:
            raise NotFound(f"session {session_id} not found")
        teacher_id = None
        if record.sitting_id:
            sitting = await self._lookup(sittings_store.get_sitting, sitting_id=record.sitting_id)
            teacher_id = await self._class_teacher(sitting.class_id) if sitting is not None else None
        AccessPolicy.may_run_sitting(principal, teacher_id)
        check_request_id(request_id, required=True)
        check_reason(reason, required=action in (VOID, EXTEND))
        if action == EXTEND:
            check_minutes(minutes)
        entry = await self._write(
            staff.proctor,
            act=staff.ProctorAction(
                action=action,
                session_id=session_id,
                student_id=record.student_id,
                request_id=request_id,
                reason=reason.strip(),
                minutes=minutes,
            ),
            actor=self._actor(principal),
            audit_id=accounts.new_id("aud"),
            now_ms=now_ms(),
            scorer=self._scorer,
        )
        # This process's cached head is stale now; another process's is caught by its writer (which reads the
        # pause under the session's lock) and then dropped.
        self._heads.drop(session_id)
        log.info("%s on session %s by %s (audit %s)", action, session_id, principal.subject, entry.audit_id)
        fresh = await self._lookup(sessions.get_session, session_id=session_id)
        assert fresh is not None
        return await self._session_proto(fresh)

    async def PauseSession(self, request: pb.ProctorActionRequest, context: Context) -> pb.Session:
        return await self._proctor(context, PAUSE, request)

    async def ResumeSession(self, request: pb.ProctorActionRequest, context: Context) -> pb.Session:
        return await self._proctor(context, RESUME, request)

    async def ExtendSession(self, request: pb.ExtendSessionRequest, context: Context) -> pb.Session:
        return await self._proctor(context, EXTEND, request)

    async def VoidSession(self, request: pb.ProctorActionRequest, context: Context) -> pb.Session:
        return await self._proctor(context, VOID, request)

    # ---- the audit log

    @staticmethod
    def _audit_filter(request: pb.ListAuditEntriesRequest | pb.ExportAuditLogRequest) -> audit_store.AuditFilter:
        return audit_store.AuditFilter(
            actor=request.actor_id,
            action=request.action,
            student_id=request.student_id,
            target=request.target_id,
            start_ms=request.start_time.ToMilliseconds() if request.HasField("start_time") else None,
            end_ms=request.end_time.ToMilliseconds() if request.HasField("end_time") else None,
        )

    async def ListAuditEntries(
        self, request: pb.ListAuditEntriesRequest, context: Context
    ) -> pb.ListAuditEntriesResponse:
        AccessPolicy.may_read_audit_log(self._principal(context))
        where = self._audit_filter(request)
        size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        query = (
            "ListAuditEntries",
            where.actor,
            where.action,
            where.student_id,
            where.target,
            where.start_ms,
            where.end_ms,
        )
        position = self._pages.decode(request.page_token, query=query, shape=(int, str))
        before = (int(position[0]), str(position[1])) if position else None
        rows = await self._read(audit_store.list_entries, where=where, before=before, limit=size + 1)
        page, next_token = self._pages.page(rows, size, query=query, position=lambda r: [r.time_ms, r.audit_id])
        return pb.ListAuditEntriesResponse(entries=[audit_proto(r) for r in page], next_page_token=next_token)

    async def ExportAuditLog(
        self, request: pb.ExportAuditLogRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        AccessPolicy.may_read_audit_log(self._principal(context))
        where = self._audit_filter(request)
        after: tuple[int, str] | None = None
        sent = False
        while True:
            rows = await self._read(audit_store.entries_after, where=where, after=after, limit=AUDIT_EXPORT_CHUNK)
            if not rows and sent:
                return
            lines = "".join(
                json_format.MessageToJson(audit_proto(r), indent=None, sort_keys=True) + "\n" for r in rows
            )
            # The first message names the content type even when nothing matches (an empty export is a file too).
            yield httpbody_pb2.HttpBody(content_type=AUDIT_EXPORT_TYPE, data=lines.encode())
            sent = True
            if len(rows) < AUDIT_EXPORT_CHUNK:
                return
            after = (rows[-1].time_ms, rows[-1].audit_id)

    # ---- privacy

    async def ExportStudentData(
        self, request: pb.ExportStudentDataRequest, context: Context
    ) -> pb.ExportStudentDataResponse:
        return pb.ExportStudentDataResponse(json_document=await self._export_document(request, context))

    async def _export_document(self, request: pb.ExportStudentDataRequest, context: Context) -> str:
        principal = self._principal(context)
        if not request.student_id:
            raise InvalidArgument("student_id is required", field="student_id")
        if not (principal.role == Role.ADMIN or principal.subject == request.student_id):
            raise PermissionDenied("only the student themselves or an admin may export a student's data")
        # The export holds the scores: those still queued are written first.
        await self._pending_scores.settled_all()
        document = await self._read(privacy.export_student, student_id=request.student_id)
        if principal.role != Role.STUDENT:
            await self._write(
                staff.record_action,
                actor=self._actor(principal),
                audit_id=accounts.new_id("aud"),
                now_ms=now_ms(),
                action="export_student_data",
                target_type="student",
                target=request.student_id,
                student_id=request.student_id,
            )
        return json.dumps(document, indent=2, sort_keys=True)

    async def ExportStudentArchive(
        self, request: pb.ExportStudentDataRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        document = await self._export_document(request, context)
        archive = await self._read(export.write_archive, student_id=request.student_id, document=document)
        try:
            while chunk := await self._cpu(archive.read, EXPORT_CHUNK_BYTES):
                yield httpbody_pb2.HttpBody(content_type=export.ARCHIVE_TYPE, data=chunk)
        finally:
            archive.close()

    async def EraseStudentData(
        self, request: pb.EraseStudentDataRequest, context: Context
    ) -> pb.EraseStudentDataResponse:
        principal = self._principal(context)
        if principal.role != Role.ADMIN:
            raise PermissionDenied("only an admin erases student data")
        if not request.student_id:
            raise InvalidArgument("student_id is required", field="student_id")
        if len(request.reason) > 1000:
            raise InvalidArgument("reason is longer than 1000 characters", field="reason")
        counts = await self._write(
            privacy.erase_student,
            student_id=request.student_id,
            actor=principal.subject,
            reason=request.reason,
            audit_id=accounts.new_id("aud"),
            now_ms=now_ms(),
            password_hash=await self._hashing.unusable(),
            # Random, stored nowhere with the account: the student's audit entries stay one person's, unnamed.
            pseudonym=accounts.new_id("anon"),
        )
        self._heads.clear()
        log.info("erased the data of student %s (audit %s)", request.student_id, counts.audit_id)
        return pb.EraseStudentDataResponse(
            sessions_erased=counts.sessions,
            responses_erased=counts.responses,
            events_erased=counts.events,
            audit_event_id=counts.audit_id,
            recordings_erased=counts.recordings,
            recording_bytes_erased=counts.recording_bytes,
        )


def _recording_proto(info: recordings_store.RecordingInfo, *, replayed: bool) -> pb.Recording:
    return pb.Recording(
        audio_ref=info.recording_id,
        item_id=info.item_id,
        content_type=info.content_type,
        byte_size=info.byte_size,
        duration_ms=info.duration_ms,
        sha256=info.sha256,
        create_time=timestamp(info.create_ms),
        replayed=replayed,
    )
