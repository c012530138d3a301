"""The recording rules: types taken, what decoding must find, the limits, which references an answer may name."""

from __future__ import annotations

import pytest

from session_service.domain.recordings import (
    AudioFacts,
    archive_path,
    audio_ref_refusal,
    check_audio,
    check_test_total,
    check_type,
    max_duration_ms,
)
from toefl_core.errors import InvalidArgument, ResourceExhausted


def test_the_test_total_is_a_limit_of_its_own() -> None:
    check_test_total(60, 40, limit=100)
    with pytest.raises(ResourceExhausted) as info:
        check_test_total(61, 40, limit=100)
    assert info.value.reason == "RECORDINGS_TOTAL_EXCEEDED"


def test_types_durations_and_refs() -> None:
    assert check_type("Audio/WebM; codecs=opus") == "audio/webm"
    with pytest.raises(InvalidArgument) as info:
        check_type("video/webm")
    assert (info.value.reason, info.value.field) == ("RECORDING_TYPE_UNSUPPORTED", "audio.content_type")
    assert max_duration_ms(45) == 48_000
    check_audio("audio/mp4", AudioFacts("mov,mp4,m4a,3gp,3g2,mj2", "aac", 30_000), max_ms=48_000)
    for facts, reason in [
        (AudioFacts("wav", "pcm_s16le", 3_000), "RECORDING_UNDECODABLE"),
        (AudioFacts("matroska,webm", "opus", 100), "RECORDING_UNDECODABLE"),
        (AudioFacts("matroska,webm", "opus", 48_001), "RECORDING_TOO_LONG"),
    ]:
        with pytest.raises(InvalidArgument) as info:
            check_audio("audio/webm", facts, max_ms=48_000)
        assert info.value.reason == reason
    assert audio_ref_refusal("https://store/x.webm", found=None, session_id="s", item_id="i") is None
    assert audio_ref_refusal("rec-1", found=("s", "i"), session_id="s", item_id="i") is None
    for found in (None, ("s", "j"), ("t", "i")):
        refusal = audio_ref_refusal("rec-1", found=found, session_id="s", item_id="i")
        assert refusal is not None and refusal.reason == "AUDIO_REF_UNKNOWN"
    assert archive_path("rec-1", "audio/webm;codecs=opus") == "recordings/rec-1.webm"
    assert archive_path("rec-2", "audio/x-wav") == "recordings/rec-2.wav"
