"""Content-addressed media references: an audio_url "sha256:<hex>" names a blob stored in the item bank."""

from __future__ import annotations

import base64
import hashlib
import hmac
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


# ---- signed URLs: how a student's browser fetches the prompt audio of its own module, and nothing else
#
# session_service signs the URL of each stored audio of a module it serves to a student, as CDNs sign URLs;
# item_service checks the signature and never learns about sessions. An <audio> element sends no bearer token:
# the signature is the whole permission, so it names the blob and expires.

MEDIA_PATH = "/api/media/"
# The bytes of a content-addressed blob never change, and a signed link is one student's: their browser's cache
# only, for good.
MEDIA_CACHE_CONTROL = "private, max-age=31536000, immutable"
_SIGNING_CONTEXT = b"toefl media url v1"


def media_signing_key(token_key: str) -> bytes:
    """A key of its own for media URLs, derived from the platform's token key (both services hold it)."""
    return hmac.new(token_key.encode(), _SIGNING_CONTEXT, hashlib.sha256).digest()


def media_signature(key: bytes, digest: str, expires: int) -> str:
    mac = hmac.new(key, f"{digest}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def signed_media_url(key: bytes, digest: str, expires: int) -> str:
    """The gateway URL of a stored blob that works without a token until `expires` (Unix seconds)."""
    return f"{MEDIA_PATH}{digest}?expires={expires}&signature={media_signature(key, digest, expires)}"


def valid_media_signature(key: bytes, digest: str, expires: int, signature: str, *, now: float) -> bool:
    """Whether the signature is the one signed_media_url made for this blob and expiry, and it has not expired."""
    if expires <= now:
        return False
    return hmac.compare_digest(signature.encode(), media_signature(key, digest, expires).encode())


def sign_media_refs(url: str, key: bytes, expires: int) -> str:
    """A student's audio_url: a stored blob's reference becomes its signed URL; an external URL stays as it is."""
    digest = media_digest(url)
    return url if digest is None else signed_media_url(key, digest, expires)
