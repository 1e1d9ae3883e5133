"""Least-frequently-used eviction over byte-sized entries; ties go to the least recently used.

Each resident key counts its accesses (insert = 1, every touch + 1). The victim is the key with the
lowest count and, among those, the oldest last access. A min-heap of ``(count, tick, key)`` finds
it in O(log n); a touch pushes a fresh tuple instead of updating the old one (lazy invalidation),
and ``evict`` skips tuples whose tick is no longer the key's current one. Ticks come from a counter
bumped on every insert and touch, so they are unique: ordering is deterministic and never compares
keys. The heap is rebuilt when stale tuples outnumber live ones, so memory stays O(n) and the
rebuild is amortised O(1) per touch.

Counts never decay: a prefix that was hot long ago stays resident until it is the least counted.
That is classic LFU (and the weakness S3-FIFO's bounded counters avoid).
"""

from __future__ import annotations

import heapq

_COMPACT_SLACK = 64  # stale tuples tolerated beyond 1x live entries before rebuilding the heap


class LFUPolicy:
    """Evicts the lowest access count; ties: the oldest last access."""

    __slots__ = ("_by_count", "_entries", "_tick", "used_bytes")

    def __init__(self) -> None:
        self.used_bytes = 0.0
        self._entries: dict[int, tuple[float, int, int]] = {}  # key -> (bytes, count, last tick)
        self._by_count: list[tuple[int, int, int]] = []  # (count, tick, key); stale if tick is old
        self._tick = 0

    @property
    def resident(self) -> dict:
        """The dict keyed by the resident keys (never replaced): ``key in policy`` without a
        method call, for the store's lookups."""
        return self._entries

    def __contains__(self, key: int) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def size_of(self, key: int) -> float:
        return self._entries[key][0]

    def touch(self, key: int) -> None:
        num_bytes, count, _ = self._entries[key]
        self._tick += 1
        self._entries[key] = (num_bytes, count + 1, self._tick)
        heapq.heappush(self._by_count, (count + 1, self._tick, key))
        if len(self._by_count) > 2 * len(self._entries) + _COMPACT_SLACK:
            self._by_count = [(c, t, k) for k, (_, c, t) in self._entries.items()]
            heapq.heapify(self._by_count)

    def insert(self, key: int, num_bytes: float) -> None:
        if key in self._entries:
            raise ValueError(f"key {key} is already resident")
        self._tick += 1
        self._entries[key] = (num_bytes, 1, self._tick)
        heapq.heappush(self._by_count, (1, self._tick, key))
        self.used_bytes += num_bytes

    def evict(self) -> tuple[int, float]:
        # every live key has exactly one current tuple in the heap, so this ends before it empties
        while self._by_count:
            _, tick, key = heapq.heappop(self._by_count)
            entry = self._entries.get(key)
            if entry is not None and entry[2] == tick:
                del self._entries[key]
                # reset when empty so float round-off cannot accumulate forever
                self.used_bytes = self.used_bytes - entry[0] if self._entries else 0.0
                return key, entry[0]
        raise RuntimeError("evict() on an empty LFUPolicy")

    def keys(self) -> list[int]:
        return list(self._entries)
