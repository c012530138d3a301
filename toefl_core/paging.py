"""Pagination for every List RPC of both services: page sizes within per-RPC bounds, signed page tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from toefl_core.errors import InvalidArgument

FIELD = "page_token"
# Tokens we issue are well under this; anything longer is refused before any decoding.
MAX_TOKEN_LENGTH = 512
# Positions hold row ids and millisecond times; a bound keeps every integer within a database's BIGINT.
MAX_POSITION_INT = 2**63 - 1
_MAC_BYTES = 16
_KEY_PURPOSE = b"toefl page tokens v1"
NOT_ISSUED = "page_token is not a token this service issued; pass back a next_page_token unchanged"
OTHER_QUERY = "page_token belongs to a different query; keep the filters of the first page"

Position = tuple[str | int, ...]
Row = TypeVar("Row")


def page_size(requested: int, *, default: int, maximum: int, field: str = "page_size") -> int:
    """The page size to use: `default` for 0, `requested` within 1..maximum, InvalidArgument otherwise."""
    if requested == 0:
        return default
    if not 1 <= requested <= maximum:
        raise InvalidArgument(f"{field} must be between 1 and {maximum} (0 means {default})", field=field)
    return requested


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _query_digest(query: Sequence[object]) -> str:
    # repr of plain values (strings, numbers, None, frozen dataclasses of them) is stable across processes.
    return hashlib.sha256(repr(tuple(query)).encode()).hexdigest()[:16]


def _fits(value: object, kind: type) -> bool:
    if kind is int:
        return type(value) is int and 0 <= value <= MAX_POSITION_INT
    return type(value) is kind


class PageTokens:
    """Opaque page tokens: the position after which the next page starts and the query it belongs to, signed.

    A client can neither forge a position nor carry a token over to another query (other filters, another RPC,
    another caller where the query names one): every such token is refused with InvalidArgument. The signing key
    is derived from the services' token key, so each process of either service checks the others' tokens.
    """

    def __init__(self, token_key: str) -> None:
        self._key = hmac.new(token_key.encode(), _KEY_PURPOSE, hashlib.sha256).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, position: Sequence[str | int], *, query: Sequence[object]) -> str:
        payload = json.dumps({"p": list(position), "q": _query_digest(query)}, separators=(",", ":")).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._mac(payload))}"

    def decode(self, token: str, *, query: Sequence[object], shape: Sequence[type]) -> Position | None:
        """The position a token names (its values of the types in `shape`), None for "" (the first page)."""
        if not token:
            return None
        payload_text, dot, mac_text = token.partition(".")
        if len(token) > MAX_TOKEN_LENGTH or not dot:
            raise InvalidArgument(NOT_ISSUED, field=FIELD)
        try:
            payload, mac = _b64decode(payload_text), _b64decode(mac_text)
        except (binascii.Error, ValueError) as exc:
            raise InvalidArgument(NOT_ISSUED, field=FIELD) from exc
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidArgument(NOT_ISSUED, field=FIELD)
        # Signed by us: what follows guards against a token of another version of this code, not against a client.
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise InvalidArgument(NOT_ISSUED, field=FIELD) from exc
        if not isinstance(data, dict) or data.get("q") != _query_digest(query):
            raise InvalidArgument(OTHER_QUERY, field=FIELD)
        position = data.get("p")
        if not (
            isinstance(position, list)
            and len(position) == len(shape)
            and all(_fits(value, kind) for value, kind in zip(position, shape, strict=True))
        ):
            raise InvalidArgument(NOT_ISSUED, field=FIELD)
        return tuple(position)

    def page(
        self,
        rows: Sequence[Row],
        size: int,
        *,
        query: Sequence[object],
        position: Callable[[Row], Sequence[str | int]],
    ) -> tuple[Sequence[Row], str]:
        """A page out of the `size + 1` rows read after the last one: its rows, and the token of the next page
        (the `position` of its last row), "" when no row follows."""
        if len(rows) <= size:
            return rows, ""
        return rows[:size], self.encode(position(rows[size - 1]), query=query)
