"""A started service: its start-up heap frozen out of full collections, and its stacks written on SIGUSR1."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

CHILD = """
import gc, sys, time
from toefl_core.process import settle_after_start
kept = [[n] for n in range(10_000)]  # containers, which the collector tracks
settle_after_start()
print(gc.get_freeze_count(), flush=True)
time.sleep(30)
"""


def test_settled_service_freezes_its_heap_and_dumps_its_stacks_on_sigusr1() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        frozen = int(child.stdout.readline())
        assert frozen > 10_000
        child.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        assert child.poll() is None, "SIGUSR1 stopped the service"
    finally:
        child.kill()
        _, stderr = child.communicate(timeout=10)
    assert "Current thread" in stderr or "Thread 0x" in stderr
    assert "line 7 in <module>" in stderr or "in <module>" in stderr
