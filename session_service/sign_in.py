"""Signing in and staying signed in: the throttle's keys and checks, refresh tokens and their units of work."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from session_service.domain.modules import now_ms
from session_service.domain.sign_ins import Verdict, refresh_verdict
from session_service.domain.throttle import (
    KNOWN_ADDRESS_DAYS,
    PER_ACCOUNT,
    PER_ACCOUNT_AND_ADDRESS,
    PER_ADDRESS_WINDOW_SECONDS,
    Rule,
    after_failure,
    check_sign_in,
    per_address,
)
from session_service.storage import sign_ins
from session_service.storage.engine import Database
from session_service.storage.sign_ins import Holder
from session_service.workers import Workers

log = logging.getLogger(__name__)
DAY_MS = 86_400_000
# A known address is written again at most this often: most sign-ins of a school day then write nothing for it.
KNOWN_ADDRESS_REFRESH_MS = DAY_MS
PRUNE_SECONDS = 600.0
_SUCCESSOR_PURPOSE = b"toefl refresh token successor v1"


def digest(*parts: str) -> str:
    """A key of the throttle's tables, or a token's stored form: SHA-256, so nothing is kept in clear."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Successors:
    """The token a refresh answers is derived from the one it spends (HMAC with a key of its own, from the token
    key): a retried refresh can be answered the same new token, though only hashes are stored."""

    key: bytes

    @classmethod
    def from_token_key(cls, token_key: str) -> Successors:
        return cls(hmac.new(token_key.encode(), _SUCCESSOR_PURPOSE, hashlib.sha256).digest())

    def of(self, token: str) -> str:
        mac = hmac.new(self.key, token.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


# ---- the throttle


@dataclass(frozen=True)
class Standing:
    """What the throttle found before a sign-in's password was checked, and what the outcome must update."""

    pair_key: str
    rules: Mapping[str, Rule]
    known_key: str
    known_since_ms: int | None
    pair_counted: bool

    def address_to_remember(self, now: int) -> bool:
        return self.known_since_ms is None or now - self.known_since_ms >= KNOWN_ADDRESS_REFRESH_MS


class SignInThrottle:
    """Failed sign-ins per account from one address (strict), per account from everywhere and per address (both
    sparing the account's known addresses); counted in the user database, so every process sees every failure."""

    def __init__(self, workers: Workers, *, address_failures: int) -> None:
        self._workers = workers
        self._per_address = per_address(address_failures)

    async def check(self, *, username: str, address: str) -> Standing:
        """ResourceExhausted (SIGN_IN_THROTTLED with RetryInfo) while a hold applies; else the standing."""
        account = username.lower()
        rules = {
            digest("pair", account, address): PER_ACCOUNT_AND_ADDRESS,
            digest("account", account): PER_ACCOUNT,
            digest("address", address): self._per_address,
        }
        pair_key, account_key, address_key = rules
        known_key = digest("known", account, address)
        found, known_since = await self._workers.lookup(sign_ins.standing, keys=list(rules), known_key=known_key)
        now = now_ms()
        known = known_since is not None and now - known_since <= KNOWN_ADDRESS_DAYS * DAY_MS
        check_sign_in(
            pair=found.get(pair_key),
            account=found.get(account_key),
            address=found.get(address_key),
            known_address=known,
            now_ms=now,
        )
        return Standing(pair_key, rules, known_key, known_since, pair_counted=pair_key in found)

    async def failed(self, standing: Standing) -> None:
        await self._workers.write(count_failure, rules=standing.rules, now_ms=now_ms())


def count_failure(db: Database, *, rules: Mapping[str, Rule], now_ms: int) -> None:
    with db.unit_of_work() as tx:
        found = sign_ins.locked_counters(tx, keys=list(rules))
        changed = {key: after_failure(found.get(key), rule, now_ms=now_ms) for key, rule in rules.items()}
        sign_ins.save_counters(tx, changed)


# ---- sign-ins and refresh tokens


def start_sign_in(
    db: Database,
    *,
    user_id: str,
    sign_in_id: str,
    token: str,
    standing: Standing,
    now_ms: int,
    expires_ms: int,
) -> None:
    """A sign-in with its first refresh token; the account's failures from this address are forgiven and the
    address remembered as its owner's, in the same transaction."""
    with db.unit_of_work() as tx:
        sign_ins.start(
            tx,
            sign_in_id=sign_in_id,
            user_id=user_id,
            token_hash=digest(token),
            now_ms=now_ms,
            expires_ms=expires_ms,
        )
        if standing.pair_counted:
            sign_ins.clear_counter(tx, key=standing.pair_key)
        if standing.address_to_remember(now_ms):
            sign_ins.remember_address(tx, key=standing.known_key, now_ms=now_ms)


def renew(db: Database, *, token: str, successor: str, now_ms: int) -> tuple[Verdict, Holder | None]:
    """Spend `token` for `successor`, answer a lost reply's retry again, or take a second use for theft and end
    the whole sign-in. (ENDED, None) for a token never issued."""
    token_hash, successor_hash = digest(token), digest(successor)
    with db.unit_of_work() as tx:
        sign_in_id = sign_ins.spend(tx, token_hash=token_hash, now_ms=now_ms)
        spent_now = sign_in_id is not None
        spent_ms: int | None = None
        successor_unused = False
        if sign_in_id is None:
            found = sign_ins.token(tx, token_hash=token_hash)
            if found is None:
                return Verdict.ENDED, None
            sign_in_id, spent_ms = found
            next_token = sign_ins.token(tx, token_hash=successor_hash)
            successor_unused = next_token is not None and next_token[1] is None
        holder = sign_ins.holder(tx, sign_in_id=sign_in_id)
        verdict = refresh_verdict(
            holder.state,
            spent_now=spent_now,
            spent_ms=spent_ms,
            successor_unused=successor_unused,
            now_ms=now_ms,
        )
        if verdict is Verdict.RENEW:
            sign_ins.issue(tx, sign_in_id=sign_in_id, token_hash=successor_hash, now_ms=now_ms)
        elif verdict is Verdict.REUSED:
            sign_ins.revoke(tx, why="reuse", now_ms=now_ms, sign_in_id=sign_in_id)
        return verdict, holder


def sign_out(db: Database, *, token: str, now_ms: int) -> bool:
    """End the sign-in the token belongs to (spent or not); False when the token is unknown."""
    with db.unit_of_work() as tx:
        found = sign_ins.token(tx, token_hash=digest(token))
        if found is None:
            return False
        sign_ins.revoke(tx, why="sign_out", now_ms=now_ms, sign_in_id=found[0])
        return True


def revoke_user(db: Database, *, user_id: str, now_ms: int) -> int:
    with db.unit_of_work() as tx:
        return sign_ins.revoke(tx, why="admin", now_ms=now_ms, user_id=user_id)


def prune(db: Database, *, now_ms: int) -> int:
    longest_window_ms = round(
        max(PER_ACCOUNT_AND_ADDRESS.window_seconds, PER_ACCOUNT.window_seconds, PER_ADDRESS_WINDOW_SECONDS) * 1000
    )
    with db.unit_of_work() as tx:
        return sign_ins.prune(
            tx,
            now_ms=now_ms,
            failures_before_ms=now_ms - longest_window_ms,
            addresses_before_ms=now_ms - KNOWN_ADDRESS_DAYS * DAY_MS,
            # A day past its end: a reused token of a sign-in just over is still told apart from a forged one.
            sign_ins_before_ms=now_ms - DAY_MS,
        )


async def prune_forever(workers: Workers) -> None:
    while True:
        await asyncio.sleep(PRUNE_SECONDS)
        try:
            gone = await workers.write(prune, now_ms=now_ms())
            if gone:
                log.info("pruned %d sign-in row(s) no rule reads any more", gone)
        except Exception:
            log.exception("pruning sign-in rows failed; retrying at the next interval")


def client_address(metadata: Iterable[tuple[str, str | bytes]] | None, peer: str) -> str:
    """The gateway's x-forwarded-for (the client's address as its trusted proxies tell it; never one a client
    sent itself), else the gRPC peer's host."""
    for name, value in metadata or ():
        if name == "x-forwarded-for" and isinstance(value, str) and value:
            return value.split(",", 1)[0].strip()
    # "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:/path"
    kind, _, rest = peer.partition(":")
    return rest.rsplit(":", 1)[0] if kind in ("ipv4", "ipv6") else peer
