"""The bank's media against its references: every blob hashes to its key, every "sha256:" audio_url is stored."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import Engine, LargeBinary, cast, select

from item_service.storage.models import ItemRow, MediaRow, PassageRow
from toefl_core.media import is_media_ref, media_digest


@dataclass
class MediaReport:
    blobs: int = 0
    total_bytes: int = 0
    references: int = 0
    problems: list[str] = field(default_factory=list)


def check_media_blobs(engine: Engine) -> MediaReport:
    """Reads every blob once (the bank's audio is tens of MB) and every item's and passage's audio_url."""
    report = MediaReport()
    stored: set[str] = set()
    with engine.connect() as connection:
        # A few blobs at a time in memory, not the whole bank's audio.
        # As BLOB whatever was written there: a value changed into text is reported, not a crash of the check.
        as_blob = cast(MediaRow.data, LargeBinary)
        query = select(MediaRow.sha256, MediaRow.byte_size, as_blob).order_by(MediaRow.sha256)
        blobs = connection.execute(query.execution_options(yield_per=64))
        for digest, byte_size, data in blobs:
            stored.add(digest)
            report.blobs += 1
            report.total_bytes += len(data)
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                report.problems.append(f"media {digest} was altered: its {len(data)} bytes hash to {actual}")
            elif byte_size != len(data):
                report.problems.append(f"media {digest}: byte_size {byte_size}, but it holds {len(data)} bytes")
        references = [
            (f"passage {passage_id} ({external_id})", url)
            for passage_id, external_id, url in connection.execute(
                select(PassageRow.passage_id, PassageRow.external_id, PassageRow.audio_url)
            )
        ]
        references += [
            (f"item {item_id} ({external_id})", str((content or {}).get("audioUrl", "")))
            for item_id, external_id, content in connection.execute(
                select(ItemRow.item_id, ItemRow.external_id, ItemRow.content)
            )
        ]
    for owner, url in sorted(references):
        if not is_media_ref(url):
            continue
        report.references += 1
        named = media_digest(url)
        if named is None:
            report.problems.append(f"{owner}: audio_url {url!r} is not a well-formed sha256 reference")
        elif named not in stored:
            report.problems.append(f"{owner}: its audio {named} is missing from the bank")
    return report
