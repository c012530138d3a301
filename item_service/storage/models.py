"""SQLAlchemy models of the item bank; item bodies are stored as proto JSON so they read back losslessly."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonDict = dict[str, Any]


class Base(DeclarativeBase):
    pass


class BankMetaRow(Base):
    """Key/value facts about the bank: the write generation, the owner (for servers without a file header)."""

    __tablename__ = "bank_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class PassageRow(Base):
    __tablename__ = "passages"

    passage_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    section: Mapped[str] = mapped_column(String(40), index=True)
    task_type: Mapped[str] = mapped_column(String(60), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    audio_url: Mapped[str] = mapped_column(Text, default="")
    transcript: Mapped[str] = mapped_column(Text, default="")
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[datetime] = mapped_column(DateTime)
    update_time: Mapped[datetime] = mapped_column(DateTime)


class ItemRow(Base):
    """One item at its current revision; filterable facts are columns, the bodies proto JSON."""

    __tablename__ = "test_items"

    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    section: Mapped[str] = mapped_column(String(40), index=True)
    task_type: Mapped[str] = mapped_column(String(60), index=True)
    status: Mapped[str] = mapped_column(String(40), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    etag: Mapped[str] = mapped_column(String(64))
    passage_id: Mapped[str | None] = mapped_column(ForeignKey("passages.passage_id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The IRT b parameter, duplicated out of `irt` so that difficulty filters run in SQL.
    difficulty: Mapped[float | None] = mapped_column(Float, index=True)
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[JsonDict | None] = mapped_column(JSON)
    answer_key: Mapped[JsonDict | None] = mapped_column(JSON)
    irt: Mapped[JsonDict | None] = mapped_column(JSON)
    rubric: Mapped[JsonDict | None] = mapped_column(JSON)
    provenance: Mapped[JsonDict | None] = mapped_column(JSON)
    # CreateItem's request_id, so that a retried create returns the first item instead of a second one.
    create_request_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    create_time: Mapped[datetime] = mapped_column(DateTime)
    update_time: Mapped[datetime] = mapped_column(DateTime)


class RevisionRow(Base):
    """A full snapshot of an item at each revision, with who changed what and why."""

    __tablename__ = "item_revisions"

    item_id: Mapped[str] = mapped_column(ForeignKey("test_items.item_id"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(200))
    change_time: Mapped[datetime] = mapped_column(DateTime)
    changed_fields: Mapped[list[str]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    snapshot: Mapped[JsonDict] = mapped_column(JSON)


class ReviewRow(Base):
    """An automated QA run or a human review of one revision of an item."""

    __tablename__ = "reviews"

    review_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("test_items.item_id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    verdict: Mapped[str] = mapped_column(String(40))
    checks: Mapped[list[JsonDict]] = mapped_column(JSON)
    reviewer: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[datetime] = mapped_column(DateTime)


class ImportBatchRow(Base):
    """Provenance of an import: who loaded which batch, when, and what it changed."""

    __tablename__ = "import_batches"

    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(200))
    create_time: Mapped[datetime] = mapped_column(DateTime)
    created: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    passages_created: Mapped[int] = mapped_column(Integer)
    passages_updated: Mapped[int] = mapped_column(Integer)


class ItemStatisticsRow(Base):
    """The latest figures the item-statistics job computed for an item, and the run that wrote them."""

    __tablename__ = "item_statistics"

    item_id: Mapped[str] = mapped_column(ForeignKey("test_items.item_id"), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(200))
    administrations: Mapped[int] = mapped_column(Integer)
    p_value: Mapped[float] = mapped_column(Float)
    # NULL when the correlation is undefined (e.g. everyone scored the same).
    point_biserial: Mapped[float | None] = mapped_column(Float)
    exposure_rate: Mapped[float] = mapped_column(Float)
    mean_response_seconds: Mapped[float] = mapped_column(Float)
    # Item fit mean squares; NULL below the job's minimum of responses or for an item without parameters.
    infit: Mapped[float | None] = mapped_column(Float)
    outfit: Mapped[float | None] = mapped_column(Float)
    misfit: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    actor: Mapped[str] = mapped_column(String(200))
    compute_time: Mapped[datetime] = mapped_column(DateTime)


class MediaRow(Base):
    """A blob of prompt audio, keyed by the SHA-256 of its bytes; items and passages name it "sha256:<key>"."""

    __tablename__ = "media"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(100))
    # len(data), so that listings and checks of sizes need not read the blobs.
    byte_size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AuditRow(Base):
    """A staff action on the bank (an activation, a retirement): who, when, what and why. Appended in the action's
    own transaction and shipped with the bank it describes; no RPC changes or deletes one."""

    __tablename__ = "audit_events"

    # "aud-" and a counter: ids grow with time, so id order is the order of the actions.
    audit_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(200), index=True)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[JsonDict] = mapped_column(JSON)
