"""A long-running service once started: its start-up heap kept out of full collections, its stacks on SIGUSR1."""

from __future__ import annotations

import faulthandler
import gc
import signal


def settle_after_start() -> None:
    """Called once a service has loaded what it keeps for its whole life (the bank's items, descriptors, code).

    A full (generation 2) collection walks every tracked object: with the start-up heap in it, 90-150 ms of a
    stalled event loop each time, during which every answer in flight waits. Frozen, those objects are left out
    of every later pass. And an operator's window into a service that hangs: `kill -USR1` writes every thread's
    stack to stderr.
    """
    gc.collect()
    gc.freeze()
    faulthandler.register(signal.SIGUSR1, all_threads=True)
