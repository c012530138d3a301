"""A mapping of bounded size that forgets the entry used least recently: the caches a service keeps per student."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `limit` entries; `get` and `put` make an entry the most recent, and a `put` beyond the limit forgets
    the least recent one. Never cleared whole when full: that made every student's next request a miss at once."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"an LRU holds at least one entry, not {limit}")
        self._limit = limit
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)

    def oldest(self) -> tuple[K, V] | None:
        """The entry used least recently (the next to be forgotten), left in place."""
        for key, value in self._entries.items():
            return key, value
        return None

    def pop(self, key: K) -> V | None:
        return self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
