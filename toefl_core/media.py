"""Content-addressed media references: an audio_url "sha256:<hex>" names a blob stored in the item bank."""

from __future__ import annotations

import hashlib
import re

MEDIA_REF_PREFIX = "sha256:"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def media_ref(digest: str) -> str:
    """The audio_url that names the blob of this SHA-256 (lowercase hex)."""
    if not SHA256_HEX.fullmatch(digest):
        raise ValueError(f"not a lowercase hex SHA-256: {digest!r}")
    return MEDIA_REF_PREFIX + digest


def is_media_ref(url: str) -> bool:
    """Whether an audio_url claims to name a stored blob (well formed or not); anything else is an external URL."""
    return url.startswith(MEDIA_REF_PREFIX)


def media_digest(url: str) -> str | None:
    """The SHA-256 a well-formed reference names; None for an external URL or a malformed reference."""
    if not is_media_ref(url):
        return None
    digest = url.removeprefix(MEDIA_REF_PREFIX)
    return digest if SHA256_HEX.fullmatch(digest) else None
