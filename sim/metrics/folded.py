"""Streaming state for runs too long to keep one row per request (``collector.REQUEST_EXACT_MAX``).

Past the threshold the collector hands its request columns, rejected arrivals and stage visits
here a buffer at a time and empties them, so memory stays flat however many requests run:

* exact integer counters and sums per request type (completed, rejected, prompt and output
  tokens, SLO-meeting requests and their output tokens), the run's first arrival and last finish;
* ``RelativeSketch`` per type for TTFT, TPOT, E2E and TTFAT (relative accuracy ``alpha``; means
  from exact sums, summed a buffer at a time in completion order, so deterministic), and per stage
  visit code for queue, service and total time;
* ``TimeBins`` of arrival and of finish times for the steady-state window: linear bins from t = 0
  that double their width when a time falls past ``MAX_BINS`` bins, each holding integer sums and
  its own min and max time. The window's edges are read from them to within one bin, and the
  requests and tokens in the window to within one bin's worth at each edge (a partial edge bin is
  counted in proportion to its overlap, as if its times were spread evenly).

The summary built from this state has the same fields; ``summary["folded"]`` says so and states
the bounds (docs/performance.md "Memory model").
"""

from __future__ import annotations

import math

import numpy as np

from sim.metrics.sketch import DEFAULT_ALPHA, RelativeSketch
from sim.metrics.stability import fill_time_s

MAX_BINS = 1 << 15
FIRST_BIN_WIDTH_S = 1e-3


class TimeBins:
    """Integer sums of ``channels`` weights per time bin, with each bin's min and max time."""

    __slots__ = ("width_s", "sums", "lo", "hi")

    def __init__(self, channels: int) -> None:
        self.width_s = FIRST_BIN_WIDTH_S
        self.sums = np.zeros((channels, 0), dtype=np.int64)
        self.lo = np.zeros(0)
        self.hi = np.zeros(0)

    def _double(self) -> None:
        """Halve the resolution: merge bins pairwise (exact, sums are integers; doubling a width
        is exact in binary, so ``floor(t / 2w) == floor(t / w) // 2``)."""
        n = self.lo.size + (self.lo.size & 1)
        pad = n - self.lo.size
        sums = np.pad(self.sums, ((0, 0), (0, pad)))
        lo = np.pad(self.lo, (0, pad), constant_values=math.inf)
        hi = np.pad(self.hi, (0, pad), constant_values=-math.inf)
        self.sums = sums.reshape(sums.shape[0], -1, 2).sum(axis=2)
        self.lo, self.hi = lo.reshape(-1, 2).min(axis=1), hi.reshape(-1, 2).max(axis=1)
        self.width_s *= 2

    def add(self, times_s: np.ndarray, weights: np.ndarray) -> None:
        """``weights``: integers, shape (channels, len(times_s))."""
        if times_s.size == 0:
            return
        while True:
            index = np.floor(times_s / self.width_s).astype(np.int64)
            top = int(index.max())
            if top < MAX_BINS:
                break
            self._double()
        if top >= self.lo.size:
            grow = top + 1 - self.lo.size
            self.sums = np.pad(self.sums, ((0, 0), (0, grow)))
            self.lo = np.pad(self.lo, (0, grow), constant_values=math.inf)
            self.hi = np.pad(self.hi, (0, grow), constant_values=-math.inf)
        for c in range(self.sums.shape[0]):
            self.sums[c] += np.bincount(index, weights=weights[c],
                                        minlength=self.lo.size).astype(np.int64)
        np.minimum.at(self.lo, index, times_s)
        np.maximum.at(self.hi, index, times_s)

    def quantile(self, q: float, channel: int = 0) -> float:
        """np.quantile's linear rule over the binned times, reading ranks inside a bin as evenly
        spread between its min and max: exact when a bin holds one distinct time, else within
        the bin's span (at most its width)."""
        counts = self.sums[channel]
        cum = np.cumsum(counts)
        pos = q * (int(cum[-1]) - 1)
        b = int(np.searchsorted(cum, pos, side="right"))
        b = min(b, counts.size - 1)
        c = int(counts[b])
        rank = pos - (int(cum[b]) - c)
        lo, hi = float(self.lo[b]), float(self.hi[b])
        if rank > c - 1:  # between this bin's last time and the next occupied bin's first:
            # both are kept exactly, so this is np.quantile's own interpolation
            later = np.nonzero(counts[b + 1:])[0]
            if later.size:
                nxt = float(self.lo[b + 1 + int(later[0])])
                return hi + (nxt - hi) * (rank - (c - 1))
            return hi
        return lo if c <= 1 or hi <= lo else lo + (hi - lo) * rank / (c - 1)

    def within(self, lo_s: float, hi_s: float) -> np.ndarray:
        """Per channel, the sum over times in [lo_s, hi_s] (partial bins pro rata)."""
        blo, bhi = self.lo, self.hi
        full = (blo >= lo_s) & (bhi <= hi_s)
        span = bhi - blo
        overlap = np.clip(np.minimum(bhi, hi_s) - np.maximum(blo, lo_s), 0.0, None)
        share = np.where(full, 1.0, np.where(span > 0, overlap / np.where(span > 0, span, 1.0),
                                             0.0))
        share[~np.isfinite(blo)] = 0.0
        return (self.sums * share).sum(axis=1)


class FoldedRequests:
    """Per request type: exact counters and sums, sketches of the latencies; time bins for the
    steady window. Channels of ``arrivals``: every finished request (completed or rejected),
    SLO-meeting, output tokens, SLO-meeting output tokens; of ``finishes``: completed, SLO-meeting,
    output, SLO-meeting output; ``departures``: every request when it left (stability)."""

    def __init__(self, slos: list, alpha: float = DEFAULT_ALPHA) -> None:
        self.slos = slos  # per type (workload order): its SLOSpec
        self.alpha = alpha
        n = len(slos)
        self.completed = [0] * n
        self.prompt_tokens = [0] * n
        self.output_tokens = [0] * n
        self.ok = [0] * n
        self.ok_output_tokens = [0] * n
        self.sketches = {name: [RelativeSketch(alpha) for _ in range(n)]
                         for name in ("ttft", "tpot", "e2e", "ttfat")}
        self.first_arrival_s = math.inf
        self.last_finish_s = -math.inf
        self.rejected = 0
        self.arrivals = TimeBins(4)
        self.finishes = TimeBins(4)
        # completed requests at their finish, rejected ones at their arrival (they leave when
        # refused): the backlog for sim.metrics.stability
        self.departures = TimeBins(1)
        self.warmup_e2e_s: float | None = None

    def note_warmup(self, arrival: np.ndarray, finish: np.ndarray) -> None:
        """The fill time for sim.metrics.stability, from the first fold's rows: they are the
        first REQUEST_EXACT_MAX requests to finish, so their earliest tenth by arrival stands
        for the warm-up requests (the exact summary uses those before the steady window)."""
        order = np.sort(arrival)
        self.warmup_e2e_s = fill_time_s(arrival, finish, float(order[max(0, order.size // 10)]))

    def add(self, arrival, first, finish, last, prompt, output, answer, kind) -> None:
        """A buffer of finished requests (``collector.RequestColumns`` as numpy arrays); the
        same formulas as ``summary.summarize``."""
        if arrival.size == 0:
            return
        ttft, e2e = first - arrival, finish - arrival
        multi = output > 1
        tpot_all = np.where(multi, (last - first) / np.maximum(output - 1, 1), 0.0)
        ok = np.ones(arrival.size, dtype=bool)
        for i, slo in enumerate(self.slos):
            mine = kind == i
            for name, values in (("ttft_ms", ttft), ("tpot_ms", tpot_all), ("e2e_ms", e2e)):
                bound = getattr(slo, name)
                if bound is not None:
                    ok[mine] &= values[mine] * 1e3 <= bound
        for i in range(len(self.slos)):
            mine = kind == i
            if not mine.any():
                continue
            self.completed[i] += int(mine.sum())
            self.prompt_tokens[i] += int(prompt[mine].sum())
            self.output_tokens[i] += int(output[mine].sum())
            self.ok[i] += int(ok[mine].sum())
            self.ok_output_tokens[i] += int(output[mine & ok].sum())
            sk = self.sketches
            sk["ttft"][i].add(ttft[mine])
            sk["tpot"][i].add(tpot_all[mine & multi])
            sk["e2e"][i].add(e2e[mine])
            sk["ttfat"][i].add(answer[mine] - arrival[mine])
        self.first_arrival_s = min(self.first_arrival_s, float(arrival.min()))
        self.last_finish_s = max(self.last_finish_s, float(finish.max()))
        out = output.astype(np.int64)
        good = ok.astype(np.int64)
        self.arrivals.add(arrival, np.stack([np.ones_like(out), good, out, out * good]))
        self.finishes.add(finish, np.stack([np.ones_like(out), good, out, out * good]))
        self.departures.add(finish, np.ones((1, finish.size), dtype=np.int64))

    def add_rejected(self, arrival: np.ndarray) -> None:
        self.rejected += arrival.size
        zeros = np.zeros(arrival.size, dtype=np.int64)
        self.arrivals.add(arrival, np.stack([np.ones_like(zeros), zeros, zeros, zeros]))
        self.departures.add(arrival, np.ones((1, arrival.size), dtype=np.int64))

    def merged(self, name: str) -> RelativeSketch:
        """The sketch of ``name`` over every type."""
        out = RelativeSketch(self.alpha)
        for sketch in self.sketches[name]:
            out.merge(sketch)
        return out


class FoldedVisits:
    """Per stage-visit code: count, exact sums of queue and service seconds, and sketches of
    queue, service and total (queue + service) seconds."""

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        self.alpha = alpha
        self.count: dict[int, int] = {}
        self.queue_s: dict[int, float] = {}
        self.service_s: dict[int, float] = {}
        self.sketches: dict[int, tuple[RelativeSketch, RelativeSketch, RelativeSketch]] = {}

    def add(self, codes: np.ndarray, times: np.ndarray) -> None:
        """``times``: rows of (enqueue_s, start_s, end_s), one per code."""
        queue, service = times[:, 1] - times[:, 0], times[:, 2] - times[:, 1]
        for code in np.unique(codes).tolist():  # sorted: the same order every run
            sel = codes == code
            q, s = queue[sel], service[sel]
            self.count[code] = self.count.get(code, 0) + int(sel.sum())
            self.queue_s[code] = self.queue_s.get(code, 0.0) + float(q.sum())
            self.service_s[code] = self.service_s.get(code, 0.0) + float(s.sum())
            sk = self.sketches.setdefault(code, tuple(RelativeSketch(self.alpha)
                                                      for _ in range(3)))
            sk[0].add(q)
            sk[1].add(s)
            sk[2].add(q + s)
