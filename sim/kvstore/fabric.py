"""Transfers that cross several shared resources at once, with max-min fair bandwidth sharing.

A KV fetch from a tier moves bytes over the tier's storage device *and* over the link from that
device to the GPU that reads it, so it is limited by the slower of the two, and both are shared:
four GPUs on one host read one DRAM pool, each over its own PCIe link. The pool's bandwidth is split
between the readers, but a reader whose link is slower (or busy with other fetches) cannot use its
whole split, and the others take up what it leaves. ``sim.network.Link`` models one resource; a
``Fabric`` holds many, and each transfer flows over a *path* of them at the same time.

Fluid model: every active flow moves at a rate, and the rates are the max-min fair allocation (no
flow can go faster without slowing a flow that is no faster), the standard bandwidth-sharing model
of flow-level network simulators. Progressive filling (water-filling) computes it: find the resource
whose remaining capacity split over its unfrozen flows is smallest, freeze those flows at that
share, subtract it from every resource they cross, repeat. With one resource per path this is
processor sharing and gives Link's times. Rates change only when a flow joins (after its latency)
or finishes, so at each such instant every flow's remaining bytes are advanced by rate * elapsed,
the rates are recomputed and only the earliest completion is scheduled; a version number drops
schedules made stale by a later change. Only resources with an active flow take part (a store has
a device and links per copy, most of them idle at any instant), so a recomputation costs
O(busy resources * flows), cheap for the handful of concurrent KV fetches on a host. Ties are
broken by resource id and join order, never by hashing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.engine import PRIORITY_COMPLETION, Engine
from sim.network import LinkStats

_EPS_BYTES = 1e-6  # a flow this close to done (relative to its size, at least 1 byte) is done


class _Flow:
    __slots__ = ("path", "num_bytes", "remaining_bytes", "rate_bytes_per_s", "start_s", "callback",
                 "args", "track")

    def __init__(self, path: tuple[int, ...], num_bytes: float, start_s: float,
                 callback: Callable[..., Any] | None, args: tuple, track: str) -> None:
        self.path, self.num_bytes, self.remaining_bytes = path, num_bytes, num_bytes
        self.rate_bytes_per_s = 0.0
        self.start_s, self.callback, self.args, self.track = start_s, callback, args, track


class Fabric:
    """Shared-bandwidth resources (devices, links); each transfer crosses a path of them at once."""

    __slots__ = ("engine", "spans", "max_spans", "_names", "_bw", "_stats", "_count", "_flows",
                 "_seq", "_last_s", "_version", "_busy")

    def __init__(self, engine: Engine, spans: list | None = None, max_spans: int = 200_000) -> None:
        self.engine = engine
        self.spans, self.max_spans = spans, max_spans
        self._names: list[str] = []
        self._bw: list[float] = []  # bytes/s per resource id
        self._stats: list[LinkStats] = []
        self._count: list[int] = []  # active flows per resource id
        self._busy: set[int] = set()  # resource ids with at least one active flow
        self._flows: dict[int, _Flow] = {}  # join seq -> flow; insertion order is join order
        self._seq = 0
        self._last_s = 0.0
        self._version = 0

    def add_resource(self, name: str, bandwidth_bytes_per_s: float, stats: LinkStats) -> int:
        """Add a resource and return its id. Several resources may share one ``stats`` (copies of
        one tier): their counters are summed (``max_concurrent`` is the max over the copies)."""
        bw = float(bandwidth_bytes_per_s)
        if not bw > 0:
            raise ValueError(f"resource {name!r}: bandwidth must be > 0, got {bandwidth_bytes_per_s}")
        self._names.append(name)
        self._bw.append(bw)
        self._stats.append(stats)
        self._count.append(0)
        return len(self._bw) - 1

    def transfer(self, path: tuple[int, ...], latency_s: float, num_bytes: float,
                 callback: Callable[..., Any] | None, *args: Any, label: str = "") -> None:
        """Wait ``latency_s``, then move ``num_bytes`` over every resource of ``path`` at once; call
        ``callback(*args)`` when the last byte arrives (None: a background write that only takes
        bandwidth from others). ``label`` names the span track (default: the last resource)."""
        path = tuple(dict.fromkeys(path))  # a resource counts once per flow
        if not path:
            raise ValueError("transfer: empty path")
        if num_bytes < 0 or latency_s < 0:
            raise ValueError(f"transfer: negative bytes {num_bytes} or latency {latency_s}")
        for r in path:
            stats = self._stats[r]
            stats.transfers += 1
            stats.bytes_moved += num_bytes
        start = self.engine.now_s
        flow = _Flow(path, float(num_bytes), start, callback, args,
                     f"link {label or self._names[path[-1]]}/transfers")
        if latency_s > 0:
            self.engine.schedule(start + latency_s, self._join, flow, priority=PRIORITY_COMPLETION)
        else:
            self._join(flow)

    def solo_time_s(self, path: tuple[int, ...], latency_s: float, num_bytes: float) -> float:
        """Time of a transfer that has the fabric to itself."""
        return latency_s + num_bytes / min(self._bw[r] for r in path)

    def active(self) -> int:
        """Flows currently moving bytes (past their latency, not finished)."""
        return len(self._flows)

    # --- max-min fair sharing ----------------------------------------------------------------
    def _advance(self) -> None:
        now = self.engine.now_s
        elapsed = now - self._last_s
        if elapsed > 0 and self._flows:
            for flow in self._flows.values():
                flow.remaining_bytes -= flow.rate_bytes_per_s * elapsed
            for r in self._busy:
                self._stats[r].busy_s += elapsed
        self._last_s = now

    def _join(self, flow: _Flow) -> None:
        self._advance()
        self._seq += 1
        self._flows[self._seq] = flow
        for r in flow.path:
            self._count[r] += 1
            self._busy.add(r)
            if self._count[r] > self._stats[r].max_concurrent:
                self._stats[r].max_concurrent = self._count[r]
        self._reschedule()

    def _fill(self) -> None:
        """Progressive filling: set every active flow's max-min fair rate."""
        busy = sorted(self._busy)  # lowest id wins a tie: deterministic
        cap = {r: self._bw[r] for r in busy}
        unfrozen_count = {r: self._count[r] for r in busy}
        unfrozen = list(self._flows.values())
        while unfrozen:
            bottleneck, share = -1, float("inf")
            for r in busy:
                n = unfrozen_count[r]
                if n and cap[r] / n < share:
                    bottleneck, share = r, cap[r] / n
            share = max(share, 0.0)
            rest = []
            for flow in unfrozen:
                if bottleneck in flow.path:
                    flow.rate_bytes_per_s = share
                    for r in flow.path:
                        cap[r] -= share
                        unfrozen_count[r] -= 1
                else:
                    rest.append(flow)
            unfrozen = rest

    def _reschedule(self) -> None:
        self._version += 1
        if not self._flows:
            return
        self._fill()
        first_seq, first_s = 0, float("inf")
        for seq, flow in self._flows.items():
            rate = flow.rate_bytes_per_s
            left_s = max(0.0, flow.remaining_bytes) / rate if rate > 0 else float("inf")
            if left_s < first_s:
                first_seq, first_s = seq, left_s
        self.engine.schedule(self.engine.now_s + first_s, self._complete, self._version, first_seq,
                             priority=PRIORITY_COMPLETION)

    def _complete(self, version: int, first_seq: int) -> None:
        if version != self._version:
            return
        self._advance()
        now = self.engine.now_s
        # the flow this event was scheduled for is done even if rounding left it a few bytes short
        done_seqs = [seq for seq, flow in self._flows.items()
                     if seq == first_seq
                     or flow.remaining_bytes <= _EPS_BYTES * max(1.0, flow.num_bytes)]
        done = [self._flows.pop(seq) for seq in done_seqs]
        for flow in done:
            for r in flow.path:
                self._count[r] -= 1
                if not self._count[r]:
                    self._busy.discard(r)
                self._stats[r].transfer_s += now - flow.start_s
        self._reschedule()
        for flow in done:
            if self.spans is not None and len(self.spans) < self.max_spans:
                self.spans.append((flow.track, "transfer", flow.start_s, now - flow.start_s, 1))
            if flow.callback is not None:
                flow.callback(*flow.args)
