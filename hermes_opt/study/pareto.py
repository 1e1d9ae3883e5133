"""Pareto fronts and hypervolume (exact; fronts in reports are small)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def to_minimization(values: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return np.asarray(values, dtype=float).reshape(-1, len(directions)) * signs


def pareto_mask(values: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """True for points no other point dominates (duplicates all stay on the front)."""
    points = to_minimization(values, directions)
    mask = np.ones(len(points), dtype=bool)
    for i, p in enumerate(points):
        dominated = np.all(points <= p, axis=1) & np.any(points < p, axis=1)
        mask[i] = not dominated.any()
    return mask


def _hv_min(points: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume dominated by ``points`` (minimisation) and bounded by ``ref``, by slicing."""
    points = points[np.all(points < ref, axis=1)]
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(ref[0] - points[:, 0].min())
    order = np.argsort(points[:, -1], kind="stable")
    points = points[order]
    volume = 0.0
    for i, p in enumerate(points):
        upper = points[i + 1, -1] if i + 1 < len(points) else ref[-1]
        depth = upper - p[-1]
        if depth > 0:
            volume += depth * _hv_min(points[: i + 1, :-1], ref[:-1])
    return volume


def hypervolume(values: Sequence[Sequence[float]], directions: Sequence[str],
                reference: Sequence[float]) -> float:
    """Volume of objective space dominated by ``values`` up to ``reference`` (in the objectives'
    own units and directions: the reference is a worst-acceptable point)."""
    if len(values) == 0:
        return 0.0
    points = to_minimization(values, directions)
    ref = to_minimization([reference], directions)[0]
    return _hv_min(points, ref)


def reference_point(values: Sequence[Sequence[float]], directions: Sequence[str],
                    margin: float = 0.1) -> list[float]:
    """The worst value of each objective among ``values``, worsened by ``margin`` of its range,
    so every point (including the extremes of the front) adds volume."""
    points = np.asarray(values, dtype=float).reshape(-1, len(directions))
    ref = []
    for k, direction in enumerate(directions):
        col = points[:, k]
        span = float(col.max() - col.min()) or abs(float(col.max())) or 1.0
        ref.append(float(col.min() - margin * span) if direction == "maximize"
                   else float(col.max() + margin * span))
    return ref
