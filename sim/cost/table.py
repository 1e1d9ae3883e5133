"""Step times interpolated from measured tables (e.g. Splitwise ``perf_model.csv``).

Rows are ``(batch_size, prompt_tokens, prefill_ms, decode_step_ms, context_tokens)``: the time to
prefill ``batch_size`` prompts of ``prompt_tokens`` in one step, and the mean decode step time of
``batch_size`` sequences whose context averages ``context_tokens``. Prefill time is interpolated
linearly in total prompt tokens per batch size; decode step time is fitted per batch size as
``base + slope * total_context`` (least squares), which the replica needs for closed-form runs;
between measured batch sizes both are interpolated linearly, and extrapolated from the ends.
"""

from __future__ import annotations

import numpy as np

from sim.cost.base import StepShape
from sim.errors import ConfigError


class TableCostModel:
    def __init__(self, rows: tuple[tuple[float, float, float, float, float], ...],
                 source: str = "table") -> None:
        if len(rows) < 2:
            raise ConfigError(f"cost_model.table={source!r}: needs at least 2 rows, got {len(rows)}")
        data = np.asarray(rows, dtype=float)
        if data.ndim != 2 or data.shape[1] != 5 or not np.all(np.isfinite(data)) or np.any(data < 0):
            raise ConfigError(f"cost_model.table={source!r}: rows must be 5 non-negative numbers "
                              "(batch_size, prompt_tokens, prefill_ms, decode_step_ms, context_tokens)")
        if np.any(data[:, 0] < 1) or np.any(data[:, 1] < 1):
            raise ConfigError(f"cost_model.table={source!r}: batch_size and prompt_tokens must be >= 1 "
                              "in every row")
        self.source = source
        self.batches = np.unique(data[:, 0])
        self._prefill: list[tuple[np.ndarray, np.ndarray]] = []
        decode = []
        for b in self.batches:
            sel = data[data[:, 0] == b]
            tokens = b * sel[:, 1]
            order = np.argsort(tokens)
            self._prefill.append((tokens[order], sel[order, 2] / 1e3))
            context = b * sel[:, 4]
            if np.ptp(context) > 0:
                slope, base = np.polyfit(context, sel[:, 3] / 1e3, 1)
            else:
                slope, base = 0.0, float(sel[:, 3].mean() / 1e3)
            decode.append((max(base, 0.0), max(slope, 0.0)))
        self._decode = np.asarray(decode)
        self._cache: dict[int, tuple[float, float]] = {}

    def _prefill_s(self, batch: int, tokens: float) -> float:
        def at(i: int) -> float:
            xs, ys = self._prefill[i]
            if xs.size == 1:
                return float(ys[0] * tokens / xs[0])
            if tokens > xs[-1]:  # extrapolate with the last segment's slope
                return float(ys[-1] + (tokens - xs[-1]) * (ys[-1] - ys[-2]) / max(xs[-1] - xs[-2], 1e-9))
            return float(np.interp(tokens, xs, ys, left=ys[0] * tokens / xs[0] if xs[0] else ys[0]))
        return self._between_batches(batch, at)

    def _between_batches(self, batch: float, at) -> float:
        b = self.batches
        if b.size == 1:
            return at(0)
        hi = int(np.clip(np.searchsorted(b, batch), 1, b.size - 1))
        lo = hi - 1
        w = (batch - b[lo]) / (b[hi] - b[lo])
        return max(0.0, (1 - w) * at(lo) + w * at(hi))

    def step_time_s(self, shape: StepShape) -> float:
        total = 0.0
        if shape.prefill_tokens:
            total += self._prefill_s(max(shape.num_prefill_seqs, 1), shape.prefill_tokens)
        if shape.num_decode_seqs:
            base, slope = self.decode_coefficients(shape.num_decode_seqs, shape.decode_context_tokens)
            total += base + slope * shape.decode_context_tokens
        return total

    def decode_coefficients(self, num_seqs: int, context_tokens: int) -> tuple[float, float]:
        cached = self._cache.get(num_seqs)
        if cached is None:
            base = self._between_batches(num_seqs, lambda i: self._decode[i, 0])
            slope = self._between_batches(num_seqs, lambda i: self._decode[i, 1])
            cached = self._cache[num_seqs] = (base, slope)
        return cached
