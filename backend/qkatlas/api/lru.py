"""The one in-memory cache of the API: least-recently-used, bounded by the bytes it holds."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable


class LRU:
    """A thread-safe least-recently-used cache bounded by the bytes of what it holds.

    `build` runs outside the lock: two threads may build the same value once each, which is
    harmless, and a slow build never blocks readers of other keys.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self._sizes: dict = {}
        self._total = 0
        self._lock = threading.Lock()

    def get(self, key):
        """The value under `key`, or None."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def get_or_build(self, key, build: Callable):
        value = self.get(key)
        if value is not None:
            return value
        value = build()
        size = nbytes(value)
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self._sizes[key] = size
                self._total += size
            while self._total > self.max_bytes and len(self._items) > 1:
                old, _ = self._items.popitem(last=False)
                self._total -= self._sizes.pop(old)
        return value


def nbytes(value) -> int:
    """What a cached value costs: arrays and bytes by their size, tuples by the sum of their parts."""
    if isinstance(value, tuple):
        return sum(nbytes(v) for v in value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    return int(getattr(value, "nbytes", 0))


@dataclass(frozen=True)
class Sized:
    """A small non-array value in the LRU (counted as a kilobyte)."""

    value: object
    nbytes: int = 1024
