"""Offline speech for the bank's prompts: eSpeak NG (bundled by espeakng-loader) through ctypes, MP3 by LAME."""

from __future__ import annotations

import _ctypes
import ctypes
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import espeakng_loader
import lameenc

MP3_CONTENT_TYPE = "audio/mpeg"
# Mono speech at eSpeak's 22.05 kHz: 32 kbit/s CBR (MPEG-2 Layer III) is clear for speech and plays everywhere.
MP3_BITRATE_KBPS = 32
# LAME's speed/quality trade-off (0 best, 9 fastest): 7 halves the encoding time of 2 with no audible loss here.
LAME_QUALITY = 7
# Silence between the turns of a conversation.
TURN_GAP_SECONDS = 0.4
# The female variants add breath noise from eSpeak's random generator: a fixed seed before each utterance.
RANDOM_SEED = 2026

# From eSpeak NG's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETER_RATE = 1
_PARAMETER_PITCH = 3
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class SpeechError(Exception):
    """eSpeak NG refused to start or to speak; the message says which call."""


@dataclass(frozen=True)
class Voice:
    """An eSpeak NG voice and variant (e.g. "en-us+f3"), its speaking rate and pitch (0-100; 50 is its own)."""

    name: str
    words_per_minute: int = 160
    pitch: int = 50


@dataclass(frozen=True)
class Turn:
    """What one voice says; a conversation is several turns."""

    voice: Voice
    text: str


@contextmanager
def _espeak() -> Iterator[tuple[ctypes.CDLL, int]]:
    """A fresh load of libespeak-ng, initialised, and its sample rate; unloaded on leaving.

    The synthesiser keeps state between utterances in static variables that no call resets (pitch flutter, gain
    control, noise filters): the same text spoken twice in one process gives other samples. A library loaded
    anew for each clip starts from its initial state, so a clip depends on its turns alone.
    """
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    try:
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data_path = espeakng_loader.get_data_path().encode()
        sample_rate = int(lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0))
        if sample_rate <= 0:
            raise SpeechError(f"espeak_Initialize failed ({sample_rate}) with the data in {data_path!r}")
        try:
            yield lib, sample_rate
        finally:
            lib.espeak_Terminate()
    finally:
        _ctypes.dlclose(lib._handle)


def _speak(lib: ctypes.CDLL, turn: Turn) -> bytes:
    """16-bit mono PCM of one turn."""
    chunks: list[bytes] = []

    def collect(samples: Any, count: int, _events: Any) -> int:
        if count > 0:
            chunks.append(ctypes.string_at(samples, count * 2))
        return 0

    callback = _SynthCallback(collect)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(turn.voice.name.encode()) != 0:
        raise SpeechError(f"eSpeak NG has no voice {turn.voice.name!r}")
    lib.espeak_SetParameter(_PARAMETER_RATE, turn.voice.words_per_minute, 0)
    lib.espeak_SetParameter(_PARAMETER_PITCH, turn.voice.pitch, 0)
    lib.espeak_ng_SetRandSeed(RANDOM_SEED)
    text = turn.text.encode()
    status = lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if status != 0:
        raise SpeechError(f"espeak_Synth failed ({status}) on {turn.text[:60]!r}")
    # Synchronous output: every sample has gone through the callback when this returns.
    lib.espeak_Synchronize()
    return b"".join(chunks)


# The library is loaded once per process however many threads ask: one clip at a time.
_lock = threading.Lock()


def synthesize(turns: Sequence[Turn]) -> tuple[bytes, int]:
    """16-bit mono PCM of the turns in order, a short silence between them, and its sample rate."""
    with _lock, _espeak() as (lib, sample_rate):
        gap = bytes(2 * round(TURN_GAP_SECONDS * sample_rate))
        return gap.join(_speak(lib, turn) for turn in turns), sample_rate


def encode_mp3(pcm: bytes, sample_rate: int) -> bytes:
    encoder = lameenc.Encoder()
    encoder.set_channels(1)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_bit_rate(MP3_BITRATE_KBPS)
    encoder.set_quality(LAME_QUALITY)
    return bytes(encoder.encode(pcm)) + bytes(encoder.flush())


def speak_mp3(turns: Sequence[Turn]) -> bytes:
    """The turns spoken and compressed: an MP3 (MP3_CONTENT_TYPE), the same bytes for the same turns."""
    pcm, sample_rate = synthesize(turns)
    return encode_mp3(pcm, sample_rate)
