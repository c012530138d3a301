"""FFmpeg's reading of uploaded recordings, in worker processes of its own rather than in the serving process."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from session_service.domain.recordings import AudioFacts, NotAudio

log = logging.getLogger(__name__)
# A recording is decoded frame by frame by native code reading what a browser (or anyone with a token) sent: a
# crash there ends a worker and that upload, not every student's session. The serving process does not carry
# FFmpeg (about 20 MB resident), and decoding no longer holds its GIL: two workers took a class's uploads 2.5
# times as fast (docs/PERFORMANCE.md). Each costs about 44 MB resident (and multiprocessing's resource tracker
# 13 MB); they start with the first upload.
DECODER_PROCESSES = 2


def _probe(data: bytes, stop_after_ms: int) -> AudioFacts:
    # In the worker: the only place PyAV is imported.
    from session_service.audio import probe

    return probe(data, stop_after_ms)


def _end_with_the_service() -> None:
    """In each worker as it starts: a service killed outright (SIGKILL, OOM) shuts no pool down, and a worker
    left behind would hold its memory for nobody; it ends as soon as the service is gone."""
    service = multiprocessing.parent_process()
    if service is not None:
        threading.Thread(target=_exit_when_gone, args=(service.sentinel,), daemon=True).start()


def _exit_when_gone(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


class AudioDecoder:
    """`probe` in a worker process; a worker lost under a recording (FFmpeg crashed, or was killed) is replaced."""

    def __init__(self, processes: int = DECODER_PROCESSES) -> None:
        self._processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the serving process has gRPC's and the database's threads, which a fork would copy
            # mid-flight; a spawned worker imports this module and session_service.audio only.
            self._pool = ProcessPoolExecutor(
                self._processes, mp_context=multiprocessing.get_context("spawn"), initializer=_end_with_the_service
            )
        return self._pool

    async def probe(self, data: bytes, stop_after_ms: int) -> AudioFacts:
        """session_service.audio.probe of `data` in a worker. Raises NotAudio as it does, and for a recording
        during which the worker died twice (on a fresh worker the second time)."""
        for attempt in (1, 2):
            pool = self._workers()
            try:
                return await asyncio.wrap_future(pool.submit(_probe, data, stop_after_ms))
            except BrokenProcessPool:
                # Every upload in flight meets the same broken pool; the first to come back replaces it.
                if self._pool is pool:
                    log.warning(
                        "an audio decoder process stopped (attempt %d of a recording); starting anew", attempt
                    )
                    self._pool = None
                    pool.shutdown(wait=False, cancel_futures=True)
        raise NotAudio("the audio decoder stopped twice on this recording")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
