"""Passwords (argon2 via argon2-cffi) and the development demo accounts with their credentials file."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
import uuid
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from session_service.storage import accounts as accounts_store
from session_service.storage.engine import Database
from toefl_core.errors import InvalidArgument

log = logging.getLogger(__name__)
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


class Passwords:
    """argon2id hashing; `fast` (development and tests only) trades strength for speed with tiny parameters."""

    def __init__(self, *, fast: bool = False) -> None:
        self._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1) if fast else PasswordHasher()
        # Verified against when the username is unknown, so timing does not reveal which usernames exist.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def unusable(self) -> str:
        """The hash of a random secret nobody keeps: the account can no longer sign in."""
        return self._hasher.hash(secrets.token_urlsafe(32))


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
