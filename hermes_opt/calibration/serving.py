"""Serving-level rows reproduced with the real simulator (``sim.simulate``).

Each measurement is set up as published: model, hardware, TP, precision (weights and KV cache),
fixed input/output lengths and the arrival mode (all requests at t = 0 for max-load tables,
Poisson at the stated rate for request-rate sweeps, a closed loop for fixed concurrency).

Engine settings the tables do not state are assumptions, listed in ``ENGINE_ASSUMPTIONS`` and in
docs/validation.md: TensorRT-LLM's in-flight batching is modelled by the chunked scheduler (decodes
first, prompt chunks fill an 8192-token budget), and its default capacity policy
(GUARANTEED_NO_EVICT: admit a request only if its whole ISL + OSL fits in the KV cache) by capping
the running batch at KV capacity / (ISL + OSL) — the simulator itself would preempt instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hermes_opt.calibration.observations import ServingObservation
from hermes_opt.calibration.predict import hardware_spec, model_spec
from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
    CostModelSpec,
    LengthKind,
    LengthSpec,
    PoolSpec,
    RequestTypeSpec,
    SchedulerSpec,
    SimConfig,
    Stage,
    StageKind,
    WorkloadSpec,
    simulate,
)
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError
from sim.hardware.memory import kv_capacity_blocks
from sim.hardware.specs import DType

TOKEN_BUDGET = 8192  # TensorRT-LLM max_num_tokens default
BLOCK_TOKENS = 32  # TensorRT-LLM tokens_per_block default (paged KV)
MAX_LOAD_MIN_WAVES = 20  # simulate enough requests that the final partial batch is a small share
MAX_LOAD_MAX_REQUESTS = 30000

ENGINE_ASSUMPTIONS = {
    "TensorRT-LLM perf-overview (v0.17 table)": {"max_num_seqs": 2048, "memory_fraction": 0.95},
    "TensorRT-LLM perf-overview (online serving table, v0.14)": {"max_num_seqs": 256,
                                                                  "memory_fraction": 0.9},
}
DEFAULT_ENGINE = {"max_num_seqs": 256, "memory_fraction": 0.9}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingSetup:
    config: SimConfig
    max_num_seqs: int
    num_requests: int


def setup(obs: ServingObservation, params: RooflineParams,
          frontend_latency_s: float = 0.0) -> ServingSetup:
    engine = ENGINE_ASSUMPTIONS.get(obs.source, DEFAULT_ENGINE)
    model, hardware = model_spec(obs.model), hardware_spec(obs.hardware)
    dtype = DType.FP8 if obs.precision == "fp8" else DType.BF16
    kv = DType.FP8 if (obs.kv_precision or obs.precision) == "fp8" else DType.BF16
    blocks = kv_capacity_blocks(model, hardware, tp=obs.tp, pp=1, weight_dtype=dtype, kv_dtype=kv,
                                block_size_tokens=BLOCK_TOKENS,
                                gpu_memory_utilization=engine["memory_fraction"],
                                activation_reserve_fraction=0.05, pool_name="validation")
    per_request = math.ceil((obs.isl + obs.osl) * (1 + obs.length_spread) / BLOCK_TOKENS)
    seqs = max(1, min(engine["max_num_seqs"], blocks // per_request, TOKEN_BUDGET - 1))
    if obs.arrival == "max_load":
        # Throughput tables queue tens of thousands of requests; enough waves of the running
        # batch give the same steady state faster. Smaller runs (500 at QPS=INF) are reproduced
        # as they are, because their TTFT depends on the queue they build.
        num = int(min(obs.num_requests, max(MAX_LOAD_MIN_WAVES * seqs, 1000), MAX_LOAD_MAX_REQUESTS))
        arrival = ArrivalSpec(kind=ArrivalKind.MAX_LOAD)
    elif obs.arrival == "poisson":
        num = obs.num_requests
        arrival = ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=obs.rate_per_s)
    else:
        num = obs.num_requests
        arrival = ArrivalSpec(kind=ArrivalKind.CLOSED_LOOP, concurrency=obs.concurrency)
    pool = PoolSpec(
        name="llm", model=model, hardware=hardware, tp=obs.tp, weight_dtype=dtype, kv_dtype=kv,
        scheduler=SchedulerSpec(policy=BatchPolicy.CHUNKED, max_num_seqs=seqs,
                                chunk_size_tokens=TOKEN_BUDGET, max_batched_tokens=TOKEN_BUDGET,
                                block_size_tokens=BLOCK_TOKENS,
                                gpu_memory_utilization=engine["memory_fraction"]),
        cost_model=CostModelSpec(roofline=params, frontend_latency_s=frontend_latency_s))
    rt = RequestTypeSpec(name="published", plan=(Stage(kind=StageKind.GENERATE, pool="llm"),),
                         prompt_tokens=lengths(obs.isl, obs.length_spread),
                         output_tokens=lengths(obs.osl, obs.length_spread))
    config = SimConfig(pools=(pool,), workload=WorkloadSpec(num_requests=num, arrival=arrival,
                                                            request_types=(rt,)))
    return ServingSetup(config=config, max_num_seqs=seqs, num_requests=num)


def lengths(mean: int, spread: float) -> LengthSpec:
    """Fixed lengths, or uniform within +-spread (e.g. '~20000 (+-15%)')."""
    if not spread:
        return LengthSpec(kind=LengthKind.FIXED, mean=mean)
    return LengthSpec(kind=LengthKind.UNIFORM, mean=mean, std=mean * spread / math.sqrt(3.0))


def scenario_key(obs: ServingObservation) -> tuple:
    """Rows sharing a key are one simulation (e.g. TTFT, ITL and throughput at one QPS)."""
    return (obs.source, obs.model, obs.hardware, obs.precision, obs.tp, obs.isl, obs.osl,
            obs.arrival, obs.rate_per_s, obs.concurrency, obs.num_requests, obs.kv_precision,
            obs.length_spread)


def figure(summary: dict, metric: str) -> float:
    value: object = summary
    for part in metric.split("."):
        value = value[part]  # type: ignore[index]
    return float(value)  # type: ignore[arg-type]


def simulate_rows(rows: list[ServingObservation], params: RooflineParams,
                  seed: int = 0, frontend_latency_s: float = 0.0) -> list[float]:
    """Predicted value of each row; rows of one scenario share one simulation."""
    cache: dict[tuple, dict] = {}
    out = []
    for obs in rows:
        key = scenario_key(obs)
        if key not in cache:
            try:
                config = setup(obs, params, frontend_latency_s).config
                cache[key] = simulate(config, seed).summary
            except ConfigError:  # e.g. the model does not fit the device: not expressible
                cache[key] = {}
        out.append(figure(cache[key], obs.metric) if cache[key] else float("nan"))
    return out


# --- serving front-end latency ----------------------------------------------------------------
# Figures a constant per-request front-end latency adds to (in ms); throughput and ITL it leaves.
LATENCY_METRICS = ("ttft_ms.", "e2e_ms.")
FRONTEND_MAX_S = 0.2  # search range: HTTP + tokenizer + ensemble hops, well under 200 ms
FRONTEND_STEP_S = 5e-5  # published TTFTs are whole milliseconds; 0.05 ms resolution is ample


def adds_latency(obs: ServingObservation) -> bool:
    return obs.metric.startswith(LATENCY_METRICS)


def best_frontend_latency_s(rows: list[ServingObservation], predicted_without: np.ndarray,
                            loss_of_log_ratio) -> float:
    """The front-end latency minimising ``loss_of_log_ratio`` over ``rows``, given predictions
    simulated without one.

    With open-loop arrivals a constant front-end latency delays every request's entry to the
    scheduler by the same amount, which shifts the whole run in time: TTFT and E2E grow by exactly
    that latency and the GPU-side figures do not change. So the fit searches it on a grid without
    re-simulating (the profile's reported errors are then simulated with it). Rows of other
    metrics add a constant to the loss. No TTFT/E2E row -> 0 (not identifiable)."""
    sel = np.asarray([adds_latency(o) for o in rows], dtype=bool)
    sel &= np.isfinite(predicted_without)
    if not sel.any():
        return 0.0
    pred_ms = np.asarray(predicted_without, dtype=float)[sel]
    measured = np.asarray([o.measured for o in rows], dtype=float)[sel]
    grid_s = np.arange(0.0, FRONTEND_MAX_S + FRONTEND_STEP_S / 2, FRONTEND_STEP_S)
    ratio = (pred_ms[None, :] + grid_s[:, None] * 1e3) / measured[None, :]
    losses = loss_of_log_ratio(np.log(np.maximum(ratio, 1e-12))).sum(axis=1)
    return float(grid_s[int(np.argmin(losses))])  # argmin: the smallest of equal minima
