"""What a recording's bytes really hold: FFmpeg (PyAV) decodes every frame, in session_service.decoder's worker."""

from __future__ import annotations

import io

import av

from session_service.domain.recordings import AudioFacts, NotAudio


def probe(data: bytes, stop_after_ms: int) -> AudioFacts:
    """The container, codec and duration of `data`, from decoding every frame rather than trusting a header (a
    WebM from MediaRecorder has no duration in its header; a renamed file has a header and nothing after it).
    Decoding stops once past `stop_after_ms`: a longer recording is refused whatever follows."""
    try:
        # BytesIO over bytes shares the buffer until written to: the upload is not copied again.
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise NotAudio("no audio stream")
            stream = container.streams.audio[0]
            codec = stream.codec_context.name
            samples, rate = 0, stream.codec_context.sample_rate or 0
            for frame in container.decode(stream):
                rate = frame.sample_rate or rate
                samples += frame.samples
                if rate and samples * 1000 // rate > stop_after_ms:
                    break
            if not rate:
                raise NotAudio("no sample rate")
            return AudioFacts(container=container.format.name, codec=codec, duration_ms=samples * 1000 // rate)
    except av.FFmpegError as exc:
        raise NotAudio(exc.strerror or type(exc).__name__) from exc
