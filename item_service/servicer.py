"""The gRPC servicer of item_service: ItemService over one ItemBank."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeAlias, TypeVar

import grpc
from google.api import httpbody_pb2  # type: ignore[import-untyped]
from google.protobuf.message import Message
from toefl.item.v1 import item_pb2, item_service_pb2, item_service_pb2_grpc

from item_service.assembly import AssemblyIndex, assemble, build_index
from item_service.convert import (
    SERVER_FIELDS,
    changed_paths,
    check_enum_value,
    check_import,
    check_media,
    check_pretest_model,
    check_proposed_parameters,
    check_sha256,
    check_statistics,
    descriptor_has_path,
    normalize_item,
    require_field,
)
from item_service.qa import qa_passed, run_qa_checks
from item_service.storage import (
    READ_ONLY_MESSAGE,
    AuditFilter,
    BankReader,
    BankWriter,
    ItemBank,
    ItemFilter,
)
from toefl_core import paging
from toefl_core.auth import Principal, Role, authenticate, require_role
from toefl_core.errors import Aborted, DomainError, FailedPrecondition, InvalidArgument, PermissionDenied
from toefl_core.grpc_errors import status_proto
from toefl_core.media import MEDIA_CACHE_CONTROL, media_signing_key, valid_media_signature
from toefl_core.student_view import student_copy, to_student_view

Context = grpc.aio.ServicerContext[Any, Any]
R = TypeVar("R")
M = TypeVar("M", bound=Message)

SERVICE_NAME = "item_service"
FULL_VIEW_ROLES = (Role.AUTHOR, Role.ADMIN, Role.SERVICE)
# Who reads the bank directly. Not students: one answer per item, compared with their score, would let them
# harvest the keys; they see the items of their own open module, through session_service.
BANK_READ_ROLES = (Role.TEACHER, Role.RATER, Role.AUTHOR, Role.ADMIN, Role.SERVICE)
STUDENT_READ_REFUSAL = (
    "students do not read the item bank; they see the items of their session's current module "
    "(GET /api/sessions/{session_id}/module)"
)
WRITE_ROLES = (Role.AUTHOR, Role.ADMIN)
ASSEMBLY_ROLES = (Role.SERVICE, Role.ADMIN)
STATISTICS_WRITE_ROLES = (Role.SERVICE, Role.ADMIN)
MAX_STATISTICS_BATCH = 1000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_BATCH_GET = 500
# Modules per AssembleModules call: a batch is one read of the bank and one reply.
MAX_ASSEMBLE_BATCH = 64
# Top-level fields UpdateItem may change (and their sub-paths); status moves only through the review RPCs.
UPDATABLE_FIELDS = frozenset(
    {"passage_id", "position", "content", "answer_key", "irt", "rubric", "provenance", "demo"}
)
# Recalibrated IRT parameters may land on an item in any live status; everything else only on a DRAFT.
LIVE_UPDATABLE_FIELDS = frozenset({"irt"})
ASSEMBLY_INDEX = "assembly"
ItemView: TypeAlias = item_pb2.ItemView.ValueType


def _in_view(message: M, view: ItemView) -> M:
    # Cached messages are shared: the STUDENT view is a stripped copy.
    return message if view == item_pb2.ITEM_VIEW_FULL else student_copy(message)


class ItemServicer(item_service_pb2_grpc.ItemServiceServicer):
    """Every RPC authenticates the caller, checks the request, then runs one transaction in a worker thread."""

    def __init__(self, bank: ItemBank, *, token_key: str) -> None:
        self._bank = bank
        self._token_key = token_key
        self._media_key = media_signing_key(token_key)
        self._pages = paging.PageTokens(token_key)

    # Helpers

    def _principal(self, context: Context) -> Principal:
        return authenticate(self._token_key, context.invocation_metadata())

    def _reader(self, context: Context) -> Principal:
        """The caller of a bank read, refused when a student."""
        principal = self._principal(context)
        if principal.role == Role.STUDENT:
            raise PermissionDenied(STUDENT_READ_REFUSAL)
        require_role(principal, BANK_READ_ROLES, "reading the item bank")
        return principal

    def _assembly_view(
        self, principal: Principal, request: item_service_pb2.AssembleModuleRequest, field_prefix: str = ""
    ) -> ItemView:
        """The view one module's assembly asks for (as `_view` allows it); its spec is required."""
        view = self._view(principal, request.view, field=f"{field_prefix}view")
        if not request.HasField("spec"):
            raise InvalidArgument(f"{field_prefix}spec is required", field=f"{field_prefix}spec")
        return view

    def _view(self, principal: Principal, view: int, field: str = "view") -> ItemView:
        check_enum_value(view, enum=item_pb2.ItemView.DESCRIPTOR, field=field)
        if view == item_pb2.ITEM_VIEW_FULL:
            require_role(principal, FULL_VIEW_ROLES, "the FULL view")
            return item_pb2.ITEM_VIEW_FULL
        return item_pb2.ITEM_VIEW_STUDENT

    def _writer_principal(self, context: Context, roles: Sequence[Role], action: str) -> Principal:
        principal = self._principal(context)
        if self._bank.read_only:
            # Checked before the role, so that every caller learns how a new bank ships.
            raise FailedPrecondition(READ_ONLY_MESSAGE, reason="ITEM_BANK_READ_ONLY")
        require_role(principal, roles, action)
        return principal

    async def _read(self, work: Callable[[BankReader], R]) -> R:
        def run() -> R:
            with self._bank.reading() as reader:
                return work(reader)

        return await asyncio.to_thread(run)

    async def _write(self, principal: Principal, work: Callable[[BankWriter], R], *, items: bool = True) -> R:
        def run() -> R:
            with self._bank.writing(actor=principal.subject, items=items, role=principal.role.value) as writer:
                return work(writer)

        return await asyncio.to_thread(run)

    # Reads

    async def GetItem(self, request: item_service_pb2.GetItemRequest, context: Context) -> item_pb2.Item:
        view = self._view(self._reader(context), request.view)
        item_id = require_field(request.item_id, "item_id")
        if request.revision < 0:
            raise InvalidArgument("revision must not be negative (0 means the current one)", field="revision")
        item = await self._read(lambda reader: reader.get_item(item_id=item_id, revision=request.revision))
        return _in_view(item, view)

    async def BatchGetItems(
        self, request: item_service_pb2.BatchGetItemsRequest, context: Context
    ) -> item_service_pb2.BatchGetItemsResponse:
        view = self._view(self._reader(context), request.view)
        if len(request.items) > MAX_BATCH_GET:
            raise InvalidArgument(f"items holds {len(request.items)} refs; at most {MAX_BATCH_GET}", field="items")
        refs: list[tuple[str, int]] = []
        for index, ref in enumerate(request.items):
            require_field(ref.item_id, f"items[{index}].item_id")
            if ref.revision < 0:
                raise InvalidArgument("revision must not be negative", field=f"items[{index}].revision")
            refs.append((ref.item_id, ref.revision))
        items = await self._read(lambda reader: reader.get_items(refs=refs))
        return item_service_pb2.BatchGetItemsResponse(items=[_in_view(item, view) for item in items])

    async def ListItems(
        self, request: item_service_pb2.ListItemsRequest, context: Context
    ) -> item_service_pb2.ListItemsResponse:
        view = self._view(self._reader(context), request.view)
        page_size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        check_enum_value(request.section, enum=item_pb2.Section.DESCRIPTOR, field="section")
        check_enum_value(request.task_type, enum=item_pb2.TaskType.DESCRIPTOR, field="task_type")
        check_enum_value(request.status, enum=item_pb2.ItemStatus.DESCRIPTOR, field="status")
        low = request.min_difficulty if request.HasField("min_difficulty") else None
        high = request.max_difficulty if request.HasField("max_difficulty") else None
        for name, bound in (("min_difficulty", low), ("max_difficulty", high)):
            if bound is None:
                continue
            if view != item_pb2.ITEM_VIEW_FULL:
                # Filtering by difficulty would reveal IRT parameters through the STUDENT view.
                raise InvalidArgument(f"{name} needs view ITEM_VIEW_FULL", field=name)
            if not math.isfinite(bound):
                raise InvalidArgument(f"{name} must be a finite number", field=name)
        if low is not None and high is not None and low > high:
            raise InvalidArgument("min_difficulty is greater than max_difficulty", field="min_difficulty")
        filters = ItemFilter(
            section=request.section,
            task_type=request.task_type,
            status=request.status,
            min_difficulty=low,
            max_difficulty=high,
            passage_id=request.passage_id,
        )
        query = ("ListItems", filters)
        position = self._pages.decode(request.page_token, query=query, shape=(str,))
        after = str(position[0]) if position else ""

        def work(reader: BankReader) -> tuple[list[item_pb2.Item], str, int]:
            if filters.passage_id and reader.resolve_passage(reference=filters.passage_id) is None:
                raise InvalidArgument(f"passage_id: unknown passage {filters.passage_id!r}", field="passage_id")
            ids = reader.list_item_ids(filters=filters, after=after, limit=page_size + 1)
            page, next_token = self._pages.page(ids, page_size, query=query, position=lambda item_id: [item_id])
            items = reader.get_items(refs=[(item_id, 0) for item_id in page])
            return items, next_token, reader.count_items(filters=filters)

        items, next_token, total = await self._read(work)
        return item_service_pb2.ListItemsResponse(
            items=[_in_view(item, view) for item in items], next_page_token=next_token, total_size=total
        )

    async def GetPassage(self, request: item_service_pb2.GetPassageRequest, context: Context) -> item_pb2.Passage:
        view = self._view(self._reader(context), request.view)
        passage_id = require_field(request.passage_id, "passage_id")
        passage = await self._read(lambda reader: reader.get_passage(passage_id=passage_id))
        return _in_view(passage, view)

    async def ListPassages(
        self, request: item_service_pb2.ListPassagesRequest, context: Context
    ) -> item_service_pb2.ListPassagesResponse:
        view = self._view(self._reader(context), request.view)
        page_size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        check_enum_value(request.section, enum=item_pb2.Section.DESCRIPTOR, field="section")
        check_enum_value(request.task_type, enum=item_pb2.TaskType.DESCRIPTOR, field="task_type")
        query = ("ListPassages", request.section, request.task_type)
        position = self._pages.decode(request.page_token, query=query, shape=(str,))
        after = str(position[0]) if position else ""
        passages = await self._read(
            lambda reader: reader.list_passages(
                section=request.section, task_type=request.task_type, after=after, limit=page_size + 1
            )
        )
        page, next_token = self._pages.page(passages, page_size, query=query, position=lambda p: [p.passage_id])
        return item_service_pb2.ListPassagesResponse(
            passages=[_in_view(passage, view) for passage in page], next_page_token=next_token
        )

    async def ListItemRevisions(
        self, request: item_service_pb2.ListItemRevisionsRequest, context: Context
    ) -> item_service_pb2.ListItemRevisionsResponse:
        view = self._view(self._reader(context), request.view)
        item_id = require_field(request.item_id, "item_id")
        page_size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        query = ("ListItemRevisions", item_id)
        position = self._pages.decode(request.page_token, query=query, shape=(int,))
        after = int(position[0]) if position else 0
        revisions = await self._read(
            lambda reader: reader.list_revisions(item_id=item_id, after=after, limit=page_size + 1)
        )
        page, next_token = self._pages.page(revisions, page_size, query=query, position=lambda r: [r.revision])
        return item_service_pb2.ListItemRevisionsResponse(
            revisions=[_in_view(revision, view) for revision in page], next_page_token=next_token
        )

    async def ListItemAuditEntries(
        self, request: item_service_pb2.ListItemAuditEntriesRequest, context: Context
    ) -> item_service_pb2.ListItemAuditEntriesResponse:
        require_role(self._principal(context), (Role.ADMIN,), "ListItemAuditEntries")
        where = AuditFilter(
            item_id=request.item_id,
            action=request.action,
            actor=request.actor_id,
            start=request.start_time.ToDatetime() if request.HasField("start_time") else None,
            end=request.end_time.ToDatetime() if request.HasField("end_time") else None,
        )
        page_size = paging.page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        query = (
            "ListItemAuditEntries",
            where.item_id,
            where.action,
            where.actor,
            str(where.start),
            str(where.end),
        )
        position = self._pages.decode(request.page_token, query=query, shape=(str,))
        before = str(position[0]) if position else ""
        entries = await self._read(
            lambda reader: reader.list_audit(where=where, before_id=before, limit=page_size + 1)
        )
        page, next_token = self._pages.page(entries, page_size, query=query, position=lambda e: [e.audit_id])
        return item_service_pb2.ListItemAuditEntriesResponse(entries=page, next_page_token=next_token)

    async def ListReviews(
        self, request: item_service_pb2.ListReviewsRequest, context: Context
    ) -> item_service_pb2.ListReviewsResponse:
        # Reviews are QA data, which the STUDENT view never shows.
        require_role(self._principal(context), FULL_VIEW_ROLES, "ListReviews")
        item_id = require_field(request.item_id, "item_id")
        reviews = await self._read(lambda reader: reader.list_reviews(item_id=item_id))
        return item_service_pb2.ListReviewsResponse(reviews=reviews)

    async def ExportItems(
        self, request: item_service_pb2.ExportItemsRequest, context: Context
    ) -> AsyncIterator[item_service_pb2.ExportRecord]:
        require_role(self._principal(context), FULL_VIEW_ROLES, "ExportItems")
        check_enum_value(request.section, enum=item_pb2.Section.DESCRIPTOR, field="section")
        check_enum_value(request.task_type, enum=item_pb2.TaskType.DESCRIPTOR, field="task_type")
        check_enum_value(request.status, enum=item_pb2.ItemStatus.DESCRIPTOR, field="status")
        filters = ItemFilter(section=request.section, task_type=request.task_type, status=request.status)

        def work(reader: BankReader) -> tuple[list[item_pb2.Media], list[item_pb2.Passage], list[item_pb2.Item]]:
            passages, items = reader.export(filters=filters)
            return reader.media_of(passages=passages, items=items), passages, items

        media, passages, items = await self._read(work)
        for blob in media:
            yield item_service_pb2.ExportRecord(media=blob)
        for passage in passages:
            yield item_service_pb2.ExportRecord(passage=passage)
        for item in items:
            yield item_service_pb2.ExportRecord(item=item)

    # Writes

    async def CreateItem(self, request: item_service_pb2.CreateItemRequest, context: Context) -> item_pb2.Item:
        principal = self._writer_principal(context, WRITE_ROLES, "CreateItem")
        if not request.HasField("item"):
            raise InvalidArgument("item is required", field="item")
        item = item_pb2.Item()
        item.CopyFrom(request.item)
        normalize_item(item, prefix="item")
        for name in SERVER_FIELDS:
            item.ClearField(name)
        item.status = item_pb2.ITEM_STATUS_DRAFT
        if item.provenance.source == item_pb2.PROVENANCE_SOURCE_UNSPECIFIED:
            item.provenance.source = item_pb2.PROVENANCE_SOURCE_AUTHOR
        if not item.provenance.author:
            item.provenance.author = principal.subject

        def work(writer: BankWriter) -> item_pb2.Item:
            if request.request_id:
                earlier = writer.find_created(request_id=request.request_id)
                if earlier is not None:
                    return earlier
            if item.passage_id:
                item.passage_id = writer.passage_for_item(
                    reference=item.passage_id, task_type=item.task_type, field_name="item.passage_id"
                )
            return writer.create_item(item=item, request_id=request.request_id)

        return await self._write(principal, work)

    async def UpdateItem(self, request: item_service_pb2.UpdateItemRequest, context: Context) -> item_pb2.Item:
        principal = self._writer_principal(context, WRITE_ROLES, "UpdateItem")
        if not request.HasField("item"):
            raise InvalidArgument("item is required", field="item")
        item_id = require_field(request.item.item_id, "item.item_id")
        etag = require_field(request.item.etag, "item.etag")
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidArgument("update_mask must name the fields to change", field="update_mask")
        for path in paths:
            if path.split(".", 1)[0] not in UPDATABLE_FIELDS or not descriptor_has_path(
                item_pb2.Item.DESCRIPTOR, path
            ):
                raise InvalidArgument(
                    f"update_mask: {path!r} cannot be updated; use paths under "
                    f"{', '.join(sorted(UPDATABLE_FIELDS))}",
                    field="update_mask",
                )

        def work(writer: BankWriter) -> item_pb2.Item:
            current = writer.get_item(item_id=item_id)
            if etag != current.etag:
                raise Aborted(
                    f"item {item_id!r} changed since it was read (stale etag); read it again and retry",
                    reason="STALE_ETAG",
                )
            if current.status == item_pb2.ITEM_STATUS_RETIRED:
                raise FailedPrecondition(
                    f"item {item_id!r} is retired and cannot change",
                    reason="ITEM_STATUS",
                    metadata={"status": "ITEM_STATUS_RETIRED"},
                )
            live_only = all(path.split(".", 1)[0] in LIVE_UPDATABLE_FIELDS for path in paths)
            if current.status != item_pb2.ITEM_STATUS_DRAFT and not live_only:
                raise FailedPrecondition(
                    f"item {item_id!r} is {item_pb2.ItemStatus.Name(current.status)}; only a DRAFT item's content "
                    "can change (IRT parameters excepted)",
                    reason="ITEM_STATUS",
                    metadata={"status": item_pb2.ItemStatus.Name(current.status)},
                )
            updated = item_pb2.Item()
            updated.CopyFrom(current)
            request.update_mask.MergeMessage(
                request.item, updated, replace_message_field=True, replace_repeated_field=True
            )
            normalize_item(updated, prefix="item")
            if updated.passage_id and updated.passage_id != current.passage_id:
                updated.passage_id = writer.passage_for_item(
                    reference=updated.passage_id, task_type=updated.task_type, field_name="item.passage_id"
                )
            changed = changed_paths(current, updated, skip=SERVER_FIELDS)
            if not changed:
                return current
            return writer.save_item(item=updated, changed=changed, note=request.note)

        return await self._write(principal, work)

    async def SubmitForReview(
        self, request: item_service_pb2.SubmitForReviewRequest, context: Context
    ) -> item_pb2.Review:
        principal = self._writer_principal(context, WRITE_ROLES, "SubmitForReview")
        item_id = require_field(request.item_id, "item_id")

        def work(writer: BankWriter) -> item_pb2.Review:
            item = writer.get_item(item_id=item_id)
            if item.status != item_pb2.ITEM_STATUS_DRAFT:
                raise FailedPrecondition(
                    f"item {item_id!r} is {item_pb2.ItemStatus.Name(item.status)}; only a DRAFT can be submitted",
                    reason="ITEM_STATUS",
                    metadata={"status": item_pb2.ItemStatus.Name(item.status)},
                )
            passage = writer.get_passage(passage_id=item.passage_id) if item.passage_id else None
            checks = run_qa_checks(item, passage)
            passed = qa_passed(checks)
            review = writer.add_review(
                item=item,
                kind=item_pb2.REVIEW_KIND_AUTOMATED,
                verdict=item_pb2.REVIEW_VERDICT_PASS if passed else item_pb2.REVIEW_VERDICT_FAIL,
                checks=checks,
            )
            if passed:
                item.status = item_pb2.ITEM_STATUS_IN_REVIEW
                writer.save_item(item=item, changed=["status"], note=f"passed automated QA ({review.review_id})")
            return review

        return await self._write(principal, work)

    async def ReviewItem(self, request: item_service_pb2.ReviewItemRequest, context: Context) -> item_pb2.Review:
        principal = self._writer_principal(context, WRITE_ROLES, "ReviewItem")
        item_id = require_field(request.item_id, "item_id")
        outcomes = {
            item_pb2.REVIEW_VERDICT_APPROVE: item_pb2.ITEM_STATUS_APPROVED,
            item_pb2.REVIEW_VERDICT_REJECT: item_pb2.ITEM_STATUS_DRAFT,
        }
        if request.verdict not in outcomes:
            raise InvalidArgument(
                "verdict must be REVIEW_VERDICT_APPROVE or REVIEW_VERDICT_REJECT", field="verdict"
            )
        if request.verdict == item_pb2.REVIEW_VERDICT_REJECT and not request.comment.strip():
            raise InvalidArgument("a rejection needs a comment saying what to fix", field="comment")

        def work(writer: BankWriter) -> item_pb2.Review:
            item = writer.get_item(item_id=item_id)
            if item.status != item_pb2.ITEM_STATUS_IN_REVIEW:
                raise FailedPrecondition(
                    f"item {item_id!r} is {item_pb2.ItemStatus.Name(item.status)}; only an item IN_REVIEW can be "
                    "reviewed",
                    reason="ITEM_STATUS",
                    metadata={"status": item_pb2.ItemStatus.Name(item.status)},
                )
            if request.verdict == item_pb2.REVIEW_VERDICT_APPROVE and item.provenance.author == principal.subject:
                # Four eyes: whoever wrote an item cannot be the one who approves it.
                raise FailedPrecondition(
                    f"{principal.subject!r} wrote item {item_id!r} and cannot approve it", reason="OWN_ITEM_REVIEW"
                )
            review = writer.add_review(
                item=item, kind=item_pb2.REVIEW_KIND_HUMAN, verdict=request.verdict, comment=request.comment
            )
            item.status = outcomes[request.verdict]
            writer.save_item(item=item, changed=["status"], note=f"human review {review.review_id}")
            return review

        return await self._write(principal, work)

    async def PretestItem(self, request: item_service_pb2.PretestItemRequest, context: Context) -> item_pb2.Item:
        principal = self._writer_principal(context, WRITE_ROLES, "PretestItem")
        item_id = require_field(request.item_id, "item_id")

        def work(writer: BankWriter) -> item_pb2.Item:
            item = writer.get_item(item_id=item_id)
            if item.status == item_pb2.ITEM_STATUS_PRETEST:
                return item
            _require_status(item, item_pb2.ITEM_STATUS_APPROVED, "pretested")
            check_pretest_model(item)
            item.status = item_pb2.ITEM_STATUS_PRETEST
            return writer.save_item(item=item, changed=["status"], note="pretest: fills unscored pretest slots")

        return await self._write(principal, work)

    async def ProposeItemParameters(
        self, request: item_service_pb2.ProposeItemParametersRequest, context: Context
    ) -> item_pb2.Item:
        principal = self._writer_principal(context, STATISTICS_WRITE_ROLES, "ProposeItemParameters")
        item_id = require_field(request.item_id, "item_id")
        run_id = require_field(request.run_id, "run_id")
        if not request.HasField("irt"):
            raise InvalidArgument("irt is required", field="irt")

        def work(writer: BankWriter) -> item_pb2.Item:
            item = writer.get_item(item_id=item_id)
            if item.irt.calibration.run_id == run_id and item.irt == request.irt:
                # A retry of the same run: the proposal is in already, whatever has happened to it since.
                return item
            _require_status(item, item_pb2.ITEM_STATUS_PRETEST, "given proposed parameters")
            check_proposed_parameters(item, request.irt, run_id=run_id)
            item.irt.CopyFrom(request.irt)
            item.status = item_pb2.ITEM_STATUS_IN_REVIEW
            calibration = request.irt.calibration
            return writer.save_item(
                item=item,
                changed=["irt", "status"],
                note=f"calibration run {run_id} proposes parameters from {calibration.sample_size} responses; "
                "review them (approve, then activate)",
            )

        return await self._write(principal, work)

    async def ActivateItem(self, request: item_service_pb2.ActivateItemRequest, context: Context) -> item_pb2.Item:
        principal = self._writer_principal(context, WRITE_ROLES, "ActivateItem")
        item_id = require_field(request.item_id, "item_id")

        def work(writer: BankWriter) -> item_pb2.Item:
            item = writer.get_item(item_id=item_id)
            _require_status(item, item_pb2.ITEM_STATUS_APPROVED, "activated")
            if not item.HasField("irt"):
                # Assembly chooses by information: an item without parameters could never be chosen fairly.
                raise FailedPrecondition(
                    f"item {item_id!r} has no IRT parameters; calibrate it before activating",
                    reason="ITEM_NOT_CALIBRATED",
                )
            item.status = item_pb2.ITEM_STATUS_ACTIVE
            saved = writer.save_item(item=item, changed=["status"], note=request.reason or "activated")
            writer.record_action(
                action="activate_item",
                target_type="item",
                target=item_id,
                reason=request.reason,
                detail={"revision": saved.revision, "task_type": item_pb2.TaskType.Name(saved.task_type)},
            )
            return saved

        return await self._write(principal, work)

    async def RetireItem(self, request: item_service_pb2.RetireItemRequest, context: Context) -> item_pb2.Item:
        principal = self._writer_principal(context, WRITE_ROLES, "RetireItem")
        item_id = require_field(request.item_id, "item_id")

        def work(writer: BankWriter) -> item_pb2.Item:
            item = writer.get_item(item_id=item_id)
            if item.status == item_pb2.ITEM_STATUS_RETIRED:
                return item
            item.status = item_pb2.ITEM_STATUS_RETIRED
            saved = writer.save_item(item=item, changed=["status"], note=request.reason or "retired")
            writer.record_action(
                action="retire_item",
                target_type="item",
                target=item_id,
                reason=request.reason,
                detail={"revision": saved.revision},
            )
            return saved

        return await self._write(principal, work)

    async def ImportItems(
        self, request: item_service_pb2.ImportItemsRequest, context: Context
    ) -> item_service_pb2.ImportItemsResponse:
        principal = self._writer_principal(context, (Role.ADMIN,), "ImportItems")
        passages, items = check_import(request.passages, request.items)
        media = check_media(request.media)
        return await self._write(
            principal,
            lambda writer: writer.import_records(
                media=media, passages=passages, items=items, dry_run=request.dry_run, batch_name=request.batch_name
            ),
        )

    # Media

    async def GetMedia(self, request: item_service_pb2.GetMediaRequest, context: Context) -> httpbody_pb2.HttpBody:
        digest = check_sha256(request.sha256, "sha256")
        if request.signature or request.expires:
            # A student's browser: the link session_service signed for an item of their open module is the whole
            # permission (an <audio> element sends no token).
            valid = valid_media_signature(
                self._media_key, digest, request.expires, request.signature, now=time.time()
            )
            if not valid:
                raise PermissionDenied(
                    "this audio link is not valid or has expired; reload the question", reason="MEDIA_LINK_INVALID"
                )
        else:
            self._reader(context)
        blob = await self._read(lambda reader: reader.get_media(sha256=digest))
        # The bytes of a content-addressed blob never change: a browser keeps them (its own cache only).
        await context.send_initial_metadata((("cache-control", MEDIA_CACHE_CONTROL),))
        return httpbody_pb2.HttpBody(content_type=blob.content_type, data=blob.data)

    # Statistics

    async def GetItemStatistics(
        self, request: item_service_pb2.GetItemStatisticsRequest, context: Context
    ) -> item_pb2.ItemStatistics:
        require_role(self._principal(context), FULL_VIEW_ROLES, "GetItemStatistics")
        item_id = require_field(request.item_id, "item_id")
        return await self._read(lambda reader: reader.get_statistics(item_id=item_id))

    async def WriteItemStatistics(
        self, request: item_service_pb2.WriteItemStatisticsRequest, context: Context
    ) -> item_service_pb2.WriteItemStatisticsResponse:
        principal = self._writer_principal(context, STATISTICS_WRITE_ROLES, "WriteItemStatistics")
        check_statistics(request.statistics, run_id=request.run_id, limit=MAX_STATISTICS_BATCH)
        return await self._write(
            principal,
            lambda writer: writer.write_statistics(statistics=request.statistics, run_id=request.run_id),
            items=False,
        )

    # Assembly

    async def AssembleModule(
        self, request: item_service_pb2.AssembleModuleRequest, context: Context
    ) -> item_service_pb2.AssembleModuleResponse:
        principal = self._principal(context)
        require_role(principal, ASSEMBLY_ROLES, "AssembleModule")
        view = self._assembly_view(principal, request)
        response = await self._read(lambda reader: assemble_in(reader, request))
        if view != item_pb2.ITEM_VIEW_FULL:
            _to_student_view(response)
        return response

    async def AssembleModules(
        self, request: item_service_pb2.AssembleModulesRequest, context: Context
    ) -> item_service_pb2.AssembleModulesResponse:
        principal = self._principal(context)
        require_role(principal, ASSEMBLY_ROLES, "AssembleModules")
        count = len(request.requests)
        if not 1 <= count <= MAX_ASSEMBLE_BATCH:
            raise InvalidArgument(
                f"requests holds {count} modules; it takes 1 to {MAX_ASSEMBLE_BATCH}", field="requests"
            )
        views = [
            self._assembly_view(principal, one, field_prefix=f"requests[{index}].")
            for index, one in enumerate(request.requests)
        ]

        def assemble_each(reader: BankReader) -> list[item_service_pb2.AssembleModuleResponse | DomainError]:
            outcomes: list[item_service_pb2.AssembleModuleResponse | DomainError] = []
            for one in request.requests:
                try:
                    outcomes.append(assemble_in(reader, one))
                except DomainError as error:
                    # One module's pool exhausted, or its spec invalid: the other modules are still assembled.
                    outcomes.append(error)
            return outcomes

        reply = item_service_pb2.AssembleModulesResponse()
        for outcome, view in zip(await self._read(assemble_each), views, strict=True):
            entry = reply.entries.add()
            if isinstance(outcome, DomainError):
                entry.error.CopyFrom(status_proto(outcome))
                continue
            if view != item_pb2.ITEM_VIEW_FULL:
                _to_student_view(outcome)
            entry.module.CopyFrom(outcome)
        return reply


def _to_student_view(response: item_service_pb2.AssembleModuleResponse) -> None:
    for message in (*response.items, *response.passages):
        to_student_view(message)


def _require_status(item: item_pb2.Item, status: item_pb2.ItemStatus.ValueType, action: str) -> None:
    if item.status != status:
        name = item_pb2.ItemStatus.Name(status).removeprefix("ITEM_STATUS_")
        article = "an" if name[0] in "AEIOU" else "a"
        raise FailedPrecondition(
            f"item {item.item_id!r} is {item_pb2.ItemStatus.Name(item.status)}; only {article} {name} item can be "
            f"{action}",
            reason="ITEM_STATUS",
            metadata={"status": item_pb2.ItemStatus.Name(item.status)},
        )


def assembly_index(reader: BankReader) -> AssemblyIndex:
    """The active and pretest items grouped for assembly, built once per write generation."""
    return reader.derived(
        ASSEMBLY_INDEX,
        lambda r: build_index(r.active_items(), r.items_in_status(item_pb2.ITEM_STATUS_PRETEST)),
    )


def assemble_in(
    reader: BankReader, request: item_service_pb2.AssembleModuleRequest
) -> item_service_pb2.AssembleModuleResponse:
    """AssembleModule inside one read transaction (FULL view; the caller strips)."""
    index = assembly_index(reader)
    result = assemble(
        index,
        spec=request.spec,
        exclude=request.exclude_item_ids,
        seed=request.seed,
        pretest_administrations=request.pretest_administrations,
    )
    return item_service_pb2.AssembleModuleResponse(
        items=result.items, passages=reader.get_passages(passage_ids=result.passage_ids), record=result.record
    )
