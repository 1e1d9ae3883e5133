"""Serving-level rows reproduced with the real simulator (``sim.simulate``).

Each measurement is set up as published: model, hardware, TP, precision (weights and KV cache),
fixed input/output lengths and the arrival mode (all requests at t = 0 for max-load tables,
Poisson at the stated rate for request-rate sweeps, a closed loop for fixed concurrency).

Engine settings the tables do not state (running-batch cap, KV memory share) are the published
defaults of the row's engine and version (``serving_engines``; docs/validation.md). In-flight
batching is modelled by the chunked scheduler (decodes first, prompt chunks fill an 8192-token
budget), and TensorRT-LLM's default capacity policy
(GUARANTEED_NO_EVICT: admit a request only if its whole ISL + OSL fits in the KV cache) by capping
the running batch at KV capacity / (ISL + OSL) — the simulator itself would preempt instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hermes_opt.calibration import serving_engines, serving_metrics
from hermes_opt.calibration.observations import ServingObservation
from hermes_opt.calibration.predict import hardware_spec, model_spec
from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
    CostModelSpec,
    LengthKind,
    LengthSpec,
    PoolRole,
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
from sim.pipeline.specs import FirstToken

TOKEN_BUDGET = 8192  # TensorRT-LLM max_num_tokens default
BLOCK_TOKENS = 32  # TensorRT-LLM tokens_per_block default (paged KV)
MAX_LOAD_MIN_WAVES = 20  # simulate enough requests that the final partial batch is a small share
MAX_LOAD_MAX_REQUESTS = 30000

@dataclass(frozen=True, slots=True, kw_only=True)
class ServingSetup:
    config: SimConfig
    max_num_seqs: int
    num_requests: int
    engine: serving_engines.Settings  # the settings used, with any version fallback (note)

    def describe(self) -> str:
        fallback = f"; {self.engine.note}" if self.engine.note else ""
        return (f"engine {self.engine.label}{fallback}: max_num_seqs {self.max_num_seqs}, memory "
                f"{self.engine.memory_fraction:g}, {self.num_requests} requests")


def setup(obs: ServingObservation, params: RooflineParams,
          frontend_latency_s: float = 0.0) -> ServingSetup:
    engine = serving_engines.resolve(obs.engine, obs.engine_version, obs.source)
    model, hardware = model_spec(obs.model), hardware_spec(obs.hardware)
    dtype, kv = dtypes(obs)
    blocks = kv_capacity_blocks(model, hardware, tp=obs.tp, pp=1, weight_dtype=dtype, kv_dtype=kv,
                                block_size_tokens=BLOCK_TOKENS,
                                gpu_memory_utilization=engine.memory_fraction,
                                activation_reserve_fraction=0.05, pool_name="validation")
    per_request = math.ceil((obs.isl + obs.osl) * (1 + obs.length_spread) / BLOCK_TOKENS)
    cap = engine.seqs_on(hardware.memory_bytes / 2**30, _generation(obs.hardware))
    seqs = max(1, min(cap, blocks // per_request, TOKEN_BUDGET - 1))
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
                                gpu_memory_utilization=engine.memory_fraction),
        cost_model=CostModelSpec(roofline=params, frontend_latency_s=frontend_latency_s))
    pools = disaggregated(pool, obs.workers, engine.engine) if min(obs.workers) >= 1 else (pool,)
    rt = RequestTypeSpec(name="published", plan=(Stage(kind=StageKind.GENERATE, pool=pools[0].name),),
                         prompt_tokens=lengths(obs.isl, obs.length_spread),
                         output_tokens=lengths(obs.osl, obs.length_spread))
    config = SimConfig(pools=pools, workload=WorkloadSpec(num_requests=num, arrival=arrival,
                                                          request_types=(rt,)),
                       record_requests=serving_metrics.needs_requests(obs.metric))
    return ServingSetup(config=config, max_num_seqs=seqs, num_requests=num, engine=engine)


def disaggregated(pool: PoolSpec, workers: tuple[int, int], engine: str) -> tuple[PoolSpec, ...]:
    """A ``<P>P<D>D`` row: ``P`` prefill and ``D`` decode replicas of the row's pool (its tp, the
    same engine settings); the KV crosses the default path (``sim.pipeline.disaggregation``) and
    the client's first token follows the engine's rule (``conf/engine/<name>.yaml``
    ``disaggregation.first_token``; the simulator's default for an engine without an entry)."""
    from hermes_opt.compose import catalog, engines
    rule = {}
    if engine in catalog.options("engine"):
        entry = engines.plain(engines.entry_of(engine, "engine"))
        rule = {"first_token": FirstToken(entry["disaggregation"]["first_token"])}
    prefill, decode = workers
    return (replace(pool, name="prefill", role=PoolRole.PREFILL, num_replicas=prefill),
            replace(pool, name="decode", role=PoolRole.DECODE, num_replicas=decode, **rule))


def dtypes(obs: ServingObservation) -> tuple[DType, DType]:
    """(weights, KV cache) formats of a row ('fp8', 'bf16', 'nvfp4', 'mxfp4', 'int8', 'int4')."""
    return DType(obs.precision), DType(obs.kv_precision or obs.precision)


def _generation(hardware: str) -> str:
    from hermes_opt.compose import catalog
    return str(catalog.entry("hardware", hardware).get("generation") or "")


def lengths(mean: int, spread: float) -> LengthSpec:
    """Fixed lengths, or uniform within +-spread (e.g. '~20000 (+-15%)')."""
    if not spread:
        return LengthSpec(kind=LengthKind.FIXED, mean=mean)
    return LengthSpec(kind=LengthKind.UNIFORM, mean=mean, std=mean * spread / math.sqrt(3.0))


def scenario_key(obs: ServingObservation) -> tuple:
    """Rows sharing a key are one simulation (e.g. TTFT, ITL and throughput at one QPS)."""
    return (obs.source, obs.model, obs.hardware, obs.precision, obs.tp, obs.isl, obs.osl,
            obs.arrival, obs.rate_per_s, obs.concurrency, obs.num_requests, obs.kv_precision,
            obs.length_spread, obs.engine, obs.engine_version, obs.workers,
            serving_metrics.needs_requests(obs.metric))


def figure(summary: dict, metric: str, gpus: int = 1, requests: list[dict] | None = None) -> float:
    return serving_metrics.value(summary, metric, gpus, requests)


def simulate_rows(rows: list[ServingObservation], params: RooflineParams,
                  seed: int = 0, frontend_latency_s: float = 0.0) -> list[float]:
    """Predicted value of each row; rows of one scenario share one simulation."""
    cache: dict[tuple, object] = {}
    out = []
    for obs in rows:
        key = scenario_key(obs)
        if key not in cache:
            try:
                config = setup(obs, params, frontend_latency_s).config
                cache[key] = simulate(config, seed)
            except ConfigError:  # e.g. the model does not fit the device: not expressible
                cache[key] = None
        result = cache[key]
        gpus = obs.tp * max(1, sum(obs.workers))  # a disaggregated row: every worker's devices
        out.append(figure(result.summary, obs.metric, gpus, result.requests)
                   if result is not None else float("nan"))
    return out


def describe(obs: ServingObservation) -> str:
    """The engine settings a row is simulated with ('' when it cannot be set up)."""
    try:
        return setup(obs, RooflineParams()).describe()
    except ConfigError as err:
        return f"not set up ({str(err)[:80]})"


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
