"""Passwords (argon2 via argon2-cffi) and the development demo accounts with their credentials file."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from session_service.storage import accounts as accounts_store
from session_service.storage.engine import Database
from toefl_core.errors import InvalidArgument, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,63}")
DEMO_CLASS_NAME = "Demo class"
# (role, username, display name); the teacher's class holds the two students.
DEMO_ACCOUNTS = (
    ("admin", "demo-admin", "Demo Admin"),
    ("author", "demo-author", "Demo Author"),
    ("rater", "demo-rater", "Demo Rater"),
    ("teacher", "demo-teacher", "Demo Teacher"),
    ("student", "demo-student-1", "Demo Student One"),
    ("student", "demo-student-2", "Demo Student Two"),
)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def check_username(username: str) -> None:
    if not USERNAME.fullmatch(username):
        raise InvalidArgument(
            "username must be 3-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
            field="user.username",
        )


def check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidArgument(
            f"password must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters long", field="user.password"
        )


@dataclass(frozen=True)
class HashParameters:
    """argon2id's cost: passes over memory, memory in KiB, lanes."""

    time_cost: int
    memory_kib: int
    parallelism: int


# OWASP's Password Storage Cheat Sheet's first argon2id configuration (19 MiB, 2 passes, 1 lane): one lane so that
# each verification holds one core and the cores serve that many sign-ins side by side.
OWASP_PARAMETERS = HashParameters(time_cost=2, memory_kib=19_456, parallelism=1)
# The weakest of OWASP's equivalent configurations (7 MiB, 5 passes), as memory times passes.
OWASP_MINIMUM_WORK = 7_168 * 5
# Development and tests only: hundreds of accounts created in a second.
FAST_PARAMETERS = HashParameters(time_cost=1, memory_kib=1024, parallelism=1)


class Passwords:
    """argon2id hashing with the configured parameters; the synchronous calls, for whichever thread runs them."""

    def __init__(self, parameters: HashParameters = OWASP_PARAMETERS) -> None:
        self.parameters = parameters
        self._hasher = PasswordHasher(
            time_cost=parameters.time_cost, memory_cost=parameters.memory_kib, parallelism=parameters.parallelism
        )
        started = time.perf_counter()
        # Verified against when the username is unknown, so timing does not reveal which usernames exist.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        # A first estimate of one verification's cost (a hash costs the same), before any sign-in measured one.
        self.first_cost_seconds = time.perf_counter() - started

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Stored with other parameters than the configured ones (weaker or stronger)."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def verify_and_upgrade(self, password_hash: str | None, password: str) -> tuple[bool, str | None]:
        """Whether the password is right and, when it is but its hash has old parameters, a new hash of it: the
        plain password exists only during sign-in, so this is the one moment an upgrade can happen."""
        if not self.verify(password_hash, password) or password_hash is None:
            return False, None
        return True, self.hash(password) if self.needs_rehash(password_hash) else None

    def unusable(self) -> str:
        """The hash of a random secret nobody keeps: the account can no longer sign in."""
        return self._hasher.hash(secrets.token_urlsafe(32))


def _lower_priority() -> None:
    # A hashing thread yields its core to the event loop and the database writer: students already in the exam
    # keep their answer latency while a start rush verifies passwords.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


HASHING_NICENESS = 10
# Smoothing of the measured cost of one verification: recent ones count most, one outlier does not swing it.
COST_SMOOTHING = 0.2


class HashingPool:
    """Password hashing on threads of its own, as many as the cores, never the ones that serve database reads;
    a sign-in that would wait longer than `max_wait_seconds` for a thread is refused at once (SIGN_IN_BUSY with
    the time the queue needs to drain), rather than left to time out at the gateway."""

    def __init__(self, passwords: Passwords, *, workers: int, max_wait_seconds: float) -> None:
        self.passwords = passwords
        self.workers = workers
        self._max_wait = max_wait_seconds
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="password-hash", initializer=_lower_priority
        )
        self._pending = 0
        self.cost_seconds = passwords.first_cost_seconds

    def expected_wait(self) -> float:
        """How long a sign-in arriving now would wait for a hashing thread."""
        return self._pending // self.workers * self.cost_seconds

    def _admit(self, budget_seconds: float | None) -> None:
        wait = self.expected_wait()
        limit = self._max_wait
        if budget_seconds is not None:
            # A wait the caller's deadline would cut short is refused now, while a retry can still succeed.
            limit = min(limit, budget_seconds - self.cost_seconds)
        if wait > limit:
            drain = self._pending / self.workers * self.cost_seconds
            # Spread over [drain, 2 x drain]: refused students coming back together would make the next queue.
            retry = max(1.0, drain * random.uniform(1.0, 2.0))
            raise Unavailable(
                f"too many sign-ins at once; try again in {math.ceil(retry)} s",
                reason="SIGN_IN_BUSY",
                retry_after_seconds=retry,
            )

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))
        finally:
            self._pending -= 1

    async def verify(
        self, password_hash: str | None, password: str, *, budget_seconds: float | None = None
    ) -> tuple[bool, str | None]:
        """`Passwords.verify_and_upgrade` once admitted; `budget_seconds`: what the caller's deadline leaves."""
        self._admit(budget_seconds)
        return await self._timed(self.passwords.verify_and_upgrade, password_hash, password)

    async def _timed(self, fn: Callable[..., T], *args: Any) -> T:
        def timed() -> tuple[T, float]:
            started = time.perf_counter()
            result = fn(*args)
            return result, time.perf_counter() - started

        result, took = await self._run(timed)
        self.cost_seconds += COST_SMOOTHING * (took - self.cost_seconds)
        return result

    async def hash(self, password: str) -> str:
        """A new hash; waits its turn rather than being refused (accounts are created by an admin, not a crowd)."""
        return await self._timed(self.passwords.hash, password)

    async def unusable(self) -> str:
        return await self._timed(self.passwords.unusable)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _read_credentials(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text())
        return {str(e["username"]): str(e["password"]) for e in entries}
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable %s; demo passwords will be reset", path)
        return {}


def create_demo_accounts(db: Database, credentials_path: Path, passwords: Passwords) -> list[dict[str, str]]:
    """Idempotent: existing demo accounts keep the passwords in the credentials file; missing ones are created.

    Writes the credentials file (mode 0600) as a list of {"role", "username", "password"}.
    """
    known = _read_credentials(credentials_path)
    now_ms = int(time.time() * 1000)
    entries: list[dict[str, str]] = []
    user_ids: dict[str, str] = {}
    for role, username, display_name in DEMO_ACCOUNTS:
        existing = accounts_store.get_credentials(db, username=username)
        password = known.get(username) or secrets.token_urlsafe(12)
        if existing is None:
            user = accounts_store.create_user(
                db,
                user_id=new_id("usr"),
                username=username,
                display_name=display_name,
                role=role,
                password_hash=passwords.hash(password),
                now_ms=now_ms,
            )
            log.info("created demo account %s (%s)", username, role)
        else:
            user, stored_hash = existing
            # A password we no longer know (file deleted or edited) is reset, so the file is always right.
            if not passwords.verify(stored_hash, password):
                accounts_store.set_password(db, user_id=user.user_id, password_hash=passwords.hash(password))
        user_ids[username] = user.user_id
        entries.append({"role": role, "username": username, "password": password})
    teacher_id = user_ids["demo-teacher"]
    demo_class = accounts_store.find_class(
        db, teacher_id=teacher_id, name=DEMO_CLASS_NAME
    ) or accounts_store.create_class(
        db, class_id=new_id("cls"), name=DEMO_CLASS_NAME, teacher_id=teacher_id, now_ms=now_ms
    )
    for role, username, _ in DEMO_ACCOUNTS:
        if role == "student":
            accounts_store.enrol(db, class_id=demo_class.class_id, student_id=user_ids[username])
    credentials_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = credentials_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(credentials_path)
    return entries
