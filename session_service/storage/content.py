"""Pinned content: each serialized FULL item or passage a module pinned, stored once under its SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from session_service.storage.engine import Database, Upsert
from session_service.storage.models import PinnedContent

# Built once: every advance, section score and module load runs them, and building a statement costs more than
# the rows it reads.
_BODIES = select(PinnedContent.digest, PinnedContent.body).where(
    PinnedContent.digest.in_(bindparam("digests", expanding=True))
)
# A body stored already is skipped by its key, in the database: asking first which are stored (a SELECT whose IN
# list is rendered at each call) cost the writer more than sending the bodies it skips. Another process on the same
# PostgreSQL database may store the same body meanwhile: same key, same bytes, nothing to report either.
_STORE = Upsert(lambda insert: insert(PinnedContent).on_conflict_do_nothing(index_elements=["digest"]))
# Asked off the writer, as a module is assembled ahead of its advance: a read that nothing waits for.
_STORED = select(PinnedContent.digest).where(PinnedContent.digest.in_(bindparam("digests", expanding=True)))


def digest_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def store(connection: Connection, bodies: Sequence[bytes], *, stored: Collection[str] = frozenset()) -> list[str]:
    """The digest of each body, storing the bodies not stored yet (in the caller's write transaction); those whose
    digest is in `stored` are known stored and not sent at all."""
    digests = [digest_of(body) for body in bodies]
    rows = {d: b for d, b in zip(digests, bodies, strict=True) if d not in stored}
    if rows:
        connection.execute(_STORE(connection), [{"digest": d, "body": b} for d, b in rows.items()])
    return digests


def stored_digests(db: Database, *, bodies: Sequence[bytes]) -> frozenset[str]:
    """The digests of those bodies stored already. Pinned content is never deleted, so what this finds stays
    stored: a write made later may skip these bodies."""
    with db.read_statement() as conn:
        return frozenset(conn.scalars(_STORED, {"digests": sorted({digest_of(body) for body in bodies})}))


def bodies_of(connection: Connection | Session, digests: Collection[str]) -> dict[str, bytes]:
    """Digest -> body for these digests, one bytes object per distinct body however many modules pinned it."""
    if not digests:
        return {}
    return {digest: body for digest, body in connection.execute(_BODIES, {"digests": list(set(digests))})}
