"""A student's export as a ZIP archive: the JSON document and each recording's audio as a file."""

from __future__ import annotations

import tempfile
import zipfile
from typing import IO

from session_service.domain.recordings import archive_path
from session_service.storage import recordings
from session_service.storage.engine import Database

ARCHIVE_TYPE = "application/zip"
# Past this the archive is written to a temporary file: memory holds one recording at a time, not all of them.
IN_MEMORY_BYTES = 8 * 1024 * 1024


def write_archive(db: Database, *, student_id: str, document: str) -> IO[bytes]:
    """The archive, rewound: student.json (compressed) and recordings/<audio_ref>.<ext> (stored as they are:
    audio is compressed already)."""
    archive: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES)  # noqa: SIM115
    infos = {info.recording_id: info for info in recordings.student_recordings(db, student_id=student_id)}
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("student.json", document, compress_type=zipfile.ZIP_DEFLATED)
        for recording_id, data in recordings.audio_of(db, recording_ids=list(infos)):
            path = archive_path(recording_id, infos[recording_id].content_type)
            zipped.writestr(path, data, compress_type=zipfile.ZIP_STORED)
    archive.seek(0)
    return archive
