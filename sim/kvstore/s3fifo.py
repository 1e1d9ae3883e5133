"""S3-FIFO eviction over byte-sized entries (Yang et al., "FIFO queues are all you need for cache
eviction", SOSP 2023).

Why: most prefixes are used once (a single conversation turn, a one-off document), and LRU lets
each of them push a hot shared prefix (a system prompt) one slot closer to eviction. S3-FIFO puts
new keys in a small FIFO ``S`` (target ``small_fraction`` of the capacity bytes) and evicts them
from there quickly unless they were hit while in ``S``; hit keys move to the main FIFO ``M``,
which evicts with a CLOCK-like second chance (a count, capped at 3, is spent one per pass).

- freq: hits since the key entered its queue (0 on insert and on moving ``S`` -> ``M``), capped
  at 3. A key leaves ``S`` for ``M`` if it was hit at least once while in ``S`` (a small-to-main
  threshold of one hit, as in the authors' illustration of the algorithm).
- ghost ``G``: keys only (no bytes are held), of keys evicted from ``S``. Inserting a ghost key
  puts it straight into ``M``: it was evicted too early once. The paper sizes ``G`` like ``M`` in
  entries; here entries differ in bytes and ``M`` starts empty, so ``G`` keeps at most as many
  keys as are resident (at least 1), oldest dropped first: the same as ``M`` up to ``S``'s share.
- Moving a key ``S`` -> ``M`` is not an eviction; ``evict`` returns exactly one resident victim.

All operations are O(1) amortised (``OrderedDict`` queues, head = oldest).
"""

from __future__ import annotations

from collections import OrderedDict

from sim.errors import require_fraction, require_non_negative

_MAX_FREQ = 3


class S3FIFOPolicy:
    """Byte-sized S3-FIFO: small FIFO, main FIFO with bounded second chances, ghost FIFO of keys."""

    __slots__ = (
        "_freq",
        "_ghost",
        "_main",
        "_small",
        "_small_bytes",
        "small_target_bytes",
        "used_bytes",
    )

    def __init__(self, capacity_bytes: float, small_fraction: float = 0.1) -> None:
        require_non_negative("capacity_bytes", capacity_bytes)
        require_fraction("small_fraction", small_fraction)
        self.used_bytes = 0.0
        self.small_target_bytes = small_fraction * capacity_bytes
        self._small: OrderedDict[int, float] = OrderedDict()  # key -> bytes, oldest first
        self._main: OrderedDict[int, float] = OrderedDict()
        self._freq: dict[int, int] = {}  # resident key -> hits since entering its queue
        self._ghost: OrderedDict[int, None] = OrderedDict()  # recently evicted from S, oldest first
        self._small_bytes = 0.0

    @property
    def resident(self) -> dict:
        """The dict keyed by the resident keys (never replaced): ``key in policy`` without a
        method call, for the store's lookups."""
        return self._freq

    def __contains__(self, key: int) -> bool:
        return key in self._freq

    def __len__(self) -> int:
        return len(self._freq)

    def size_of(self, key: int) -> float:
        num_bytes = self._small.get(key)
        return self._main[key] if num_bytes is None else num_bytes

    def in_main(self, key: int) -> bool:
        """Whether ``key`` is resident in the main queue (diagnostics and tests)."""
        return key in self._main

    def touch(self, key: int) -> None:
        freq = self._freq[key]
        if freq < _MAX_FREQ:
            self._freq[key] = freq + 1

    def insert(self, key: int, num_bytes: float) -> None:
        if key in self._freq:
            raise ValueError(f"key {key} is already resident")
        if key in self._ghost:
            del self._ghost[key]
            self._main[key] = num_bytes
        else:
            self._small[key] = num_bytes
            self._small_bytes += num_bytes
        self._freq[key] = 0
        self.used_bytes += num_bytes

    def evict(self) -> tuple[int, float]:
        if not self._freq:
            raise RuntimeError("evict() on an empty S3FIFOPolicy")
        # Each pass either returns, moves a key out of S (S only shrinks here) or spends one unit
        # of a main key's freq (freq only falls here), so this bound is never reached.
        for _ in range(len(self._small) + (_MAX_FREQ + 2) * len(self._freq) + 1):
            if self._small and (self._small_bytes > self.small_target_bytes or not self._main):
                key, num_bytes = self._small.popitem(last=False)
                self._small_bytes = self._small_bytes - num_bytes if self._small else 0.0
                if self._freq[key] > 0:  # hit while in S: promote, not an eviction
                    self._main[key] = num_bytes
                    self._freq[key] = 0
                    continue
                self._remember(key)
            else:
                key, num_bytes = self._main.popitem(last=False)
                freq = self._freq[key]
                if freq > 0:  # second chance: spend one hit, go round again
                    self._freq[key] = freq - 1
                    self._main[key] = num_bytes
                    continue
            del self._freq[key]
            # reset when empty so float round-off cannot accumulate forever
            self.used_bytes = self.used_bytes - num_bytes if self._freq else 0.0
            return key, num_bytes
        raise AssertionError("unreachable: S3-FIFO eviction did not terminate")

    def keys(self) -> list[int]:
        return [*self._small, *self._main]

    def _remember(self, key: int) -> None:
        """Put ``key`` (just evicted from S) in the ghost queue, which keeps <= len(self) keys."""
        self._ghost[key] = None
        # len(self._freq) still counts the victim, so the bound is at least 1
        while len(self._ghost) > len(self._freq):
            self._ghost.popitem(last=False)
