"""Reads and writes of the item bank, one transaction per unit of work, with a per-process cache of items."""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, Integer, Select, Text, cast, func, select, update
from sqlalchemy.orm import Session
from toefl.common.v1 import audit_pb2
from toefl.item.v1 import item_pb2, item_service_pb2

from item_service.convert import SERVER_FIELDS, changed_paths
from item_service.storage.models import (
    AuditRow,
    BankMetaRow,
    ImportBatchRow,
    ItemRow,
    ItemStatisticsRow,
    MediaRow,
    PassageRow,
    ReviewRow,
    RevisionRow,
)
from item_service.storage.rows import (
    apply_item,
    apply_passage,
    apply_statistics,
    row_to_audit,
    row_to_item,
    row_to_passage,
    row_to_review,
    row_to_revision,
    row_to_statistics,
    to_json,
    to_timestamp,
    utcnow,
)
from toefl_core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from toefl_core.media import MEDIA_REF_PREFIX, is_media_ref, media_digest
from toefl_core.storage import IMMEDIATE

GENERATION_KEY = "generation"
READ_ONLY_MESSAGE = (
    "the item bank is baked into the item_service image and is read-only; to ship a new bank, rebuild the image "
    "with `make deploy`"
)
# SQLite limits the number of bound parameters per statement.
IN_CHUNK = 500
T = TypeVar("T")
ProgressFn = Callable[[int, int], None]
# What a statistics write records about itself rather than about the item: never part of the comparison.
STATISTICS_BOOKKEEPING = ("item_id", "run_id", "compute_time")


@dataclass(frozen=True)
class ItemFilter:
    section: item_pb2.Section.ValueType = item_pb2.SECTION_UNSPECIFIED
    task_type: item_pb2.TaskType.ValueType = item_pb2.TASK_TYPE_UNSPECIFIED
    status: item_pb2.ItemStatus.ValueType = item_pb2.ITEM_STATUS_UNSPECIFIED
    min_difficulty: float | None = None
    max_difficulty: float | None = None
    passage_id: str = ""


class _Cache:
    """Decoded items and passages of one write generation; a write anywhere moves the generation on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = -1
        self.items: dict[str, item_pb2.Item] = {}
        self.passages: dict[str, item_pb2.Passage] = {}
        self.derived: dict[str, Any] = {}

    def _clear(self) -> None:
        self.items = {}
        self.passages = {}
        self.derived = {}

    def observe(self, generation: int) -> None:
        with self.lock:
            if generation > self.generation:
                # Another process (or connection) wrote: nothing cached can be trusted.
                self._clear()
                self.generation = generation

    def put_item(self, generation: int, item: item_pb2.Item) -> None:
        with self.lock:
            if generation == self.generation:
                self.items[item.item_id] = item

    def put_passage(self, generation: int, passage: item_pb2.Passage) -> None:
        with self.lock:
            if generation == self.generation:
                self.passages[passage.passage_id] = passage

    def put_derived(self, generation: int, name: str, value: Any) -> None:
        with self.lock:
            if generation == self.generation:
                self.derived[name] = value

    def after_write(self, generation: int, item_ids: set[str]) -> None:
        with self.lock:
            for item_id in item_ids:
                self.items.pop(item_id, None)
            # Passages list their items and derived data spans the bank: both are cheap to rebuild.
            self.passages = {}
            self.derived = {}
            if self.generation < generation:
                if self.generation != generation - 1:
                    self._clear()
                self.generation = generation


def _etag(item_id: str, revision: int, moment: datetime) -> str:
    return hashlib.sha256(f"{item_id}\0{revision}\0{moment.isoformat()}".encode()).hexdigest()[:20]


def _filtered(query: Select[Any], filters: ItemFilter) -> Select[Any]:
    if filters.section:
        query = query.where(ItemRow.section == item_pb2.Section.Name(filters.section))
    if filters.task_type:
        query = query.where(ItemRow.task_type == item_pb2.TaskType.Name(filters.task_type))
    if filters.status:
        query = query.where(ItemRow.status == item_pb2.ItemStatus.Name(filters.status))
    if filters.min_difficulty is not None:
        query = query.where(ItemRow.difficulty >= filters.min_difficulty)
    if filters.max_difficulty is not None:
        query = query.where(ItemRow.difficulty <= filters.max_difficulty)
    if filters.passage_id:
        query = query.where(ItemRow.passage_id == filters.passage_id)
    return query


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


@dataclass(frozen=True)
class AuditFilter:
    item_id: str = ""
    action: str = ""
    actor: str = ""
    start: datetime | None = None
    end: datetime | None = None


class BankReader:
    """Reads inside one transaction. Returned messages may be shared with the cache: copy before changing."""

    def __init__(self, session: Session, cache: _Cache, generation: int) -> None:
        self.session = session
        self.cache = cache
        self.generation = generation

    # Items

    def _load_items(self, item_ids: Sequence[str]) -> None:
        for chunk in _chunks(item_ids):
            for row in self.session.scalars(select(ItemRow).where(ItemRow.item_id.in_(chunk))):
                self.cache.put_item(self.generation, row_to_item(row))

    def _current(self, item_id: str) -> item_pb2.Item:
        item = self.cache.items.get(item_id)
        if item is not None:
            return item
        row = self.session.get(ItemRow, item_id)
        if row is None:
            raise NotFound(f"item {item_id!r} not found")
        item = row_to_item(row)
        self.cache.put_item(self.generation, item)
        return item

    def get_item(self, *, item_id: str, revision: int = 0) -> item_pb2.Item:
        item = self._current(item_id)
        if revision in (0, item.revision):
            return item
        row = self.session.get(RevisionRow, (item_id, revision)) if revision < item.revision else None
        if row is None:
            raise NotFound(
                f"item {item_id!r} has no revision {revision} (its current revision is {item.revision})"
            )
        return row_to_revision(row).snapshot

    def get_items(self, *, refs: Sequence[tuple[str, int]]) -> list[item_pb2.Item]:
        """Items in request order; NOT_FOUND names the first missing id or revision."""
        missing = [item_id for item_id, _ in refs if item_id not in self.cache.items]
        if missing:
            self._load_items(list(dict.fromkeys(missing)))
        return [self.get_item(item_id=item_id, revision=revision) for item_id, revision in refs]

    def list_item_ids(self, *, filters: ItemFilter, after: str, limit: int) -> list[str]:
        query = _filtered(select(ItemRow.item_id), filters).where(ItemRow.item_id > after)
        return list(self.session.scalars(query.order_by(ItemRow.item_id).limit(limit)))

    def count_items(self, *, filters: ItemFilter) -> int:
        return int(self.session.scalar(_filtered(select(func.count(ItemRow.item_id)), filters)) or 0)

    def active_items(self) -> list[item_pb2.Item]:
        return self.items_in_status(item_pb2.ITEM_STATUS_ACTIVE)

    def items_in_status(self, status: item_pb2.ItemStatus.ValueType) -> list[item_pb2.Item]:
        ids = self.list_item_ids(filters=ItemFilter(status=status), after="", limit=1_000_000_000)
        return self.get_items(refs=[(item_id, 0) for item_id in ids])

    def find_by_external_id(self, *, external_id: str) -> item_pb2.Item | None:
        row = self.session.scalar(select(ItemRow).where(ItemRow.external_id == external_id))
        return None if row is None else row_to_item(row)

    # Passages

    def _item_ids_of(self, passage_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        for chunk in _chunks(passage_ids):
            query = (
                select(ItemRow.passage_id, ItemRow.item_id)
                .where(ItemRow.passage_id.in_(chunk))
                .order_by(ItemRow.passage_id, ItemRow.position, ItemRow.item_id)
            )
            for passage_id, item_id in self.session.execute(query):
                found[str(passage_id)].append(item_id)
        return found

    def _passages_from_rows(self, rows: Sequence[PassageRow]) -> list[item_pb2.Passage]:
        item_ids = self._item_ids_of([row.passage_id for row in rows])
        passages = [row_to_passage(row, item_ids.get(row.passage_id, [])) for row in rows]
        for passage in passages:
            self.cache.put_passage(self.generation, passage)
        return passages

    def get_passage(self, *, passage_id: str) -> item_pb2.Passage:
        passage = self.cache.passages.get(passage_id)
        if passage is not None:
            return passage
        row = self.session.get(PassageRow, passage_id)
        if row is None:
            raise NotFound(f"passage {passage_id!r} not found")
        return self._passages_from_rows([row])[0]

    def get_passages(self, *, passage_ids: Sequence[str]) -> list[item_pb2.Passage]:
        missing = [pid for pid in dict.fromkeys(passage_ids) if pid not in self.cache.passages]
        if missing:
            self._passages_from_rows(
                list(self.session.scalars(select(PassageRow).where(PassageRow.passage_id.in_(missing))))
            )
        return [self.get_passage(passage_id=pid) for pid in passage_ids]

    def resolve_passage(self, *, reference: str) -> PassageRow | None:
        """A passage named by its id or by its external id."""
        row = self.session.get(PassageRow, reference)
        if row is None:
            row = self.session.scalar(select(PassageRow).where(PassageRow.external_id == reference))
        return row

    def list_passages(
        self,
        *,
        section: item_pb2.Section.ValueType,
        task_type: item_pb2.TaskType.ValueType,
        after: str,
        limit: int,
    ) -> list[item_pb2.Passage]:
        query = select(PassageRow).where(PassageRow.passage_id > after)
        if section:
            query = query.where(PassageRow.section == item_pb2.Section.Name(section))
        if task_type:
            query = query.where(PassageRow.task_type == item_pb2.TaskType.Name(task_type))
        rows = list(self.session.scalars(query.order_by(PassageRow.passage_id).limit(limit)))
        return self._passages_from_rows(rows)

    # History

    def list_revisions(self, *, item_id: str, after: int, limit: int) -> list[item_pb2.ItemRevision]:
        self._current(item_id)
        query = (
            select(RevisionRow)
            .where(RevisionRow.item_id == item_id, RevisionRow.revision > after)
            .order_by(RevisionRow.revision)
            .limit(limit)
        )
        return [row_to_revision(row) for row in self.session.scalars(query)]

    def list_audit(self, *, where: AuditFilter, before_id: str, limit: int) -> list[audit_pb2.AuditEntry]:
        """Newest first (by id, which grows with time), before the id of the last entry seen."""
        query = select(AuditRow)
        if where.item_id:
            query = query.where(AuditRow.target == where.item_id)
        if where.action:
            query = query.where(AuditRow.action == where.action)
        if where.actor:
            query = query.where(AuditRow.actor == where.actor)
        if where.start is not None:
            query = query.where(AuditRow.time >= where.start)
        if where.end is not None:
            query = query.where(AuditRow.time < where.end)
        if before_id:
            query = query.where(AuditRow.audit_id < before_id)
        return [
            row_to_audit(row)
            for row in self.session.scalars(query.order_by(AuditRow.audit_id.desc()).limit(limit))
        ]

    def list_reviews(self, *, item_id: str) -> list[item_pb2.Review]:
        self._current(item_id)
        # Review ids grow with time, so id order is the order in which the reviews were made.
        query = select(ReviewRow).where(ReviewRow.item_id == item_id).order_by(ReviewRow.review_id)
        return [row_to_review(row) for row in self.session.scalars(query)]

    # Statistics

    def get_statistics(self, *, item_id: str) -> item_pb2.ItemStatistics:
        row = self.session.get(ItemStatisticsRow, item_id)
        if row is None:
            self._current(item_id)
            raise NotFound(f"item {item_id!r} has no statistics yet; the item-statistics job writes them")
        return row_to_statistics(row)

    # Media

    def get_media(self, *, sha256: str) -> item_pb2.Media:
        row = self.session.get(MediaRow, sha256)
        if row is None:
            raise NotFound(f"no media {sha256} in the item bank")
        return item_pb2.Media(sha256=row.sha256, content_type=row.content_type, data=row.data)

    def media_of(
        self, *, passages: Sequence[item_pb2.Passage], items: Sequence[item_pb2.Item]
    ) -> list[item_pb2.Media]:
        """The stored blobs that these passages and items name, in digest order."""
        urls = [passage.audio_url for passage in passages] + [item.content.audio_url for item in items]
        digests = sorted({digest for digest in map(media_digest, urls) if digest})
        return [self.get_media(sha256=digest) for digest in digests]

    # Export

    def export(self, *, filters: ItemFilter) -> tuple[list[item_pb2.Passage], list[item_pb2.Item]]:
        """The filtered items and the passages they belong to (passages listed in id order)."""
        ids = self.list_item_ids(filters=filters, after="", limit=1_000_000_000)
        items = self.get_items(refs=[(item_id, 0) for item_id in ids])
        passage_ids = sorted({item.passage_id for item in items if item.passage_id})
        return self.get_passages(passage_ids=passage_ids), items

    def derived(self, name: str, build: Callable[[BankReader], T]) -> T:
        """A value computed from the whole bank (e.g. the assembly index), kept until the next write."""
        value = self.cache.derived.get(name)
        if value is None:
            value = build(self)
            self.cache.put_derived(self.generation, name, value)
        return value


class BankWriter(BankReader):
    """Reads and writes inside one write transaction; every read here comes from the database, not the cache."""

    def __init__(self, session: Session, cache: _Cache, generation: int, actor: str, role: str = "") -> None:
        super().__init__(session, cache, generation)
        self.actor = actor
        self.role = role
        self.touched: set[str] = set()
        self.discard = False
        self._counters: dict[str, int] = {}

    def _current(self, item_id: str) -> item_pb2.Item:
        row = self.session.get(ItemRow, item_id)
        if row is None:
            raise NotFound(f"item {item_id!r} not found")
        return row_to_item(row)

    def get_passage(self, *, passage_id: str) -> item_pb2.Passage:
        row = self.session.get(PassageRow, passage_id)
        if row is None:
            raise NotFound(f"passage {passage_id!r} not found")
        return row_to_passage(row, self._item_ids_of([passage_id]).get(passage_id, []))

    def _next_id(self, prefix: str, column: Any) -> str:
        if prefix not in self._counters:
            last = self.session.scalar(select(func.max(column)).where(column.like(f"{prefix}-%")))
            self._counters[prefix] = int(str(last).rsplit("-", 1)[1]) if last else 0
        self._counters[prefix] += 1
        return f"{prefix}-{self._counters[prefix]:06d}"

    def _record_revision(self, item: item_pb2.Item, *, changed: list[str], note: str, moment: datetime) -> None:
        self.session.add(
            RevisionRow(
                item_id=item.item_id,
                revision=item.revision,
                actor=self.actor,
                change_time=moment,
                changed_fields=changed,
                note=note,
                snapshot=to_json(item),
            )
        )

    def _check_audio(self, url: str, field_name: str) -> None:
        """A "sha256:" reference must name a blob stored in the bank (external URLs are the author's to keep)."""
        if not is_media_ref(url):
            return
        digest = media_digest(url)
        if digest is None:
            raise InvalidArgument(
                f"{field_name}: {url!r} is not {MEDIA_REF_PREFIX}<64 lowercase hex digits>", field=field_name
            )
        if self.session.scalar(select(MediaRow.sha256).where(MediaRow.sha256 == digest)) is None:
            raise InvalidArgument(
                f"{field_name}: no media {digest} in the item bank; import the blob with the items",
                field=field_name,
            )

    def add_media(self, *, media: Sequence[item_pb2.Media]) -> int:
        """Stores the blobs the bank lacks (the caller has checked their hashes); returns how many were new."""
        created = 0
        for blob in media:
            if self.session.scalar(select(MediaRow.sha256).where(MediaRow.sha256 == blob.sha256)) is None:
                self.session.add(
                    MediaRow(
                        sha256=blob.sha256,
                        content_type=blob.content_type,
                        byte_size=len(blob.data),
                        data=blob.data,
                    )
                )
                created += 1
        return created

    def find_created(self, *, request_id: str) -> item_pb2.Item | None:
        row = self.session.scalar(select(ItemRow).where(ItemRow.create_request_id == request_id))
        return None if row is None else row_to_item(row)

    def create_item(self, *, item: item_pb2.Item, request_id: str = "", note: str = "created") -> item_pb2.Item:
        """Insert a new item at revision 1 (the caller has validated it)."""
        self._check_audio(item.content.audio_url, "content.audio_url")
        if item.external_id and self.session.scalar(
            select(ItemRow.item_id).where(ItemRow.external_id == item.external_id)
        ):
            raise AlreadyExists(f"an item with external_id {item.external_id!r} exists already")
        created = item_pb2.Item()
        created.CopyFrom(item)
        moment = utcnow()
        created.item_id = self._next_id("itm", ItemRow.item_id)
        created.revision = 1
        created.etag = _etag(created.item_id, 1, moment)
        created.create_time.CopyFrom(to_timestamp(moment))
        created.update_time.CopyFrom(to_timestamp(moment))
        row = ItemRow(
            item_id=created.item_id,
            revision=1,
            etag=created.etag,
            create_request_id=request_id or None,
            create_time=moment,
            update_time=moment,
        )
        apply_item(row, created)
        self.session.add(row)
        changed = changed_paths(item_pb2.Item(), created, skip=SERVER_FIELDS)
        self._record_revision(created, changed=changed, note=note, moment=moment)
        self.touched.add(created.item_id)
        return created

    def record_action(
        self, *, action: str, target_type: str, target: str, reason: str, detail: dict[str, Any]
    ) -> None:
        """An audit entry of a staff action, committed with the action or not at all."""
        self.session.add(
            AuditRow(
                audit_id=self._next_id("aud", AuditRow.audit_id),
                time=utcnow(),
                actor=self.actor,
                actor_role=self.role,
                action=action,
                target_type=target_type,
                target=target,
                reason=reason,
                detail=detail,
            )
        )

    def save_item(self, *, item: item_pb2.Item, changed: list[str], note: str) -> item_pb2.Item:
        """Store a changed item as its next revision, with a revision record of what changed."""
        row = self.session.get(ItemRow, item.item_id)
        if row is None:
            raise NotFound(f"item {item.item_id!r} not found")
        self._check_audio(item.content.audio_url, "content.audio_url")
        saved = item_pb2.Item()
        saved.CopyFrom(item)
        moment = utcnow()
        saved.revision = row.revision + 1
        saved.etag = _etag(saved.item_id, saved.revision, moment)
        saved.create_time.CopyFrom(to_timestamp(row.create_time))
        saved.update_time.CopyFrom(to_timestamp(moment))
        apply_item(row, saved)
        row.revision, row.etag, row.update_time = saved.revision, saved.etag, moment
        self._record_revision(saved, changed=changed, note=note, moment=moment)
        self.touched.add(saved.item_id)
        return saved

    def add_review(
        self,
        *,
        item: item_pb2.Item,
        kind: item_pb2.ReviewKind.ValueType,
        verdict: item_pb2.ReviewVerdict.ValueType,
        checks: Sequence[item_pb2.QaCheck] = (),
        comment: str = "",
    ) -> item_pb2.Review:
        moment = utcnow()
        row = ReviewRow(
            review_id=self._next_id("rev", ReviewRow.review_id),
            item_id=item.item_id,
            revision=item.revision,
            kind=item_pb2.ReviewKind.Name(kind),
            verdict=item_pb2.ReviewVerdict.Name(verdict),
            checks=[to_json(check) for check in checks],
            reviewer=self.actor,
            comment=comment,
            create_time=moment,
        )
        self.session.add(row)
        return row_to_review(row)

    # Statistics

    def write_statistics(
        self, *, statistics: Sequence[item_pb2.ItemStatistics], run_id: str
    ) -> item_service_pb2.WriteItemStatisticsResponse:
        """Replace each item's figures; figures equal to the stored ones are left as they are (and their run).

        The same run_id with other figures for an item is refused: a retry of a run carries the same figures, and
        a new computation must say so with a new run_id. Fails whole (NOT_FOUND naming the first unknown item).
        """
        item_ids = [figures.item_id for figures in statistics]
        known: set[str] = set()
        stored: dict[str, ItemStatisticsRow] = {}
        for chunk in _chunks(item_ids):
            known.update(self.session.scalars(select(ItemRow.item_id).where(ItemRow.item_id.in_(chunk))))
            query = select(ItemStatisticsRow).where(ItemStatisticsRow.item_id.in_(chunk))
            stored.update((found.item_id, found) for found in self.session.scalars(query))
        for item_id in item_ids:
            if item_id not in known:
                raise NotFound(f"item {item_id!r} not found")
        response = item_service_pb2.WriteItemStatisticsResponse()
        moment = utcnow()
        for figures in statistics:
            row = stored.get(figures.item_id)
            if row is None:
                row = ItemStatisticsRow(item_id=figures.item_id)
                self.session.add(row)
            elif _same_figures(row_to_statistics(row), figures):
                response.unchanged += 1
                continue
            elif row.run_id == run_id:
                raise FailedPrecondition(
                    f"run {run_id!r} already wrote other figures for item {figures.item_id!r}; "
                    "a new computation needs a new run_id",
                    reason="STATISTICS_RUN_REUSED",
                )
            apply_statistics(row, figures)
            row.run_id, row.actor, row.compute_time = run_id, self.actor, moment
            response.written += 1
        return response

    # Import

    def _import_passage(self, passage: item_pb2.Passage, response: item_service_pb2.ImportItemsResponse) -> str:
        row = self.session.scalar(select(PassageRow).where(PassageRow.external_id == passage.external_id))
        moment = utcnow()
        if row is None:
            row = PassageRow(
                passage_id=self._next_id("psg", PassageRow.passage_id), create_time=moment, update_time=moment
            )
            apply_passage(row, passage)
            self.session.add(row)
            response.passages_created += 1
            return row.passage_id
        current = row_to_passage(row, [])
        incoming = item_pb2.Passage()
        incoming.CopyFrom(passage)
        incoming.passage_id = row.passage_id
        del incoming.item_ids[:]
        if current != incoming:
            apply_passage(row, incoming)
            row.update_time = moment
            response.passages_updated += 1
        return row.passage_id

    def _comparable(self, item: item_pb2.Item) -> item_pb2.Item:
        copy = item_pb2.Item()
        copy.CopyFrom(item)
        for name in SERVER_FIELDS:
            copy.ClearField(name)
        # The batch that last wrote an item is bookkeeping, not content: re-importing must not count as a change.
        copy.provenance.ClearField("import_batch")
        if copy.provenance == item_pb2.Provenance():
            copy.ClearField("provenance")
        return copy

    def import_records(
        self,
        *,
        passages: Sequence[item_pb2.Passage],
        items: Sequence[item_pb2.Item],
        dry_run: bool,
        batch_name: str,
        media: Sequence[item_pb2.Media] = (),
        progress: ProgressFn | None = None,
    ) -> item_service_pb2.ImportItemsResponse:
        """Create or update by external_id (the caller has validated the records); a dry run is rolled back.

        The media come first, so that the passages and items of the same batch may name them.
        """
        response = item_service_pb2.ImportItemsResponse(dry_run=dry_run)
        batch_id = self._next_id("imp", ImportBatchRow.batch_id)
        response.media_created = self.add_media(media=media)
        by_external: dict[str, str] = {}
        for index, passage in enumerate(passages):
            self._check_audio(passage.audio_url, f"passages[{index}].audio_url")
            by_external[passage.external_id] = self._import_passage(passage, response)
        self.session.flush()
        for index, incoming in enumerate(items):
            self._import_item(index, incoming, by_external, batch_id, response)
            if progress is not None:
                progress(index + 1, len(items))
        if dry_run:
            self.discard = True
            for result in response.results:
                if result.outcome == item_service_pb2.IMPORT_OUTCOME_CREATED:
                    result.item_id = ""
            return response
        self.session.add(
            ImportBatchRow(
                batch_id=batch_id,
                name=batch_name or batch_id,
                actor=self.actor,
                create_time=utcnow(),
                created=response.created,
                updated=response.updated,
                unchanged=response.unchanged,
                passages_created=response.passages_created,
                passages_updated=response.passages_updated,
            )
        )
        return response

    def _import_item(
        self,
        index: int,
        incoming: item_pb2.Item,
        by_external: dict[str, str],
        batch_id: str,
        response: item_service_pb2.ImportItemsResponse,
    ) -> None:
        item = item_pb2.Item()
        item.CopyFrom(incoming)
        self._check_audio(item.content.audio_url, f"items[{index}].content.audio_url")
        if item.passage_id:
            item.passage_id = self.passage_for_item(
                reference=item.passage_id,
                task_type=item.task_type,
                field_name=f"items[{index}].passage_id",
                batch=by_external,
            )
        existing = self.session.scalar(select(ItemRow).where(ItemRow.external_id == item.external_id))
        result = response.results.add(external_id=item.external_id)
        if existing is None:
            if item.status == item_pb2.ITEM_STATUS_UNSPECIFIED:
                item.status = item_pb2.ITEM_STATUS_DRAFT
            item.provenance.import_batch = batch_id
            created = self.create_item(item=item, note=f"imported in {batch_id}")
            result.item_id, result.outcome = created.item_id, item_service_pb2.IMPORT_OUTCOME_CREATED
            response.created += 1
            return
        current = row_to_item(existing)
        if item.status == item_pb2.ITEM_STATUS_UNSPECIFIED:
            item.status = current.status
        changed = changed_paths(self._comparable(current), self._comparable(item), skip=SERVER_FIELDS)
        result.item_id = current.item_id
        if not changed:
            result.outcome = item_service_pb2.IMPORT_OUTCOME_UNCHANGED
            response.unchanged += 1
            return
        item.item_id = current.item_id
        item.provenance.import_batch = batch_id
        self.save_item(item=item, changed=changed, note=f"imported in {batch_id}")
        result.outcome = item_service_pb2.IMPORT_OUTCOME_UPDATED
        result.changed_fields.extend(changed)
        response.updated += 1

    def passage_for_item(
        self,
        *,
        reference: str,
        task_type: item_pb2.TaskType.ValueType,
        field_name: str,
        batch: dict[str, str] | None = None,
    ) -> str:
        """The id of the passage an item names (by id, by external id, or new in this batch), of its task type."""
        passage_id = (batch or {}).get(reference)
        row = self.session.get(PassageRow, passage_id) if passage_id else self.resolve_passage(reference=reference)
        if row is None:
            raise InvalidArgument(f"{field_name}: unknown passage {reference!r}", field=field_name)
        if row.task_type != item_pb2.TaskType.Name(task_type):
            raise InvalidArgument(
                f"{field_name}: passage {reference!r} belongs to {row.task_type}, the item to "
                f"{item_pb2.TaskType.Name(task_type)}",
                field=field_name,
            )
        return row.passage_id


def _same_figures(old: item_pb2.ItemStatistics, new: item_pb2.ItemStatistics) -> bool:
    return changed_paths(old, new, skip=STATISTICS_BOOKKEEPING) == []


class ItemBank:
    """The item bank behind one engine. `reading()` and `writing()` each wrap exactly one transaction."""

    def __init__(self, engine: Engine, *, read_only: bool = False) -> None:
        self.engine = engine
        self.read_only = read_only
        self._cache = _Cache()

    @contextmanager
    def reading(self) -> Iterator[BankReader]:
        with Session(self.engine) as session:
            generation = int(
                session.scalar(select(BankMetaRow.value).where(BankMetaRow.key == GENERATION_KEY)) or 0
            )
            self._cache.observe(generation)
            yield BankReader(session, self._cache, generation)

    @contextmanager
    def writing(self, *, actor: str, items: bool = True, role: str = "") -> Iterator[BankWriter]:
        """`items=False` for writes that change no item or passage (statistics): every cache stays valid."""
        if self.read_only:
            raise FailedPrecondition(READ_ONLY_MESSAGE, reason="ITEM_BANK_READ_ONLY")
        with self.engine.connect() as connection:
            connection.execution_options(**{IMMEDIATE: True})
            with Session(bind=connection) as session:
                if items:
                    # Moving the generation on first also takes the write lock before anything is read.
                    session.execute(
                        update(BankMetaRow)
                        .where(BankMetaRow.key == GENERATION_KEY)
                        .values(value=cast(cast(BankMetaRow.value, Integer) + 1, Text))
                    )
                query = select(BankMetaRow.value).where(BankMetaRow.key == GENERATION_KEY)
                # Without a new generation, FOR UPDATE still takes the write lock (SQLite's BEGIN IMMEDIATE has).
                generation = int(session.scalar(query if items else query.with_for_update()) or 0)
                writer = BankWriter(session, self._cache, generation, actor, role)
                try:
                    yield writer
                    if writer.discard:
                        session.rollback()
                        return
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        if items:
            self._cache.after_write(generation, writer.touched)

    def dispose(self) -> None:
        self.engine.dispose()
