"""Storage of sign-ins, their refresh tokens (hashed) and the throttle's counters, on the Core connection."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from session_service.domain.sign_ins import SignInState
from session_service.domain.throttle import Counter
from session_service.storage.engine import Database, Tx, Upsert
from session_service.storage.models import KnownAddress, RefreshToken, SignIn, SignInFailures, User


@dataclass(frozen=True)
class Holder:
    """Whose sign-in a token renews, and whether it may still."""

    sign_in_id: str
    user_id: str
    role: str
    state: SignInState


# ---- sign-ins and refresh tokens


def start(tx: Tx, *, sign_in_id: str, user_id: str, token_hash: str, now_ms: int, expires_ms: int) -> None:
    tx.execute(
        insert(SignIn).values(sign_in_id=sign_in_id, user_id=user_id, create_ms=now_ms, expires_ms=expires_ms)
    )
    issue(tx, sign_in_id=sign_in_id, token_hash=token_hash, now_ms=now_ms)


def issue(tx: Tx, *, sign_in_id: str, token_hash: str, now_ms: int) -> None:
    tx.execute(insert(RefreshToken).values(token_hash=token_hash, sign_in_id=sign_in_id, issued_ms=now_ms))


def spend(tx: Tx, *, token_hash: str, now_ms: int) -> str | None:
    """Mark the token spent in one statement, so that of two processes spending it at once only one succeeds;
    its sign-in's id, or None when it is unknown or was spent already."""
    spent = tx.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == token_hash, RefreshToken.spent_ms.is_(None))
        .values(spent_ms=now_ms)
        .returning(RefreshToken.sign_in_id)
    ).first()
    return None if spent is None else str(spent.sign_in_id)


def token(tx: Tx, *, token_hash: str) -> tuple[str, int | None] | None:
    """(sign-in id, when it was spent) of a token, or None when it was never issued (or is pruned)."""
    row = tx.execute(
        select(RefreshToken.sign_in_id, RefreshToken.spent_ms).where(RefreshToken.token_hash == token_hash)
    ).first()
    return None if row is None else (str(row.sign_in_id), row.spent_ms)


def holder(tx: Tx, *, sign_in_id: str) -> Holder:
    row = tx.execute(
        select(SignIn.user_id, SignIn.expires_ms, SignIn.revoked_ms, User.role, User.erased)
        .join(User, User.user_id == SignIn.user_id)
        .where(SignIn.sign_in_id == sign_in_id)
    ).one()
    state = SignInState(
        expires_ms=row.expires_ms, revoked=row.revoked_ms is not None, account_usable=not row.erased
    )
    return Holder(sign_in_id=sign_in_id, user_id=row.user_id, role=row.role, state=state)


def revoke(tx: Tx, *, why: str, now_ms: int, sign_in_id: str | None = None, user_id: str | None = None) -> int:
    """End one sign-in, or every sign-in of a user; how many were still going."""
    query = update(SignIn).where(SignIn.revoked_ms.is_(None))
    if sign_in_id is not None:
        query = query.where(SignIn.sign_in_id == sign_in_id)
    if user_id is not None:
        query = query.where(SignIn.user_id == user_id)
    return tx.execute(query.values(revoked_ms=now_ms, revoked_why=why)).rowcount


def forget_user(tx: Tx, *, user_id: str) -> None:
    """Drop every sign-in of an account with its tokens (erasure)."""
    ids = select(SignIn.sign_in_id).where(SignIn.user_id == user_id)
    tx.execute(delete(RefreshToken).where(RefreshToken.sign_in_id.in_(ids)))
    tx.execute(delete(SignIn).where(SignIn.user_id == user_id))


# ---- the throttle


# Every sign-in reads both before its password is looked at: built once (built per call, with a transaction
# around them, they were about a tenth of the event loop in a start rush).
_COUNTERS = select(
    SignInFailures.key, SignInFailures.failures, SignInFailures.last_failure_ms, SignInFailures.held_until_ms
).where(SignInFailures.key.in_(bindparam("keys", expanding=True)))
# The same rows locked until the transaction ends, in the order of their keys.
_LOCKED_COUNTERS = _COUNTERS.order_by(SignInFailures.key).with_for_update()
_KNOWN_SINCE = select(KnownAddress.last_sign_in_ms).where(KnownAddress.key == bindparam("key"))


def _counters_of(rows: Iterable[Sequence[Any]]) -> dict[str, Counter]:
    return {key: Counter(failures, last_ms, held_ms) for key, failures, last_ms, held_ms in rows}


def counters(connection: Connection, *, keys: Collection[str]) -> dict[str, Counter]:
    return _counters_of(connection.execute(_COUNTERS, {"keys": list(keys)}))


def known_since(connection: Connection, *, key: str) -> int | None:
    """When the account last signed in from the address (the key names both), or None."""
    found: int | None = connection.scalar(_KNOWN_SINCE, {"key": key})
    return found


def standing(db: Database, *, keys: Collection[str], known_key: str) -> tuple[dict[str, Counter], int | None]:
    """The counters of `keys` and when the account last signed in from the address.

    On SQLite two snapshots, one per statement, with no transaction around them: the two are separate facts, and
    a failure counted between them is no different from one counted just after both.
    """
    with db.read_statement() as connection:
        return counters(connection, keys=keys), known_since(connection, key=known_key)


def locked_counters(tx: Tx, *, keys: Collection[str]) -> dict[str, Counter]:
    """The counters of `keys`, locked until the transaction ends (on PostgreSQL; SQLite has one writer anyway):
    two processes counting a failure of one key at once both count."""
    return _counters_of(tx.execute(_LOCKED_COUNTERS, {"keys": sorted(keys)}))


_SAVE_COUNTER = Upsert.replacing(SignInFailures, key="key")
_REMEMBER_ADDRESS = Upsert.replacing(KnownAddress, key="key")


def save_counters(tx: Tx, changed: Mapping[str, Counter]) -> None:
    if not changed:
        return
    rows = [
        {
            "key": key,
            "failures": counter.failures,
            "last_failure_ms": counter.last_failure_ms,
            "held_until_ms": counter.held_until_ms,
        }
        for key, counter in sorted(changed.items())
    ]
    tx.execute(_SAVE_COUNTER(tx), rows)


def clear_counter(tx: Tx, *, key: str) -> None:
    tx.execute(delete(SignInFailures).where(SignInFailures.key == key))


def remember_address(tx: Tx, *, key: str, now_ms: int) -> None:
    tx.execute(_REMEMBER_ADDRESS(tx), {"key": key, "last_sign_in_ms": now_ms})


def prune(
    tx: Tx, *, now_ms: int, failures_before_ms: int, addresses_before_ms: int, sign_ins_before_ms: int
) -> int:
    """Drop what no rule reads any more: idle counters no longer holding, addresses not seen for long, sign-ins
    long over with their tokens. How many rows went."""
    gone = tx.execute(
        delete(SignInFailures).where(
            SignInFailures.last_failure_ms < failures_before_ms, SignInFailures.held_until_ms < now_ms
        )
    ).rowcount
    gone += tx.execute(delete(KnownAddress).where(KnownAddress.last_sign_in_ms < addresses_before_ms)).rowcount
    over = select(SignIn.sign_in_id).where(SignIn.expires_ms < sign_ins_before_ms)
    gone += tx.execute(delete(RefreshToken).where(RefreshToken.sign_in_id.in_(over))).rowcount
    gone += tx.execute(delete(SignIn).where(SignIn.expires_ms < sign_ins_before_ms)).rowcount
    return gone
