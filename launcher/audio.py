"""Audio as a browser records it, for tests and benchmarks: PCM encoded by FFmpeg (PyAV) into a container."""

from __future__ import annotations

import io

import av
import numpy as np

# Content type, container and encoder of what Chromium's MediaRecorder gives, and of a WAV file.
WEBM_OPUS = ("audio/webm;codecs=opus", "webm", "libopus")
WAV = ("audio/wav", "wav", "pcm_s16le")
OGG_OPUS = ("audio/ogg;codecs=opus", "ogg", "libopus")
MP4_AAC = ("audio/mp4", "mp4", "aac")


def encode(pcm: bytes, sample_rate: int, container: str, codec: str, *, seconds: float | None = None) -> bytes:
    """`pcm` (16-bit mono) resampled to 48 kHz, padded with silence to `seconds` if given, and encoded."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768
    rate = 48_000
    positions = np.arange(round(len(samples) * rate / sample_rate)) * sample_rate / rate
    wave = np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)
    if seconds is not None:
        wave = np.concatenate([wave, np.zeros(max(0, round(seconds * rate) - len(wave)), dtype=np.float32)])
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream: av.AudioStream = out.add_stream(codec, rate=rate, layout="mono")  # type: ignore[assignment]
        kind = stream.codec_context.format.name
        step = 960
        for start in range(0, len(wave), step):
            chunk = wave[start : start + step]
            values = (chunk * 32767).astype(np.int16) if kind == "s16" else chunk
            frame = av.AudioFrame.from_ndarray(values[None, :], format=kind, layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()
