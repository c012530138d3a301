"""The service's heartbeat in the student data, and the outage check at start-up that gives lost time back."""

from __future__ import annotations

import asyncio
import logging
import uuid

from session_service import writer
from session_service.domain.modules import now_ms
from session_service.domain.outages import may_be_alive, still_beating
from session_service.storage import outages
from session_service.workers import Workers

log = logging.getLogger(__name__)

# A process that misses this many beats in a row is taken for dead; one that beat within them may be alive.
MISSED_BEATS = 3


class Heartbeat:
    def __init__(self, workers: Workers, *, interval_seconds: float, grace_seconds: float) -> None:
        self._workers = workers
        self._interval = interval_seconds
        self._grace_ms = round(grace_seconds * 1000)
        self.process_id = f"proc-{uuid.uuid4().hex[:20]}"

    @property
    def _stale_ms(self) -> int:
        return round(MISSED_BEATS * self._interval * 1000)

    async def recover(self) -> None:
        """Before the first call is served: if the service was down, the modules open meanwhile get their time
        back. A heartbeat too recent to call its process dead is watched for a few beats first."""
        seen: dict[str, int] | None = await self._workers.read(outages.heartbeats, besides=self.process_id)
        if seen and may_be_alive(seen.values(), now_ms=now_ms(), stale_ms=self._stale_ms):
            await asyncio.sleep(self._stale_ms / 1000)
            after = await self._workers.read(outages.heartbeats, besides=self.process_id)
            seen = None if still_beating(seen, after) else after
        recovered = await self._workers.write(
            writer.recover_lost_time,
            process_id=self.process_id,
            now_ms=now_ms(),
            seen=seen,
            stale_ms=self._stale_ms,
            grace_ms=self._grace_ms,
        )
        if recovered is not None:
            outage, time_back_ms, modules = recovered
            log.warning(
                "the service was down for %.1f s: %d open module(s) got %.1f s back",
                (outage.up_ms - outage.down_from_ms) / 1000,
                modules,
                time_back_ms / 1000,
            )

    async def beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._workers.write(writer.heartbeat, process_id=self.process_id, now_ms=now_ms())
            except Exception:
                # A missed beat only makes a later start watch a little longer; the next one may pass.
                log.warning("heartbeat not written; trying again in %.1f s", self._interval, exc_info=True)
