"""MP3 frame headers read in pure Python: whether bytes are an MPEG Layer III stream, and how long it plays."""

from __future__ import annotations

from dataclasses import dataclass

# kbit/s by bitrate index (0 "free" and 15 "bad" are refused), per MPEG version of Layer III.
_BITRATES_MPEG1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_MPEG2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
# Hz by sample-rate index, per version (header bits: 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5).
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_ID3V1_SIZE = 128


class Mp3Error(ValueError):
    """The bytes are not a whole MPEG Layer III stream; the message says where it breaks."""


@dataclass(frozen=True)
class Mp3Info:
    frames: int
    sample_rate: int
    # The bitrate of the first frame, kbit/s (every frame's, for a CBR stream).
    bitrate_kbps: int
    seconds: float


def _skip_id3v2(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    # A synchsafe size: 7 bits per byte.
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    return 10 + size


def read_mp3(data: bytes) -> Mp3Info:
    """Walks every frame header from the first byte (after an ID3v2 tag) to the end (before an ID3v1 tag)."""
    end = len(data) - (_ID3V1_SIZE if data[-_ID3V1_SIZE:][:3] == b"TAG" else 0)
    offset = _skip_id3v2(data)
    frames = samples = 0
    sample_rate = first_bitrate = 0
    while offset < end:
        if end - offset < 4:
            raise Mp3Error(f"{end - offset} stray bytes at offset {offset}")
        header = int.from_bytes(data[offset : offset + 4], "big")
        version, layer = (header >> 19) & 3, (header >> 17) & 3
        bitrate_index, rate_index, padding = (header >> 12) & 15, (header >> 10) & 3, (header >> 9) & 1
        if header >> 21 != 0x7FF or version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
            raise Mp3Error(f"no Layer III frame header at offset {offset} ({header:#010x})")
        rate = _SAMPLE_RATES[version][rate_index]
        kbps = (_BITRATES_MPEG1 if version == 3 else _BITRATES_MPEG2)[bitrate_index]
        per_frame = 1152 if version == 3 else 576
        if sample_rate and rate != sample_rate:
            raise Mp3Error(f"the sample rate changes from {sample_rate} to {rate} Hz at offset {offset}")
        sample_rate, first_bitrate = rate, first_bitrate or kbps
        length = per_frame // 8 * kbps * 1000 // rate + padding
        if offset + length > end:
            raise Mp3Error(f"the frame at offset {offset} needs {length} bytes, {end - offset} are left")
        offset += length
        frames += 1
        samples += per_frame
    if not frames:
        raise Mp3Error("no MPEG audio frame")
    return Mp3Info(
        frames=frames, sample_rate=sample_rate, bitrate_kbps=first_bitrate, seconds=samples / sample_rate
    )
