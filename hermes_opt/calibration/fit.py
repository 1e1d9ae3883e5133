"""Fit ``RooflineParams`` to measurements: bounded least squares on log step-time ratios.

Relative (log) residuals so a 40 ms decode step and a 7 s prefill weigh the same; a soft-L1 loss
so a few broken measurements cannot drag the fit. Only the parameters a data set can identify are
free (``FREE_PARAMS``); the rest keep their starting values and the profile says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, minimize

from hermes_opt.calibration.observations import StepObservation, ape
from hermes_opt.calibration.predict import predict
from sim.cost.roofline import RooflineParams
from sim.random_streams import stream

LOSS, F_SCALE = "soft_l1", 0.05  # robust: a few broken measurements cannot drag the fit
FRACTIONS = {"compute_efficiency", "memory_efficiency", "attention_efficiency", "comm_efficiency",
             "decode_attention_efficiency", "comm_large_message_efficiency"}
# Upper bounds keep the search physical (seconds; tokens; bytes).
UPPER = {"allreduce_latency_s": 1e-3, "allreduce_latency_per_peer_s": 1e-3, "step_overhead_s": 0.2,
         "layer_overhead_s": 5e-3, "seq_overhead_s": 0.05, "prefill_seq_overhead_s": 0.2,
         "compute_half_tokens": 4096.0, "roofline_sharpness": 32.0, "comm_large_message_bytes": 1e9,
         "attention_half_context_tokens": 65536.0, "prefill_step_overhead_s": 0.2}

# What each kind of data identifies.
FREE_PARAMS = {
    "step": ("compute_efficiency", "compute_half_tokens", "memory_efficiency", "roofline_sharpness",
             "attention_efficiency", "comm_efficiency", "allreduce_latency_s",
             "allreduce_latency_per_peer_s", "comm_large_message_bytes",
             "comm_large_message_efficiency", "step_overhead_s", "layer_overhead_s", "seq_overhead_s",
             "prefill_seq_overhead_s", "decode_attention_efficiency", "attention_half_context_tokens",
             "prefill_step_overhead_s"),
    "operator": ("compute_efficiency", "compute_half_tokens", "memory_efficiency", "layer_overhead_s",
                 "roofline_sharpness"),
    "collective": ("comm_efficiency", "allreduce_latency_s", "allreduce_latency_per_peer_s"),
    "serving": ("compute_efficiency", "memory_efficiency", "attention_efficiency",
                "decode_attention_efficiency", "step_overhead_s", "seq_overhead_s",
                "prefill_seq_overhead_s"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FitResult:
    params: RooflineParams
    free: tuple[str, ...]
    num_rows: int
    median_ape: float
    p90_ape: float
    iterations: int


def _bounds(name: str) -> tuple[float, float]:
    if name in FRACTIONS:
        return (0.01, 1.0)
    if name == "roofline_sharpness":
        return (1.0, UPPER[name])  # 1 = compute + memory; large = the sharp max
    return (0.0, UPPER[name])


def _start(params: RooflineParams, free: tuple[str, ...]) -> np.ndarray:
    x0 = []
    for name in free:
        lo, hi = _bounds(name)
        value = getattr(params, name)
        if name == "decode_attention_efficiency" and value == 0:
            value = params.memory_efficiency
        if name == "comm_large_message_efficiency" and value == 0:
            value = params.comm_efficiency
        if name == "comm_large_message_bytes" and value == 0:
            value = 32e6
        if name == "roofline_sharpness" and value == 0:
            value = 4.0
        x0.append(float(np.clip(value, lo + 1e-9 * (hi - lo), hi - 1e-6 * (hi - lo))))
    return np.asarray(x0)


def with_values(params: RooflineParams, free: tuple[str, ...], x: np.ndarray) -> RooflineParams:
    return dataclasses.replace(params, **{n: float(v) for n, v in zip(free, x)})


def distinct_shapes(rows: list[StepObservation]) -> list[StepObservation]:
    """One row per measured step shape (the median of its repeats). Splitwise measures the prefill
    of one configuration once per decode length, so one prompt shape can appear seven times; as
    seven rows it would outweigh every other shape in the fit."""
    groups: dict[tuple, list[StepObservation]] = {}
    for o in rows:
        shape = o.prompt_tokens if o.phase == "prefill" else o.context_tokens
        groups.setdefault((o.model, o.hardware, o.variant, o.tp, o.phase, o.batch_size, shape),
                          []).append(o)
    return [g[0] if len(g) == 1 else
            dataclasses.replace(g[0], measured_s=float(np.median([o.measured_s for o in g])))
            for g in groups.values()]


def fit_rows(observations: list, kind: str, start: RooflineParams | None = None,
             free: tuple[str, ...] | None = None, num_starts: int = 6) -> FitResult:
    """Least-squares fit of the ``kind`` parameters to step/operator/collective rows."""
    start = start or RooflineParams()
    free = free or FREE_PARAMS[kind]
    observations = distinct_shapes(observations) if kind == "step" else observations
    measured = np.asarray([o.measured_s for o in observations])
    log_measured = np.log(measured)

    def residuals(x: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(predict(observations, with_values(start, free, x)), 1e-12)) - log_measured

    lo, hi = zip(*(_bounds(n) for n in free))
    best = None
    # Several starts (the given values, then deterministic random ones) guard against poor local
    # minima: the model is a max() of terms, so the loss surface has kinks and plateaus.
    rng = stream(0, f"calibration.fit.{kind}")
    starts = [_start(start, free)]
    for _ in range(num_starts - 1):
        starts.append(np.asarray([_random_value(n, rng) for n in free]))
    for x0 in starts:
        sol = least_squares(residuals, x0, bounds=(lo, hi), loss=LOSS, f_scale=F_SCALE,
                            x_scale="jac", max_nfev=400)
        if best is None or sol.cost < best.cost:
            best = sol
    params = with_values(start, free, best.x)
    errors = ape(predict(observations, params), measured)
    return FitResult(params=params, free=free, num_rows=len(observations),
                     median_ape=float(np.median(errors)), p90_ape=float(np.percentile(errors, 90)),
                     iterations=int(best.nfev))


def shrink_toward(fitted: RooflineParams, prior: RooflineParams, free: tuple[str, ...],
                  alpha: float) -> RooflineParams:
    """``prior + alpha * (fitted - prior)`` in each free parameter (alpha 1 = the fit, 0 = the
    prior, i.e. the uncalibrated roofline). The roofline sharpness is interpolated in 1/k (0 = the
    sharp max, the default), so the blend between compute and memory limits also moves halfway.

    Why: on one model size a fit trades its terms off against each other (efficiency vs per-layer
    overhead vs blend) in a way another size does not share; pulling the terms part of the way
    back toward the physically motivated defaults keeps the well-identified part of the fit and
    carries over across sizes (docs/validation.md, "Transfer across model sizes")."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha}: must be in [0, 1]")
    values = {}
    for name in free:
        x0, x1 = float(getattr(prior, name)), float(getattr(fitted, name))
        if name == "roofline_sharpness":
            inv = (1.0 - alpha) * (1.0 / x0 if x0 else 0.0) + alpha * (1.0 / x1 if x1 else 0.0)
            values[name] = 0.0 if inv <= 1.0 / UPPER[name] else min(1.0 / inv, UPPER[name])
        else:
            values[name] = x0 + alpha * (x1 - x0)
    return dataclasses.replace(fitted, **values)


SHRINK_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def choose_shrink(observations: list, kind: str, start: RooflineParams,
                  size_of: Callable[[object], str]) -> tuple[float, dict[float, float]]:
    """Leave-one-model-size-out choice of the shrinkage: for each model size in the rows, fit on
    the other sizes and score every alpha of ``SHRINK_GRID`` on the held-out size (median APE);
    the alpha with the lowest mean over held-out sizes wins (ties: the larger alpha). Needs rows
    of at least two sizes."""
    sizes = sorted({size_of(o) for o in observations})
    if len(sizes) < 2:
        raise ValueError("choose_shrink needs rows of at least two model sizes")
    scores: dict[float, list[float]] = {a: [] for a in SHRINK_GRID}
    for size in sizes:
        train = [o for o in observations if size_of(o) != size]
        test = [o for o in observations if size_of(o) == size]
        result = fit_rows(train, kind, start=start, num_starts=3)
        measured = np.asarray([o.measured_s for o in test])
        for a in SHRINK_GRID:
            p = shrink_toward(result.params, start, result.free, a)
            scores[a].append(float(np.median(ape(predict(test, p), measured))))
    mean = {a: float(np.mean(v)) for a, v in scores.items()}
    best = min(SHRINK_GRID, key=lambda a: (round(mean[a], 9), -a))
    return best, mean


def _random_value(name: str, rng: np.random.Generator) -> float:
    if name in FRACTIONS:
        return float(rng.uniform(0.1, 0.95))
    lo, hi = _bounds(name)
    # log-uniform over [1e-4, 0.3] of the upper bound: scales span orders of magnitude
    return float(max(lo, hi * 10 ** rng.uniform(-4, -0.5)))


def fit_black_box(loss: Callable[[RooflineParams], float], start: RooflineParams,
                  free: tuple[str, ...], max_evals: int = 80) -> tuple[RooflineParams, float, int]:
    """Derivative-free fit for losses computed by running the simulator (serving-level rows).

    Nelder-Mead in log space (parameters stay positive); fractions are clipped to (0, 1]."""
    x0 = np.log(np.maximum(_start(start, free), 1e-7))

    def params_of(z: np.ndarray) -> RooflineParams:
        values = np.exp(z)
        clipped = [float(np.clip(v, *_bounds(n))) for n, v in zip(free, values)]
        return with_values(start, free, np.asarray(clipped))

    evals = 0

    def objective(z: np.ndarray) -> float:
        nonlocal evals
        evals += 1
        return loss(params_of(z))

    sol = minimize(objective, x0, method="Nelder-Mead",
                   options={"maxfev": max_evals, "xatol": 1e-3, "fatol": 1e-5,
                            "initial_simplex": _simplex(x0)})
    return params_of(sol.x), float(sol.fun), evals


def _simplex(x0: np.ndarray) -> np.ndarray:
    # Steps of ~40% in each parameter: the starting values are rarely within 10% of the truth.
    simplex = [x0]
    for i in range(x0.size):
        x = x0.copy()
        x[i] += 0.35 if x0[i] > np.log(1e-6) else 3.0
        simplex.append(x)
    return np.asarray(simplex)
