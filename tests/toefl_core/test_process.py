"""A started service: its start-up heap frozen, its full collections seldom, its stacks written on SIGUSR1."""

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


GROWING = """
import gc
from toefl_core.process import settle_after_start
settle_after_start()
before = gc.get_stats()[2]["collections"]
kept = [[n] for n in range(300_000)]  # a room's sessions and modules coming in: long-lived containers
print(gc.get_stats()[2]["collections"] - before, flush=True)
"""


def test_a_settled_service_does_not_walk_its_growing_heap_at_every_few_hundred_thousand_allocations() -> None:
    # With Python's default thresholds the same growth starts full collections (checked: 3 of them).
    full = subprocess.run([sys.executable, "-c", GROWING], capture_output=True, text=True, check=True, timeout=60)
    assert int(full.stdout) == 0
