"""Links whose bandwidth is shared fairly by concurrent transfers (processor sharing).

A transfer first waits the link's latency, then joins the active set; while ``n`` transfers are
active each progresses at ``bandwidth / n``. With equal shares a transfer's progress is the link's
*virtual time* ``V`` (bytes served per active transfer), so a transfer of ``b`` bytes that joins at
``V0`` ends when ``V = V0 + b``: a heap of end points answers "who finishes next" in O(log n), and
only the earliest completion is ever scheduled (older schedules are dropped by a version number).
This is the fluid fair-share model used for NIC/PCIe contention in e.g. Mooncake's and
DistServe's analyses: two equal transfers started together each take twice as long.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.engine import PRIORITY_COMPLETION, Engine

_EPS_BYTES = 1e-6


@dataclass(slots=True)
class LinkStats:
    name: str
    bandwidth_bytes_per_s: float
    transfers: int = 0
    bytes_moved: float = 0.0
    busy_s: float = 0.0  # time with at least one active transfer
    transfer_s: float = 0.0  # sum over transfers of (end - start), latency included
    max_concurrent: int = 0


class Link:
    """One shared-bandwidth path (a PCIe/NVLink/RDMA link, a tier's device bandwidth)."""

    __slots__ = ("engine", "name", "bw", "latency_s", "stats", "_transfers", "_seq", "_virtual",
                 "_last_s", "_version", "spans", "max_spans")

    def __init__(self, engine: Engine, name: str, bandwidth_bytes_per_s: float, latency_s: float,
                 stats: LinkStats, spans: list | None = None, max_spans: int = 200_000) -> None:
        self.engine, self.name = engine, name
        self.bw, self.latency_s = float(bandwidth_bytes_per_s), float(latency_s)
        self.stats = stats
        self._transfers: list[tuple[float, int, float, float, Callable | None, tuple]] = []
        self._seq = 0
        self._virtual = 0.0
        self._last_s = 0.0
        self._version = 0
        self.spans = spans
        self.max_spans = max_spans

    @property
    def active(self) -> int:
        return len(self._transfers)

    def transfer(self, num_bytes: float, callback: Callable[..., Any] | None, *args: Any) -> None:
        """Move ``num_bytes``; call ``callback(*args)`` when the last byte arrives (None: a
        background write that only takes bandwidth from others)."""
        self.stats.transfers += 1
        self.stats.bytes_moved += num_bytes
        start = self.engine.now_s
        if self.latency_s > 0:
            self.engine.schedule(start + self.latency_s, self._join, num_bytes, start, callback, args,
                                 priority=PRIORITY_COMPLETION)
        else:
            self._join(num_bytes, start, callback, args)

    def solo_time_s(self, num_bytes: float) -> float:
        """Time of a transfer that has the link to itself."""
        return self.latency_s + num_bytes / self.bw

    # --- processor sharing ------------------------------------------------------------------
    def _advance(self) -> None:
        now = self.engine.now_s
        n = len(self._transfers)
        if n:
            elapsed = now - self._last_s
            self._virtual += elapsed * self.bw / n
            self.stats.busy_s += elapsed
        self._last_s = now

    def _join(self, num_bytes: float, start_s: float, callback, args) -> None:
        self._advance()
        self._seq += 1
        heapq.heappush(self._transfers, (self._virtual + num_bytes, self._seq, start_s,
                                         num_bytes, callback, args))
        if len(self._transfers) > self.stats.max_concurrent:
            self.stats.max_concurrent = len(self._transfers)
        self._reschedule()

    def _reschedule(self) -> None:
        self._version += 1
        if self._transfers:
            remaining = max(0.0, self._transfers[0][0] - self._virtual)
            self.engine.schedule(self.engine.now_s + remaining * len(self._transfers) / self.bw,
                                 self._complete, self._version, priority=PRIORITY_COMPLETION)

    def _complete(self, version: int) -> None:
        if version != self._version:
            return
        self._advance()
        heap = self._transfers
        done = []
        while heap and heap[0][0] <= self._virtual + _EPS_BYTES * max(1.0, heap[0][3]):
            done.append(heapq.heappop(heap))
        self._reschedule()
        now = self.engine.now_s
        for _, _, start_s, _num_bytes, callback, args in done:
            self.stats.transfer_s += now - start_s
            if self.spans is not None and len(self.spans) < self.max_spans:
                self.spans.append((f"link {self.name}/transfers", "transfer", start_s, now - start_s,
                                   1))
            if callback is not None:
                callback(*args)
