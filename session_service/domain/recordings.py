"""What a spoken answer's recording must be: a type browsers record, audio that decodes, no longer than its item's
response window allows, within the byte limits of a recording and of a test."""

from __future__ import annotations

from dataclasses import dataclass

from session_service.domain.answers import MAX_SPEECH_MS, SPEECH_TASKS
from toefl_core.errors import InvalidArgument, OutOfRange, ResourceExhausted

# The media types taken, and the containers (FFmpeg's names) and codecs their bytes must really hold: what
# MediaRecorder gives in Chromium and Firefox (WebM with Opus) and Safari (MP4 with AAC), and the usual files.
_WEBM = ("matroska,webm", frozenset({"opus", "vorbis"}))
_MP4 = ("mov,mp4,m4a,3gp,3g2,mj2", frozenset({"aac", "opus", "alac", "mp3"}))
_OGG = ("ogg", frozenset({"opus", "vorbis", "flac"}))
_WAV = ("wav", frozenset({"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_u8", "pcm_mulaw", "pcm_alaw"}))
ACCEPTED: dict[str, tuple[str, frozenset[str]]] = {
    "audio/webm": _WEBM,
    "audio/mp4": _MP4,
    "audio/x-m4a": _MP4,
    "audio/ogg": _OGG,
    "audio/wav": _WAV,
    "audio/wave": _WAV,
    "audio/x-wav": _WAV,
}
# Beyond the item's response window: the browser starts and stops recording a moment after the clock does.
MARGIN_SECONDS = 3
# Shorter than this is no answer (a click of the button), however well it decodes.
MIN_DURATION_MS = 200
BODY_TYPE = "audio.content_type"
BODY_DATA = "audio.data"


class NotAudio(Exception):
    """FFmpeg found no audio it could decode; the message says what went wrong."""


@dataclass(frozen=True)
class AudioFacts:
    """What decoding found: the container and codec FFmpeg recognised, and the audio's length."""

    container: str
    codec: str
    duration_ms: int


def media_type(content_type: str) -> str:
    """The media type of a Content-Type, lowercase, without its parameters (";codecs=opus")."""
    return content_type.split(";", 1)[0].strip().lower()


def check_type(content_type: str) -> str:
    """The media type, if one a recording may have; else a refusal the gateway answers 415."""
    kind = media_type(content_type)
    if kind not in ACCEPTED:
        taken = ", ".join(sorted({"audio/webm", "audio/mp4", "audio/ogg", "audio/wav"}))
        raise InvalidArgument(
            f"a recording is {taken}, not {content_type or 'untyped bytes'}",
            field=BODY_TYPE,
            reason="RECORDING_TYPE_UNSUPPORTED",
        )
    return kind


def check_size(size: int, *, limit: int) -> None:
    """A refusal the gateway answers 413 when the recording has more bytes than one may have."""
    if size > limit:
        raise OutOfRange(
            f"the recording has {size} bytes; one may have at most {limit}",
            field=BODY_DATA,
            reason="RECORDING_TOO_LARGE",
            metadata={"limit_bytes": str(limit)},
        )
    if size == 0:
        raise InvalidArgument("the recording is empty", field=BODY_DATA, reason="RECORDING_UNDECODABLE")


def check_test_total(held: int, size: int, *, limit: int) -> None:
    """The test's recordings together stay within `limit` bytes."""
    if held + size > limit:
        raise ResourceExhausted(
            f"this test's recordings already hold {held} bytes; {size} more would pass its limit of {limit}",
            reason="RECORDINGS_TOTAL_EXCEEDED",
            metadata={"limit_bytes": str(limit)},
        )


def check_speaking(task_type: str, item_id: str) -> None:
    if task_type not in SPEECH_TASKS:
        raise InvalidArgument(
            f"item {item_id} is not a speaking item (Listen and Repeat, Take an Interview): it takes no recording",
            field="item_id",
            reason="NOT_A_SPEAKING_ITEM",
        )


def max_duration_ms(response_seconds: int) -> int:
    """The longest recording an item takes: its response window and the margin (an item without a window: the
    longest spoken answer there is)."""
    if response_seconds <= 0:
        return MAX_SPEECH_MS
    return min((response_seconds + MARGIN_SECONDS) * 1000, MAX_SPEECH_MS)


def undecodable(kind: str, why: str) -> InvalidArgument:
    return InvalidArgument(
        f"the body is not {kind} audio that decodes ({why})", field=BODY_DATA, reason="RECORDING_UNDECODABLE"
    )


def check_audio(kind: str, facts: AudioFacts, *, max_ms: int) -> None:
    """The decoded bytes are audio of the declared type, long enough to be an answer and no longer than allowed."""
    container, codecs = ACCEPTED[kind]
    if facts.container != container or facts.codec not in codecs:
        raise undecodable(kind, f"it holds {facts.codec} in {facts.container}")
    if facts.duration_ms < MIN_DURATION_MS:
        raise undecodable(kind, f"{facts.duration_ms} ms of sound")
    if facts.duration_ms > max_ms:
        raise InvalidArgument(
            f"the recording lasts more than {max_ms / 1000:g} s (the item's response window and "
            f"{MARGIN_SECONDS} s)",
            field=BODY_DATA,
            reason="RECORDING_TOO_LONG",
            metadata={"max_seconds": f"{max_ms / 1000:g}"},
        )


def audio_ref_refusal(
    audio_ref: str, *, found: tuple[str, str] | None, session_id: str, item_id: str
) -> InvalidArgument | None:
    """Why a speech answer may not name `audio_ref`, a recording of ours ("rec-..."): `found` is the (session,
    item) it was recorded for, None when there is no such recording. Other references (an external store's)
    are taken as before."""
    if not audio_ref.startswith(RECORDING_PREFIX):
        return None
    if found != (session_id, item_id):
        # The same answer whether it does not exist or belongs to someone else: nothing is learnt either way.
        return InvalidArgument(
            f"speech.audio_ref {audio_ref} is not a recording of this session's item {item_id}; upload it first",
            field="answer.speech.audio_ref",
            reason="AUDIO_REF_UNKNOWN",
        )
    return None


RECORDING_PREFIX = "rec-"
_EXTENSIONS = {"audio/webm": ".webm", "audio/mp4": ".m4a", "audio/x-m4a": ".m4a", "audio/ogg": ".ogg"}


def archive_path(recording_id: str, content_type: str) -> str:
    """Where a recording's audio lies in a student's export archive, named so that a player opens it."""
    return f"recordings/{recording_id}{_EXTENSIONS.get(media_type(content_type), '.wav')}"
