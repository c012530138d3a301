"""The STUDENT view of items and passages as session_service hands them out; the policy is toefl_core's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from toefl.item.v1 import item_pb2

from toefl_core.media import media_digest, signed_media_url
from toefl_core.student_view import student_item, student_passage

# A signed audio link outlives its module's deadline by this much: a student who is still on the page when the
# module closes can finish listening; a link found later is dead.
MEDIA_LINK_GRACE_SECONDS = 600


def with_signed_audio(
    items: Sequence[item_pb2.Item], passages: Sequence[item_pb2.Passage], *, key: bytes, expires: int
) -> tuple[list[item_pb2.Item], list[item_pb2.Passage]]:
    """The module's items and passages as one student receives them: each stored prompt audio ("sha256:...")
    becomes a link signed for them that item_service serves until `expires`; the shared copies stay as they are."""
    signed_items: list[item_pb2.Item] = []
    for item in items:
        digest = media_digest(item.content.audio_url)
        if digest is not None:
            item = _copy(item)
            item.content.audio_url = signed_media_url(key, digest, expires)
        signed_items.append(item)
    signed_passages: list[item_pb2.Passage] = []
    for passage in passages:
        digest = media_digest(passage.audio_url)
        if digest is not None:
            passage = _copy(passage)
            passage.audio_url = signed_media_url(key, digest, expires)
        signed_passages.append(passage)
    return signed_items, signed_passages


_Content = TypeVar("_Content", item_pb2.Item, item_pb2.Passage)


def _copy(message: _Content) -> _Content:
    copied = type(message)()
    copied.CopyFrom(message)
    return copied


__all__ = ["MEDIA_LINK_GRACE_SECONDS", "student_item", "student_passage", "with_signed_audio"]
