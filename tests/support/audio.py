"""Spoken answers for tests: eSpeak NG speech (item_service.speech) encoded by FFmpeg (PyAV) as browsers do."""

from __future__ import annotations

import functools

from item_service.speech import Turn, Voice, synthesize
from launcher.audio import MP4_AAC, OGG_OPUS, WAV, WEBM_OPUS, encode

__all__ = ["MP4_AAC", "OGG_OPUS", "SPEAKING_TASK_TYPES", "WAV", "WEBM_OPUS", "speech_pcm", "spoken_answer"]

# The task types answered by a recording, as the JSON API names them.
SPEAKING_TASK_TYPES = ("TASK_TYPE_LISTEN_AND_REPEAT", "TASK_TYPE_TAKE_AN_INTERVIEW")


@functools.cache
def speech_pcm(text: str) -> tuple[bytes, int]:
    return synthesize([Turn(Voice("en-us+m3", words_per_minute=150), text)])


def spoken_answer(
    kind: tuple[str, str, str],
    text: str = "I would choose the library, because it is quiet.",
    *,
    seconds: float | None = None,
) -> tuple[str, bytes]:
    """(content type, bytes) of `text` spoken and encoded as `kind` (WEBM_OPUS, WAV, ...)."""
    content_type, container, codec = kind
    pcm, rate = speech_pcm(text)
    return content_type, encode(pcm, rate, container, codec, seconds=seconds)
