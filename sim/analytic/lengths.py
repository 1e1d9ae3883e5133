"""Moments and quantiles of a token-length distribution, from a fixed set of quantile points.

``LengthSpec.sample`` rounds and clips; the same rounding and clipping applied to the
distribution's quantiles at 256 evenly spaced probabilities gives the mean, the second moment and
the upper quantiles without drawing a sample (deterministic, cached per spec).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from sim.workload.spec import LengthKind, LengthSpec

POINTS = 256
_PROBS = (np.arange(POINTS) + 0.5) / POINTS
_Z = np.array([NormalDist().inv_cdf(float(p)) for p in _PROBS])


@dataclass(frozen=True, slots=True)
class LengthStats:
    values: np.ndarray  # POINTS equally likely lengths, ascending
    mean: float
    second_moment: float

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.values, q))


@lru_cache(maxsize=256)
def length_stats(spec: LengthSpec) -> LengthStats | None:
    """None for trace lengths (their distribution is in the trace, not the spec)."""
    if spec.kind is LengthKind.TRACE:
        return None
    if spec.kind is LengthKind.FIXED:
        values = np.full(POINTS, spec.mean)
    elif spec.kind is LengthKind.NORMAL:
        values = spec.mean + spec.std * _Z
    elif spec.kind is LengthKind.LOGNORMAL:
        sigma2 = math.log1p((spec.std / spec.mean) ** 2)
        values = np.exp(math.log(spec.mean) - sigma2 / 2 + math.sqrt(sigma2) * _Z)
    else:  # uniform of this std
        half = spec.std * math.sqrt(3.0)
        values = spec.mean - half + 2 * half * _PROBS
    values = np.clip(np.rint(values), spec.min_tokens, spec.max_tokens).astype(float)
    values.sort()
    return LengthStats(values=values, mean=float(values.mean()),
                       second_moment=float((values ** 2).mean()))
