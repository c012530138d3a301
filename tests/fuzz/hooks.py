"""schemathesis hooks (loaded through SCHEMATHESIS_HOOKS): bodies of the media types no JSON schema generates."""

from __future__ import annotations

import numpy as np
import schemathesis
from hypothesis import strategies as st

from launcher.audio import MP4_AAC, OGG_OPUS, WAV, WEBM_OPUS, encode

# A second of a tone in each format a recording may have, and bytes that are none of them.
_TONE = (np.sin(np.arange(16_000) * 2 * np.pi * 220 / 16_000) * 8000).astype(np.int16).tobytes()
for _content_type, _container, _codec in (WEBM_OPUS, MP4_AAC, OGG_OPUS, WAV):
    schemathesis.openapi.media_type(
        _content_type.split(";", 1)[0],
        st.sampled_from([encode(_TONE, 16_000, _container, _codec)]) | st.binary(max_size=256),
    )
