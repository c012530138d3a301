"""Token minting and verification: expiry, foreign keys, `alg: none` and malformed metadata are refused."""

from __future__ import annotations

import base64
import json
import time

import pytest

from toefl_core.auth import Role, authenticate, bearer_from_metadata, mint_token, require_role, verify_token
from toefl_core.errors import PermissionDenied, Unauthenticated

KEY = "k" * 40


def test_round_trip_keeps_subject_and_role() -> None:
    principal = verify_token(KEY, mint_token(KEY, subject="u-1", role=Role.TEACHER))
    assert (principal.subject, principal.role) == ("u-1", Role.TEACHER)


def test_expired_token_is_refused() -> None:
    token = mint_token(KEY, subject="u-1", role=Role.STUDENT, ttl_seconds=60, now=time.time() - 3600)
    with pytest.raises(Unauthenticated, match="expired"):
        verify_token(KEY, token)


def test_token_signed_with_another_key_is_refused() -> None:
    token = mint_token("x" * 40, subject="u-1", role=Role.ADMIN)
    with pytest.raises(Unauthenticated, match="invalid token"):
        verify_token(KEY, token)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused() -> None:
    now = int(time.time())
    claims = {"sub": "u-1", "role": "admin", "iss": "toefl-backend", "iat": now, "exp": now + 600}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    with pytest.raises(Unauthenticated):
        verify_token(KEY, unsigned)


def test_unknown_role_is_refused() -> None:
    import jwt

    now = int(time.time())
    claims = {"sub": "u-1", "role": "superuser", "iss": "toefl-backend", "iat": now, "exp": now + 600}
    with pytest.raises(Unauthenticated, match="unknown role"):
        verify_token(KEY, jwt.encode(claims, KEY, algorithm="HS256"))


def test_metadata_parsing() -> None:
    assert bearer_from_metadata([("x-other", "1")]) is None
    assert bearer_from_metadata([("Authorization", "Bearer abc")]) == "abc"
    with pytest.raises(Unauthenticated, match="Bearer"):
        bearer_from_metadata([("authorization", "Basic abc")])
    with pytest.raises(Unauthenticated, match="missing"):
        authenticate(KEY, [])


def test_require_role_names_the_allowed_roles() -> None:
    principal = verify_token(KEY, mint_token(KEY, subject="s", role=Role.STUDENT))
    with pytest.raises(PermissionDenied, match="author, admin"):
        require_role(principal, [Role.AUTHOR, Role.ADMIN], "updating an item")
    require_role(principal, [Role.STUDENT], "reading")


def test_token_cache_verifies_once_and_still_refuses_bad_tokens() -> None:
    from toefl_core.auth import TokenCache

    cache = TokenCache(KEY)
    good = mint_token(KEY, subject="u-1", role=Role.RATER)
    assert cache.verify(good) == cache.authenticate([("authorization", f"Bearer {good}")])
    with pytest.raises(Unauthenticated, match="invalid token"):
        cache.verify(mint_token("x" * 40, subject="u-1", role=Role.ADMIN))
    with pytest.raises(Unauthenticated, match="missing"):
        cache.authenticate([])


def test_token_cache_drops_a_token_at_its_expiry() -> None:
    from toefl_core.auth import TokenCache

    cache = TokenCache(KEY)
    # Issued 59 s ago with a 60 s life: cached now, expired a second later.
    token = mint_token(KEY, subject="u-1", role=Role.STUDENT, ttl_seconds=60, now=time.time() - 59)
    cache.verify(token)
    time.sleep(1.2)
    with pytest.raises(Unauthenticated, match="expired"):
        cache.verify(token)


def test_a_full_token_cache_forgets_the_token_used_least_recently(monkeypatch: pytest.MonkeyPatch) -> None:
    from toefl_core import auth

    checked: list[str] = []
    real = auth.verify_token

    def counting(key: str, token: str) -> auth.Principal:
        checked.append(token)
        return real(key, token)

    monkeypatch.setattr(auth, "verify_token", counting)
    monkeypatch.setattr(auth.TokenCache, "MAX_ENTRIES", 2)
    cache = auth.TokenCache(KEY)
    first, second, third = (mint_token(KEY, subject=f"u-{n}", role=Role.STUDENT) for n in range(3))
    cache.verify(first)
    cache.verify(second)
    cache.verify(first)
    cache.verify(third)
    checked.clear()
    # `second` was the stalest and is checked again; `first` and `third` are still known.
    for token in (first, third, second):
        cache.verify(token)
    assert checked == [second]


def test_service_token_is_reused_then_renewed_before_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    from toefl_core.auth import SERVICE_TTL_SECONDS, ServiceToken

    tokens = ServiceToken(KEY, subject="session_service", renew_margin_seconds=60)
    first = tokens.metadata()
    principal = verify_token(KEY, first[0][1].removeprefix("Bearer "))
    assert (principal.subject, principal.role) == ("session_service", Role.SERVICE)
    assert tokens.metadata() == first
    start = time.time()
    monkeypatch.setattr(time, "time", lambda: start + SERVICE_TTL_SECONDS - 30)
    assert tokens.metadata() != first
