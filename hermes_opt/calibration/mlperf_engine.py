"""MLPerf submissions simulated as the serving engine they ran (docs/engines.md).

A submission's engine comes from the table's ``engine`` column ("TensorRT 10.2.0, CUDA 12.4" ->
trtllm, "vLLM 0.4.3+rocm614" -> vllm), else from its vendor's usual stack. The engine decides the
KV memory rule (``mlperf_sim.Memory``), the host costs and graph capture; the efficiency table
(``hermes_opt.compose.efficiency``) the kernel efficiencies for (engine, stack, generation,
precision class). The LoadGen-specific settings (token budget, batch cap, run lengths) stay
``mlperf_sim.ENGINE``: submitters tune them for the benchmark.
"""

from __future__ import annotations

from hermes_opt.calibration import mlperf_sim
from hermes_opt.calibration.mlperf_rows import Submission
from hermes_opt.compose import catalog, efficiency, engines
from hermes_opt.compose.profile_select import engine_of_text
from sim.config import BatchPolicy
from sim.cost.roofline import RooflineParams

# What a vendor's submissions run when the column does not say (MLPerf v4.1: NVIDIA's and its
# partners' entries are TensorRT-LLM, AMD's vLLM on ROCm)
VENDOR_ENGINE = {"NVIDIA": "trtllm", "AMD": "vllm"}


def engine_name(sub: Submission) -> str:
    name = engine_of_text(sub.engine_raw)
    if name:
        return name
    vendor = str(catalog.entry("hardware", sub.hardware).get("vendor") or "")
    return VENDOR_ENGINE.get(vendor, "vllm")


def serving_engine(sub: Submission) -> engines.Engine:
    """The submission's engine resolved on its hardware (the entry's newest version with data:
    the memory rule and host path did not change between the versions MLPerf v4.1 ran)."""
    weights, _ = mlperf_sim.dtypes(sub.weights, sub.hardware)
    hardware = catalog.entry("hardware", sub.hardware)
    return engines.resolve(engines.entry_of(engine_name(sub), "engine"), hardware,
                           weights.value, "engine")


# Benchmark runs raise the KV memory share above the serving default: TensorRT-LLM's published
# throughput tables use kv_cache_free_gpu_mem_fraction 0.95 "in most cases" (perf-overview,
# reference/measurements.csv notes); MLPerf submitters tune at least as far. Engines not listed
# keep their entry's default (no public figure for AMD's vLLM settings).
BENCHMARK_MEMORY_FRACTION = {"trtllm": 0.95}


def memory_of(engine: engines.Engine) -> mlperf_sim.Memory:
    fraction = BENCHMARK_MEMORY_FRACTION.get(engine.name, engine.memory_fraction)
    return mlperf_sim.Memory(rule=engine.memory_rule, fraction=fraction,
                             reserve_gib=engine.activation_reserve_bytes / 2**30,
                             policy=BatchPolicy(engine.scheduler["policy"]))


def params_of(engine: engines.Engine, weights: str,
              entries: tuple[dict, ...] | None = None) -> tuple[RooflineParams, efficiency.Efficiency]:
    """Roofline terms of ``engine`` at ``weights`` (the shipped table, or ``entries`` when a fit
    tries candidate values), and the entry used."""
    found = efficiency.lookup(engine, efficiency.precision_class(weights), entries=entries)
    return efficiency.roofline_params({}, engine, found), found


class EngineSimulators:
    """One ``mlperf_sim.Simulator`` per (engine, hardware, precision class): runs are cached per
    parameter set, so submissions of one GPU share them."""

    def __init__(self, entries: tuple[dict, ...] | None = None):
        self.entries = entries
        self._sims: dict[tuple, tuple[mlperf_sim.Simulator, efficiency.Efficiency]] = {}

    def for_submission(self, sub: Submission) -> tuple[mlperf_sim.Simulator, efficiency.Efficiency]:
        engine = serving_engine(sub)
        weights, _ = mlperf_sim.dtypes(sub.weights, sub.hardware)
        key = (engine.label, sub.hardware, weights.value)
        if key not in self._sims:
            params, found = params_of(engine, weights.value, self.entries)
            self._sims[key] = (mlperf_sim.Simulator(params, memory_of(engine)), found)
        return self._sims[key]

    def predict(self, sub: Submission) -> tuple[mlperf_sim.Prediction | str, efficiency.Efficiency]:
        sim, found = self.for_submission(sub)
        return mlperf_sim.predict(sub, sim), found
