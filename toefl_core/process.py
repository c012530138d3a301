"""A long-running service once started: its start-up heap kept out of full collections, its stacks on SIGUSR1."""

from __future__ import annotations

import faulthandler
import gc
import signal

# Middle (generation 1) collections before a full one is considered; Python's default is 10. A full collection
# walks every long-lived object and stops every call in flight meanwhile: at a room's pace the default started one
# every few seconds (a quarter more objects had outlived the young collections: mostly the calls in flight,
# promoted and freed soon after), each as long as the room is large (session_service: 16-74 ms at 500 students,
# 200 ms at 10,000). At 1,000, about seven million container allocations apart: none in the exam rows of a bench
# run at 500 students. The young collections stay as they were (docs/PERFORMANCE.md, 2026-12-06).
FULL_COLLECTION_AFTER = 1_000


def keep_out_of_full_collections() -> None:
    """What the process holds now is left out of every later full collection, and full collections come seldom."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


def settle_after_start() -> None:
    """Called once a service has loaded what it keeps for its whole life (the bank's items, descriptors, code).

    A full (generation 2) collection walks every tracked object: with the start-up heap in it, 90-150 ms of a
    stalled event loop each time, during which every answer in flight waits. Frozen, those objects are left out
    of every later pass, and full passes come seldom (`FULL_COLLECTION_AFTER`). And an operator's window into a
    service that hangs: `kill -USR1` writes every thread's stack to stderr.
    """
    keep_out_of_full_collections()
    faulthandler.register(signal.SIGUSR1, all_threads=True)
