"""Error statistics reported everywhere (profiles, validation report, regression tests)."""

from __future__ import annotations

import numpy as np


def summary(errors_pct: list[float] | np.ndarray) -> dict[str, float | int]:
    """Absolute percentage errors -> {n, mean, median, p90, max} (NaNs are not counted)."""
    e = np.asarray(errors_pct, dtype=float)
    e = e[np.isfinite(e)]
    if e.size == 0:
        return {"n": 0}
    return {"n": int(e.size), "mean": round(float(e.mean()), 2), "median": round(float(np.median(e)), 2),
            "p90": round(float(np.percentile(e, 90)), 2), "max": round(float(e.max()), 2)}
