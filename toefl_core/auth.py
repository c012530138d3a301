"""Signed bearer tokens (JWT, HS256): minting, verification and the caller's identity in gRPC metadata."""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from toefl_core.errors import PermissionDenied, Unauthenticated
from toefl_core.lru import LRU

ALGORITHM = "HS256"
ISSUER = "toefl-backend"
DEFAULT_TTL_SECONDS = 15 * 60
SERVICE_TTL_SECONDS = 5 * 60
MISSING_TOKEN = "missing bearer token in the authorization metadata"


class Role(enum.StrEnum):
    STUDENT = "student"
    TEACHER = "teacher"
    RATER = "rater"
    AUTHOR = "author"
    ADMIN = "admin"
    # Another of our services calling on its own behalf.
    SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    """The verified caller of an RPC."""

    subject: str
    role: Role
    token_id: str = ""

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles


def mint_token(
    key: str, *, subject: str, role: Role, ttl_seconds: int = DEFAULT_TTL_SECONDS, now: float | None = None
) -> str:
    issued = int(time.time() if now is None else now)
    claims = {"sub": subject, "role": role.value, "iss": ISSUER, "iat": issued, "exp": issued + ttl_seconds}
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify_token(key: str, token: str) -> Principal:
    """The token's principal, or Unauthenticated saying what is wrong (never which part of the key)."""
    try:
        # Pinning the algorithm refuses `alg: none` and any algorithm substitution.
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "iat", "sub", "iss"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired; sign in again") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated("invalid token") from exc
    try:
        role = Role(claims.get("role", ""))
    except ValueError as exc:
        raise Unauthenticated("invalid token: unknown role") from exc
    return Principal(subject=str(claims["sub"]), role=role, token_id=str(claims.get("jti", "")))


class TokenCache:
    """Principals of tokens whose signature already checked out, until their expiry: the check costs more than
    most RPCs' own work. A token is a bearer credential valid until `exp` anyway, so caching adds no trust."""

    # Twice the 10,000 students one session_service process is meant to carry; full, the token used least recently
    # is forgotten (cleared at once, a full cache made every student's next request verify again).
    MAX_ENTRIES = 20_000

    def __init__(self, key: str) -> None:
        self._key = key
        self._verified: LRU[str, tuple[Principal, float]] = LRU(self.MAX_ENTRIES)

    def verify(self, token: str) -> Principal:
        """The token's principal, or Unauthenticated unless it is signed with the key and not expired."""
        hit = self._verified.get(token)
        if hit is not None and time.time() < hit[1]:
            return hit[0]
        principal = verify_token(self._key, token)
        expiry = float(jwt.decode(token, options={"verify_signature": False})["exp"])
        self._verified.put(token, (principal, expiry))
        return principal

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal:
        """`authenticate` with the cache."""
        token = bearer_from_metadata(metadata)
        if token is None:
            raise Unauthenticated(MISSING_TOKEN)
        return self.verify(token)


class ServiceToken:
    """Metadata with a service-role token for calls a service makes on its own behalf, minted again
    `renew_margin_seconds` before it expires so that no call carries a token about to lapse."""

    def __init__(self, key: str, *, subject: str, renew_margin_seconds: float = 60.0) -> None:
        self._key = key
        self._subject = subject
        self._renew_margin = renew_margin_seconds
        self._token = ""
        self._expires = 0.0

    def metadata(self) -> tuple[tuple[str, str], ...]:
        now = time.time()
        if now >= self._expires - self._renew_margin:
            self._token = mint_token(
                self._key, subject=self._subject, role=Role.SERVICE, ttl_seconds=SERVICE_TTL_SECONDS, now=now
            )
            self._expires = now + SERVICE_TTL_SECONDS
        return auth_metadata(self._token)


def bearer_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an `authorization: Bearer …` entry, or None when there is none."""
    for name, value in metadata or ():
        if name.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
            return token.strip()
    return None


def authenticate(key: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal:
    token = bearer_from_metadata(metadata)
    if token is None:
        raise Unauthenticated(MISSING_TOKEN)
    return verify_token(key, token)


def require_role(principal: Principal, roles: Sequence[Role], action: str) -> None:
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDenied(f"{action} needs one of the roles: {allowed}")


def auth_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
