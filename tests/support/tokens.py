"""Tokens the tests mint for themselves, signed with the key the test services use."""

from __future__ import annotations

from toefl_core.auth import Role, auth_metadata, mint_token

TEST_TOKEN_KEY = "test-token-key-for-the-test-suite-only-000000"


def token(role: Role, subject: str | None = None, *, key: str = TEST_TOKEN_KEY, ttl: int = 3600) -> str:
    return mint_token(key, subject=subject or f"test-{role.value}", role=role, ttl_seconds=ttl)


def metadata(role: Role, subject: str | None = None) -> tuple[tuple[str, str], ...]:
    return auth_metadata(token(role, subject))
