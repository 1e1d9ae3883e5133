"""Fit a deployment's efficiencies to serving-benchmark measurements by re-simulating it.

Three knobs, chosen because serving benchmarks identify them (docs/validation.md, "Calibrating
from your own benchmarks"):

* ``prefill_scale`` multiplies the compute-side efficiencies (GEMM, prefill attention): TTFT at
  light load is mostly prefill;
* ``decode_scale`` multiplies the memory-side efficiencies (weight streaming, decode attention):
  TPOT/ITL is mostly decode;
* ``kv_capacity_factor``: the share of the engine's documented KV blocks the cluster has; only
  runs under KV pressure (queueing, preemption, batches capped by memory) say anything about it.
  When moving it changes no prediction, it is not identified and stays 1.

A serving front end's latency (HTTP, tokenizer; added to TTFT and E2E, not to TPOT/ITL) is profiled
out at every point of the search, as for ``--serving`` fits: without it, a prefill scale would soak
up the front end's milliseconds. ``--no-frontend-latency`` keeps it at 0.

Host step overhead is not fitted: at one model size it trades off against ``decode_scale`` (both
lengthen every decode step) and a handful of load points cannot tell them apart.

Each benchmark run is re-simulated as run (Poisson at its rate, a closed loop at its concurrency,
or every request at once), with its request count and lengths, seed 0: the fit is deterministic.
The loss is a soft-L1 of log(predicted / measured) over the mean and median metrics and the
throughputs (p99s are reported, not fitted: one slow request moves them).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from hermes_opt.calibration.bench_formats import METRICS, BenchmarkRun, Lengths
from hermes_opt.calibration.serving import FRONTEND_MAX_S, FRONTEND_STEP_S
from sim import simulate
from sim.config import LLM_ROLES, SimConfig
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError
from sim.workload.spec import ArrivalKind, ArrivalSpec, LengthKind, LengthSpec

KNOBS = ("prefill_scale", "decode_scale", "kv_capacity_factor")
COMPUTE = ("compute_efficiency", "attention_efficiency")
MEMORY = ("memory_efficiency", "decode_attention_efficiency")
BOUNDS = {"prefill_scale": (0.2, 5.0), "decode_scale": (0.2, 5.0), "kv_capacity_factor": (0.05, 1.5)}
FITTED_METRICS = tuple(m for m in METRICS if not m.endswith("_p99_ms"))
MISS_PENALTY = 5.0  # a log-ratio charged for an unusable prediction (no completions, rejections)
SOFT_L1_SCALE = 0.1  # residuals past ~10 % count linearly, so one odd metric cannot drag the fit
SHIFTED = ("ttft_", "e2e_")  # figures a front-end latency adds to


@dataclass(frozen=True, slots=True)
class Knobs:
    prefill_scale: float = 1.0
    decode_scale: float = 1.0
    kv_capacity_factor: float = 1.0
    frontend_latency_s: float = 0.0  # added to the deployment's own (profiled out, not simplexed)

    def as_dict(self) -> dict[str, float]:
        return {k: float(f"{getattr(self, k):.6g}") for k in (*KNOBS, "frontend_latency_s")}


def scaled_params(params: RooflineParams, knobs: Knobs) -> RooflineParams:
    """The roofline terms with the compute side times ``prefill_scale`` and the memory side times
    ``decode_scale``, each at most 1 (peak). A zero decode-attention efficiency means "as the
    memory efficiency" and follows it."""
    values = {}
    for names, factor in ((COMPUTE, knobs.prefill_scale), (MEMORY, knobs.decode_scale)):
        for name in names:
            value = getattr(params, name)
            if value:
                values[name] = min(1.0, value * factor)
    return dataclasses.replace(params, **values)


def apply(config: SimConfig, knobs: Knobs) -> SimConfig:
    """``config`` with the knobs on every LLM pool."""
    pools = []
    for pool in config.pools:
        if pool.role in LLM_ROLES:
            cost = dataclasses.replace(
                pool.cost_model, roofline=scaled_params(pool.cost_model.roofline, knobs),
                frontend_latency_s=pool.cost_model.frontend_latency_s + knobs.frontend_latency_s)
            sched = dataclasses.replace(pool.scheduler, kv_capacity_factor=knobs.kv_capacity_factor)
            pool = dataclasses.replace(pool, cost_model=cost, scheduler=sched)
        pools.append(pool)
    return dataclasses.replace(config, pools=tuple(pools))


def _lengths(stats: Lengths) -> LengthSpec:
    if stats.high - stats.low < 1:
        return LengthSpec(kind=LengthKind.FIXED, mean=max(1, round(stats.mean)))
    # uniform over the observed range, centred on the observed mean (clipped at the range)
    std = (stats.high - stats.low) / math.sqrt(12.0)
    return LengthSpec(kind=LengthKind.UNIFORM, mean=stats.mean, std=std,
                      min_tokens=max(1, int(stats.low)), max_tokens=max(1, int(math.ceil(stats.high))))


def scenario(config: SimConfig, run: BenchmarkRun) -> SimConfig:
    """The deployment under the benchmark's own load, request count and lengths."""
    if run.arrival == "poisson":
        arrival = ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=run.rate_per_s)
    elif run.arrival == "closed_loop":
        arrival = ArrivalSpec(kind=ArrivalKind.CLOSED_LOOP, concurrency=run.concurrency)
    else:
        arrival = ArrivalSpec(kind=ArrivalKind.MAX_LOAD)
    base = config.workload.request_types[0]  # its plan: the deployment's route through the pools
    rt = dataclasses.replace(base, name="benchmark", weight=1.0, prefix=None, reasoning=None,
                             arrival=None, slo=None, prompt_tokens=_lengths(run.input_tokens),
                             output_tokens=_lengths(run.output_tokens))
    workload = dataclasses.replace(config.workload, num_requests=run.num_requests,
                                   arrival=arrival, request_types=(rt,), trace=None)
    return dataclasses.replace(config, workload=workload, record_requests=False,
                               record_trace=False, kv_stores=())


def predict(config: SimConfig, runs: list[BenchmarkRun], knobs: Knobs) -> list[dict]:
    """The simulator's summary of each run under ``knobs`` ({} when it cannot run)."""
    tuned = apply(config, knobs)
    out = []
    for run in runs:
        try:
            out.append(dict(simulate(scenario(tuned, run), 0).summary))
        except ConfigError:
            out.append({})
    return out


def figure(summary: dict, metric: str) -> float:
    key, stat = METRICS[metric]
    value = summary.get(key)
    value = value.get(stat) if isinstance(value, dict) else value
    return float(value) if isinstance(value, (int, float)) else math.nan


def _columns(runs: list[BenchmarkRun], summaries: list[dict],
             metrics: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(predicted, measured, shifted by a front-end latency, usable) per measured figure."""
    pred, meas, shifted, usable = [], [], [], []
    for run, summary in zip(runs, summaries):
        short = (summary.get("requests_completed", 0) < 0.99 * run.num_requests) if summary else True
        for metric in metrics:
            if metric in run.measured and run.measured[metric] > 0:
                predicted = figure(summary, metric) if summary else math.nan
                pred.append(predicted)
                meas.append(run.measured[metric])
                shifted.append(metric.startswith(SHIFTED))
                usable.append(math.isfinite(predicted) and predicted > 0 and not short)
    return np.asarray(pred), np.asarray(meas), np.asarray(shifted, bool), np.asarray(usable, bool)


def _soft_l1(log_ratio: np.ndarray) -> np.ndarray:
    r = log_ratio / SOFT_L1_SCALE
    return np.sqrt(1.0 + r * r) - 1.0


def loss(runs: list[BenchmarkRun], summaries: list[dict], frontend_s: float = 0.0) -> float:
    """Mean soft-L1 of log(predicted / measured), TTFT and E2E taken ``frontend_s`` later."""
    pred, meas, shifted, usable = _columns(runs, summaries, FITTED_METRICS)
    if not pred.size:
        return 0.0
    shifted_pred = pred + np.where(shifted, frontend_s * 1e3, 0.0)
    r = np.where(usable, np.log(np.where(usable, shifted_pred, 1.0) / meas), MISS_PENALTY)
    return float(np.mean(_soft_l1(r)))


def best_frontend_s(runs: list[BenchmarkRun], summaries: list[dict]) -> float:
    """The serving front end's latency (HTTP, tokenizer, detokenizer before the scheduler) that
    fits the TTFT and E2E figures best, given predictions without it. It adds to both exactly
    under an open-loop load (and nearly so in a closed loop, where it slightly thins the load), so
    it is profiled out on a grid instead of being a dimension of the simplex (as in
    ``serving.best_frontend_latency_s``)."""
    pred, meas, shifted, usable = _columns(runs, summaries, FITTED_METRICS)
    sel = shifted & usable
    if not sel.any():
        return 0.0
    grid_s = np.arange(0.0, FRONTEND_MAX_S + FRONTEND_STEP_S / 2, FRONTEND_STEP_S)
    ratio = (pred[sel][None, :] + grid_s[:, None] * 1e3) / meas[sel][None, :]
    losses = _soft_l1(np.log(ratio)).sum(axis=1)
    return float(grid_s[int(np.argmin(losses))])  # argmin: the smallest of equal minima


def fit(config: SimConfig, runs: list[BenchmarkRun], max_evals: int = 90,
        fit_frontend: bool = True) -> tuple[Knobs, dict]:
    """Nelder-Mead over the knobs in log space (bounded by clipping), from the engine's values,
    the front-end latency profiled out at each point; then the KV factor's identifiability check.
    Returns the knobs and how the fit went."""
    lows = np.log([BOUNDS[k][0] for k in KNOBS])
    highs = np.log([BOUNDS[k][1] for k in KNOBS])
    cache: dict[tuple, tuple[float, float]] = {}

    def knobs_of(z: np.ndarray) -> Knobs:
        z = np.clip(z, lows, highs)
        return Knobs(*(float(f"{v:.5g}") for v in np.exp(z)))

    def evaluate(z: np.ndarray) -> tuple[float, float]:
        knobs = knobs_of(z)
        key = dataclasses.astuple(knobs)
        if key not in cache:
            summaries = predict(config, runs, knobs)
            frontend = best_frontend_s(runs, summaries) if fit_frontend else 0.0
            cache[key] = (loss(runs, summaries, frontend), frontend)
        return cache[key]

    def objective(z: np.ndarray) -> float:
        return evaluate(z)[0]

    x0 = np.zeros(len(KNOBS))  # every knob at 1: the engine's efficiencies and memory rule
    # Steps of ~35 % per knob; the KV factor steps down (a cluster rarely has more KV than the
    # engine's own rule gives).
    simplex = np.asarray([x0, x0 + [0.3, 0, 0], x0 + [0, 0.3, 0], x0 + [0, 0, -0.45]])
    sol = minimize(objective, x0, method="Nelder-Mead",
                   options={"maxfev": max_evals, "xatol": 5e-3, "fatol": 1e-6,
                            "initial_simplex": simplex})
    best = knobs_of(sol.x)
    best_loss, frontend = evaluate(sol.x)
    kv_note = _kv_identified(best, best_loss, objective)
    if kv_note:
        best = dataclasses.replace(best, kv_capacity_factor=1.0)
        frontend = evaluate(np.log([best.prefill_scale, best.decode_scale, 1.0]))[1]
    best = dataclasses.replace(best, frontend_latency_s=frontend)
    return best, {"evaluations": len(cache), "loss": best_loss,
                  "kv_capacity_factor": kv_note or "identified: moving it changes the predictions",
                  "frontend_latency": ("fitted: a constant per request before the scheduler, "
                                       "in TTFT and E2E (not in TPOT/ITL)") if fit_frontend else
                                      "not fitted (--no-frontend-latency): 0"}


def _kv_identified(best: Knobs, best_loss: float, objective) -> str:
    """'' if the fitted KV factor matters to the predictions, else why it is left at 1."""
    if abs(best.kv_capacity_factor - 1.0) < 0.05:
        return "within 5 % of 1: left at 1 (the engine's rule as documented)"
    at_one = objective(np.log([best.prefill_scale, best.decode_scale, 1.0]))
    if at_one > best_loss + 1e-6:
        return ""
    return ("not identified: no benchmark ran under KV pressure (the predictions are the same at "
            "the fitted value and at the engine's rule), so it stays 1 (the rule as documented)")
