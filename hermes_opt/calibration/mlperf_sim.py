"""MLPerf LoadGen scenarios through ``sim.simulate``.

* **Offline**: as LoadGen runs it: one query of many samples at t = 0, and at least 600 s of
  them, so every replica stays busy for the whole run (LoadGen issues max(min_query_count, 1.1 x
  600 s x expected QPS) samples, i.e. a number that grows with the system). One replica is
  simulated with ``offline_waves`` x its running-batch cap of samples (``offline_min_requests`` ..
  ``offline_max_requests``), the same count whatever the system size, and its throughput is
  measured over the steady middle of the run (``offline_window``: from the end of the first
  batch's prefill to the last admission, so the fill and the drain of the last long samples are
  excluded). Per-GPU throughput then does not fall with the number of replicas.
* **Server / Interactive**: Poisson arrivals. The **SLO capacity** is the highest rate whose
  simulated p99 TTFT and p99 TPOT meet the scenario's constraints (bracketing, then bisection on
  the rate; fixed seed, so deterministic). A submission's target QPS is its measured capacity
  (submitters raise it until the constraints are just met). TTFT/TPOT are also simulated at the
  target rate, to compare with the published mean and p99.

Submissions publish neither TP nor PP. The layout is chosen as a submitter tuning for the
benchmark would: every TP degree in ``ENGINE['tp_candidates']`` that divides the GPU count and
fits the model is tried, the best predicted Offline throughput (Server: SLO capacity among the
``ENGINE['capacity_tp_finalists']`` best Offline layouts) is kept and recorded. One replica is
simulated with its share of the load (Offline: a steady pool of samples; Server: Poisson thinned
by the replica count) and its figures scaled by the number of replicas.

Engine assumptions (TensorRT-LLM-like; also in docs/validation.md) are ``ENGINE``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from hermes_opt.calibration import offline_window
from hermes_opt.calibration.mlperf_rows import Benchmark, Constraints, Submission
from hermes_opt.calibration.predict import hardware_spec, model_spec
from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
    CostModelSpec,
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

ENGINE = {
    "scheduler": "chunked",        # TensorRT-LLM in-flight batching: decodes first, prompt chunks fill the budget
    "token_budget": 8192,          # max_num_tokens per step
    "max_num_seqs": 2048,          # running-batch cap (MLPerf engines are built with large batches)
    "memory_fraction": 0.9,        # share of device memory for weights + KV (kv_cache_free_gpu_mem_fraction-like)
    "activation_reserve": 0.05,
    "block_tokens": 32,            # paged-KV block size
    "tp_candidates": (1, 2, 4, 8),  # within one node (NVLink / xGMI domain); PP = 1
    "capacity_tp_finalists": 2,    # Server: capacity searched for the best N Offline layouts
    "offline_waves": 10,           # Offline samples per replica: this many running batches ...
    "offline_min_requests": 500,   # ... at least this many (enough completions for the window) ...
    "offline_max_requests": 16000,  # ... at most this many, to stay cheap (the steady window
                                   # ends at the last admission: the drain is never counted)
    "server_requests": 1500,       # Poisson arrivals per simulated point: at least this many ...
    "capacity_duration_s": 600,    # ... and at least this long, LoadGen's minimum Server run: an
                                   # overload of a few % must build the queue that breaks the
                                   # 2 s TTFT limit in the real run too (90 s let 1.1-1.3x pass)
    "capacity_max_requests": 40000,  # per replica, to stay cheap
    "target_duration_s": 600,      # at the target rate: LoadGen's minimum Server run (600 s) ...
    "target_max_requests": 4000,   # ... capped (per replica) to stay cheap
    "capacity_rel_tol": 0.03,      # bisection stops when hi / lo <= 1 + tol
    "seed": 0,
    "frontend_latency_s": 0.0,     # LoadGen calls the SUT in-process: no HTTP / Triton front end
}

NATIVE_FP8 = ("fp8", "quantized", "nvfp4", "mxfp4")


@dataclass(frozen=True, slots=True)
class Layout:
    model: str
    hardware: str
    tp: int
    replicas: int
    weights: DType
    kv: DType
    max_num_seqs: int

    def describe(self) -> str:
        return (f"tp={self.tp} x {self.replicas} replica(s), weights {self.weights.value}, "
                f"kv {self.kv.value}, max_num_seqs {self.max_num_seqs}")


def dtypes(weights: str, hardware: str) -> tuple[DType, DType]:
    """'fp16 + quantization' (TensorRT-LLM FP8 in practice) and fp8 -> fp8 weights and KV on a
    device with FP8 tensor cores; bf16 otherwise. FP4 weights keep an fp8 KV cache."""
    has_fp8 = hardware_spec(hardware).fp8_flops_per_s is not None
    if weights in ("nvfp4", "mxfp4"):
        return DType(weights), DType.FP8 if has_fp8 else DType.BF16
    if weights in ("fp8", "quantized") and has_fp8:
        return DType.FP8, DType.FP8
    return DType.BF16, DType.BF16


@dataclass(frozen=True, slots=True)
class Memory:
    """How the engine sizes its KV cache (``sim.hardware.memory``): the ``ENGINE`` defaults, or a
    serving engine's rule (``hermes_opt.compose.engines``)."""

    rule: str = "total_fraction"
    fraction: float = ENGINE["memory_fraction"]
    reserve_gib: float = -1.0  # < 0: ENGINE's activation_reserve share of device memory
    policy: BatchPolicy = BatchPolicy.CHUNKED  # the engine's batching (ENGINE: chunked)

    def reserve_fraction(self, hw) -> float:
        if self.reserve_gib < 0:
            return ENGINE["activation_reserve"]
        return self.reserve_gib * 2**30 / hw.memory_bytes


DEFAULT_MEMORY = Memory()


def layouts(sub: Submission, memory: Memory = DEFAULT_MEMORY) -> tuple[list[Layout], str]:
    """Every TP degree that divides the GPU count and fits the model ('' or why none does)."""
    bench = sub.benchmark
    w, kv = dtypes(sub.weights, sub.hardware)
    model, hw = model_spec(sub.model), hardware_spec(sub.hardware)
    out, why = [], ""
    longest = _longest(bench.isl) + _longest(bench.osl)
    mean_tokens = bench.isl.mean + bench.osl.mean
    for tp in ENGINE["tp_candidates"]:
        if tp > sub.num_gpus or sub.num_gpus % tp:
            continue
        try:
            blocks = kv_capacity_blocks(model, hw, tp=tp, pp=1, weight_dtype=w, kv_dtype=kv,
                                        block_size_tokens=ENGINE["block_tokens"],
                                        gpu_memory_utilization=memory.fraction,
                                        activation_reserve_fraction=memory.reserve_fraction(hw),
                                        pool_name="mlperf", kv_memory_rule=memory.rule)
        except ConfigError as err:
            why = f"model does not fit at tp<={tp} ({str(err)[:80]})"
            continue
        if blocks * ENGINE["block_tokens"] < longest:
            why = f"KV cache at tp={tp} holds fewer tokens than one longest sample ({longest})"
            continue
        seqs = int(max(1, min(ENGINE["max_num_seqs"], blocks * ENGINE["block_tokens"] // mean_tokens)))
        out.append(Layout(sub.model, sub.hardware, tp, sub.num_gpus // tp, w, kv, seqs))
    return out, ("" if out else why or f"no TP degree of {ENGINE['tp_candidates']} divides "
                 f"num_gpus={sub.num_gpus}")


def _longest(spec) -> int:
    """Longest sample the distribution draws (clipped to max_tokens; tails at mean + 4 std)."""
    top = spec.mean if spec.kind.value == "fixed" else (
        spec.mean + spec.std * math.sqrt(3.0) if spec.kind.value == "uniform" else spec.mean + 4 * spec.std)
    return int(min(spec.max_tokens, math.ceil(top)))


def config(layout: Layout, bench: Benchmark, params: RooflineParams, *, rate: float | None,
           num: int, memory: Memory = DEFAULT_MEMORY) -> SimConfig:
    hw = hardware_spec(layout.hardware)
    pool = PoolSpec(
        name="llm", model=model_spec(layout.model), hardware=hardware_spec(layout.hardware),
        tp=layout.tp, weight_dtype=layout.weights, kv_dtype=layout.kv,
        scheduler=SchedulerSpec(policy=memory.policy, max_num_seqs=layout.max_num_seqs,
                                chunk_size_tokens=ENGINE["token_budget"],
                                max_batched_tokens=ENGINE["token_budget"],
                                block_size_tokens=ENGINE["block_tokens"],
                                gpu_memory_utilization=memory.fraction,
                                activation_reserve_fraction=memory.reserve_fraction(hw),
                                kv_memory_rule=memory.rule),
        cost_model=CostModelSpec(roofline=params, frontend_latency_s=ENGINE["frontend_latency_s"]))
    rt = RequestTypeSpec(name=bench.key, plan=(Stage(kind=StageKind.GENERATE, pool="llm"),),
                         prompt_tokens=bench.isl, output_tokens=bench.osl)
    arrival = (ArrivalSpec(kind=ArrivalKind.MAX_LOAD) if rate is None else
               ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=rate))
    return SimConfig(pools=(pool,), workload=WorkloadSpec(num_requests=num, arrival=arrival,
                                                          request_types=(rt,)))


class Simulator:
    """Runs and caches the simulations of one parameter set (roofline or a calibrated profile)."""

    def __init__(self, params: RooflineParams, memory: Memory = DEFAULT_MEMORY):
        self.params, self.memory = params, memory
        self._cache: dict[tuple, dict] = {}
        self.runs = 0

    def summary(self, layout: Layout, bench: Benchmark, rate: float | None, num: int) -> dict:
        key = (replace(layout, replicas=1), bench.key, bench.isl, bench.osl,
               None if rate is None else round(rate, 9), num)
        if key not in self._cache:
            self.runs += 1
            self._cache[key] = simulate(config(layout, bench, self.params, rate=rate, num=num,
                                               memory=self.memory), ENGINE["seed"]).summary
        return self._cache[key]

    def offline(self, layout: Layout, bench: Benchmark) -> dict[str, float]:
        """System output tokens/s and samples/s: one replica's rate over the steady window of a
        run with all its samples at t = 0 (``offline_window``), times the replicas."""
        num = offline_requests(layout)
        key = ("offline", replace(layout, replicas=1), bench.key, bench.isl, bench.osl, num)
        if key not in self._cache:
            self.runs += 1
            rows = offline_window.Rows()
            cfg = replace(config(layout, bench, self.params, rate=None, num=num, memory=self.memory),
                          record_requests=True)
            s = simulate(cfg, ENGINE["seed"], request_sink=rows).summary
            steady = offline_window.steady_rates(rows, layout.max_num_seqs)
            # no steady phase (a tiny run): first arrival to last completion, as LoadGen counts
            self._cache[key] = steady[:2] if steady else (s["output_tokens_per_s"],
                                                          s["requests_per_s"])
        tokens_per_s, samples_per_s = self._cache[key]
        return {"output_tokens_per_s": tokens_per_s * layout.replicas,
                "samples_per_s": samples_per_s * layout.replicas}

    def at_rate(self, layout: Layout, bench: Benchmark, system_rate: float,
                num: int | None = None) -> dict[str, float]:
        """Figures at a Poisson rate; throughput over the whole run (first arrival to last
        completion, as LoadGen counts it), so the run lasts about LoadGen's 600 s by default."""
        rate = system_rate / layout.replicas
        if num is None:
            num = int(min(max(rate * ENGINE["target_duration_s"], ENGINE["server_requests"]),
                          ENGINE["target_max_requests"]))
        s = self.summary(layout, bench, rate, num)
        return {"output_tokens_per_s": s["output_tokens_per_s"] * layout.replicas,
                "samples_per_s": s["requests_per_s"] * layout.replicas,
                **{f"{f}.{q}": s[f][q] for f in ("ttft_ms", "tpot_ms")
                   for q in ("mean", "p50", "p90", "p99")},
                "e2e_ms.mean": s["e2e_ms"]["mean"], "e2e_ms.p99": s["e2e_ms"]["p99"]}

    def capacity(self, layout: Layout, bench: Benchmark, limits: Constraints) -> float:
        """System SLO capacity (queries/s): per-replica capacity x replicas."""
        def latencies(rate: float) -> tuple[float, float]:
            s = self.summary(layout, bench, rate, capacity_requests(rate))
            return s["ttft_ms"]["p99"], s["tpot_ms"]["p99"]
        start = max(self.offline(layout, bench)["samples_per_s"] / layout.replicas * 0.5, 1e-3)
        return slo_capacity(latencies, limits, start) * layout.replicas


def offline_requests(layout: Layout) -> int:
    """Samples one replica runs in Offline: ``offline_waves`` running batches, clamped. It does
    not depend on the replica count or the dataset size: LoadGen repeats samples until its 600 s
    minimum, so each replica of any system keeps a full batch for most of the run."""
    waves = ENGINE["offline_waves"] * layout.max_num_seqs
    return int(min(max(waves, ENGINE["offline_min_requests"]), ENGINE["offline_max_requests"]))


def capacity_requests(rate: float) -> int:
    """Arrivals simulated per point of the capacity search (per replica, at ``rate`` per s)."""
    return int(min(max(rate * ENGINE["capacity_duration_s"], ENGINE["server_requests"]),
                   ENGINE["capacity_max_requests"]))


def slo_capacity(latencies: Callable[[float], tuple[float, float]], limits: Constraints,
                 start: float, rel_tol: float | None = None, max_steps: int = 20) -> float:
    """Highest rate r with p99 TTFT(r) <= limit and p99 TPOT(r) <= limit: bracket by doubling or
    halving from ``start``, then bisect (geometric midpoint) until hi / lo <= 1 + rel_tol. The
    returned rate was evaluated and meets the limits; 0.0 if even start / 2**max_steps does not."""
    tol = ENGINE["capacity_rel_tol"] if rel_tol is None else rel_tol

    def ok(rate: float) -> bool:
        ttft, tpot = latencies(rate)
        return math.isfinite(ttft) and math.isfinite(tpot) and (
            ttft <= limits.ttft_p99_ms and tpot <= limits.tpot_p99_ms)

    if ok(start):
        lo, hi = start, start * 2
        for _ in range(max_steps):
            if not ok(hi):
                break
            lo, hi = hi, hi * 2
        else:
            return lo
    else:
        lo, hi = start / 2, start
        for _ in range(max_steps):
            if ok(lo):
                break
            lo, hi = lo / 2, lo
        else:
            return 0.0
    while hi / lo > 1 + tol:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


@dataclass(frozen=True, slots=True)
class Prediction:
    layout: Layout
    choice: str  # how the layout was chosen
    figures: dict[str, float]  # predicted figure -> value (system level)


def predict(sub: Submission, sim: Simulator, fixed_tp: int | None = None) -> Prediction | str:
    """Predicted figures of one submission, or the reason it cannot be simulated. ``fixed_tp``
    reuses a layout chosen before (the calibrated run keeps the roofline's choice if given)."""
    options, why = layouts(sub, sim.memory)
    if not options:
        return why
    bench = sub.benchmark
    if fixed_tp is not None:
        options = [o for o in options if o.tp == fixed_tp] or options
    offline = {o.tp: sim.offline(o, bench)["output_tokens_per_s"] for o in options}
    ranked = sorted(options, key=lambda o: -offline[o.tp])
    tried = ", ".join(f"tp{o.tp} {offline[o.tp]:.0f} tok/s" for o in options)
    if sub.scenario == "Offline":
        best = ranked[0]
        return Prediction(best, f"best Offline throughput of {tried}", sim.offline(best, bench))
    finalists = ranked[:ENGINE["capacity_tp_finalists"]]
    caps = {o.tp: sim.capacity(o, bench, sub.constraints) for o in finalists}
    best = max(finalists, key=lambda o: caps[o.tp])
    figures = sim.at_rate(best, bench, sub.target_qps)
    figures["slo_capacity_qps"] = caps[best.tp]
    choice = ("best SLO capacity of " + ", ".join(f"tp{t} {c:.2f} q/s" for t, c in caps.items())
              + f" (finalists by Offline: {tried})")
    return Prediction(best, choice, figures)
