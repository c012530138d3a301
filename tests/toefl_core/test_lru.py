"""The bounded caches' LRU: full, it forgets the entry used least recently, one at a time."""

from __future__ import annotations

import pytest

from toefl_core.lru import LRU


def test_a_full_lru_forgets_the_entry_used_least_recently() -> None:
    lru: LRU[str, int] = LRU(3)
    for n, key in enumerate("abc"):
        lru.put(key, n)
    assert lru.get("a") == 0  # used: "b" is now the least recent
    lru.put("d", 3)
    assert ("a" in lru, "b" in lru, "c" in lru, "d" in lru) == (True, False, True, True)
    lru.put("c", 20)  # put again: most recent, not a second entry
    lru.put("e", 4)
    assert len(lru) == 3
    assert [lru.get(key) for key in "acde"] == [None, 20, 3, 4]


def test_pop_and_clear() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    assert lru.pop("a") == 1
    assert lru.pop("a") is None
    lru.put("b", 2)
    lru.clear()
    assert len(lru) == 0


def test_an_lru_holds_at_least_one_entry() -> None:
    with pytest.raises(ValueError, match="at least one entry"):
        LRU(0)
