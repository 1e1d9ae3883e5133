"""Least-recently-used eviction over byte-sized entries.

An ``OrderedDict`` keeps keys in recency order (oldest first), so every operation is O(1): a hit
moves its key to the end, the victim is the first key. It is the baseline the other policies are
measured against; it has no scan resistance (a burst of one-use prefixes flushes hot ones).
"""

from __future__ import annotations

from collections import OrderedDict


class LRUPolicy:
    """Evicts the resident key whose last insert or touch is the oldest."""

    __slots__ = ("_bytes", "used_bytes")

    def __init__(self) -> None:
        self.used_bytes = 0.0
        self._bytes: OrderedDict[int, float] = OrderedDict()  # key -> bytes, least recent first

    @property
    def resident(self) -> dict:
        """The dict keyed by the resident keys (never replaced): ``key in policy`` without a
        method call, for the store's lookups."""
        return self._bytes

    def __contains__(self, key: int) -> bool:
        return key in self._bytes

    def __len__(self) -> int:
        return len(self._bytes)

    def size_of(self, key: int) -> float:
        return self._bytes[key]

    def touch(self, key: int) -> None:
        self._bytes.move_to_end(key)

    def insert(self, key: int, num_bytes: float) -> None:
        if key in self._bytes:
            raise ValueError(f"key {key} is already resident")
        self._bytes[key] = num_bytes
        self.used_bytes += num_bytes

    def evict(self) -> tuple[int, float]:
        key, num_bytes = self._bytes.popitem(last=False)
        # reset when empty so float round-off from many +/- cannot accumulate forever
        self.used_bytes = self.used_bytes - num_bytes if self._bytes else 0.0
        return key, num_bytes

    def keys(self) -> list[int]:
        return list(self._bytes)
