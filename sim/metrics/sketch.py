"""A relative-accuracy quantile sketch (after DDSketch, Masson et al., VLDB 2019), for latency
distributions too large to keep exactly.

Positive values fall in logarithmic buckets ``(gamma^(i-1), gamma^i]`` with
``gamma = (1 + alpha) / (1 - alpha)``; a bucket reports ``2 gamma^i / (gamma + 1)``, which is within
a factor ``1 +- alpha`` of every value in it. A quantile is answered with the same rank rule as the
exact weighted percentile of ``sim.metrics.summary.weighted_stats_ms`` (the first value whose
cumulative weight reaches ``q`` of the total), so the answer is within relative error ``alpha`` of
the exact one. Values <= ``MIN_VALUE`` (zero gaps) share one bucket that reports 0. The minimum and
maximum are kept exactly and bound every answer; the weighted sum (the mean) is exact up to
floating-point rounding. Memory: one count per occupied bucket, about
``log(max / min) / log(gamma)``, i.e. ~2,300 buckets for 1 us..1,000 s at ``alpha = 0.005``.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_ALPHA = 0.005  # 0.5% relative accuracy
MIN_VALUE = 1e-12  # seconds; at or below: the zero bucket


class RelativeSketch:
    """Weighted values -> quantiles within relative error ``alpha`` (plus exact count, sum,
    min and max)."""

    __slots__ = ("alpha", "gamma", "_log_gamma", "_offset", "_counts", "zero", "total", "sum",
                 "min", "max")

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha={alpha}: must be in (0, 1)")
        self.alpha = alpha
        self.gamma = (1 + alpha) / (1 - alpha)
        self._log_gamma = math.log(self.gamma)
        self._offset = 0  # bucket index of _counts[0]
        self._counts = np.zeros(0)
        self.zero = 0.0  # weight of values <= MIN_VALUE
        self.total = 0.0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, values: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Fold ``values`` (seconds, >= 0), each with its weight (1 if none)."""
        values = np.asarray(values, dtype=float)
        if values.size == 0:
            return
        weights = np.ones(values.size) if weights is None else np.asarray(weights, dtype=float)
        self.total += float(weights.sum())
        self.sum += float((values * weights).sum())
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        small = values <= MIN_VALUE
        if small.any():
            self.zero += float(weights[small].sum())
            values, weights = values[~small], weights[~small]
            if values.size == 0:
                return
        index = np.ceil(np.log(values) / self._log_gamma).astype(np.int64)
        lo, hi = int(index.min()), int(index.max())
        if self._counts.size == 0:
            self._offset = lo
        new_lo = min(lo, self._offset)
        new_hi = max(hi, self._offset + self._counts.size - 1)
        if new_lo != self._offset or new_hi - new_lo + 1 != self._counts.size:
            grown = np.zeros(new_hi - new_lo + 1)
            start = self._offset - new_lo
            grown[start:start + self._counts.size] = self._counts
            self._counts, self._offset = grown, new_lo
        self._counts += np.bincount(index - self._offset, weights=weights,
                                    minlength=self._counts.size)

    def merge(self, other: RelativeSketch) -> None:
        """Fold another sketch of the same ``alpha`` into this one (bucket counts add)."""
        if other.alpha != self.alpha:
            raise ValueError(f"alpha {other.alpha} != {self.alpha}: sketches do not merge")
        self.total += other.total
        self.sum += other.sum
        self.zero += other.zero
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        if other._counts.size == 0:
            return
        if self._counts.size == 0:
            self._counts, self._offset = other._counts.copy(), other._offset
            return
        lo = min(self._offset, other._offset)
        hi = max(self._offset + self._counts.size, other._offset + other._counts.size)
        grown = np.zeros(hi - lo)
        grown[self._offset - lo:self._offset - lo + self._counts.size] += self._counts
        grown[other._offset - lo:other._offset - lo + other._counts.size] += other._counts
        self._counts, self._offset = grown, lo

    def add_runs(self, runs: np.ndarray, max_values: int = 1 << 18) -> None:
        """Fold decode-run records ``(first_s, growth_s, steps, batch)`` (rows of ``runs``): each
        stands for ``steps`` values ``first + k * growth``, each of weight ``batch``. Expanded a
        slice at a time, so at most about ``max_values`` values exist at once (a dozen temporary
        arrays of that length: 1 << 18 keeps them near 25 MB; 1 << 22 made the first fold of a
        long run its peak of memory)."""
        runs = np.asarray(runs, dtype=float).reshape(-1, 4)
        steps = runs[:, 2].astype(np.int64)
        ends = np.cumsum(steps)
        start = 0
        while start < runs.shape[0]:
            done = int(ends[start - 1]) if start else 0
            stop = max(start + 1, int(np.searchsorted(ends, done + max_values, side="right")))
            part, n = runs[start:stop], steps[start:stop]
            offsets = np.repeat(np.cumsum(n) - n, n)
            k = np.arange(int(n.sum())) - offsets
            self.add(np.repeat(part[:, 0], n) + np.repeat(part[:, 1], n) * k,
                     np.repeat(part[:, 3], n))
            start = stop

    def quantile(self, q: float) -> float:
        """The value at quantile ``q`` in [0, 1] (nan when empty), within relative error alpha."""
        if self.total <= 0:
            return math.nan
        target = q * self.total
        if self.zero and target <= self.zero:
            return 0.0
        cum = np.cumsum(self._counts) + self.zero
        i = min(int(np.searchsorted(cum, target, side="left")), self._counts.size - 1)
        value = 2 * self.gamma ** (i + self._offset) / (self.gamma + 1)
        return min(max(value, self.min), self.max)

    def stats_ms(self, percentiles: tuple[int, ...]) -> dict[str, float]:
        """``{mean, p<p>...}`` in milliseconds, like ``sim.metrics.summary.weighted_stats_ms``."""
        if self.total <= 0:
            return {"mean": math.nan, **{f"p{p}": math.nan for p in percentiles}}
        return {"mean": self.sum / self.total * 1e3,
                **{f"p{p}": self.quantile(p / 100) * 1e3 for p in percentiles}}

    @property
    def num_buckets(self) -> int:
        return int(self._counts.size)
