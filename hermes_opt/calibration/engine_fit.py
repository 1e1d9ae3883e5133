"""Build the engine efficiency table (``conf/tables/engine_efficiency.yaml``) from public data.

* **NVIDIA (cuda)**: kernel efficiencies per (engine, GPU, precision) fitted on AIConfigurator's
  measured kernel tables (``hermes_opt/data/reference/aic_kernel_fit.yaml``, made by
  ``benchmarks/fit_kernel_tables.py``), grouped by hardware generation (median over the
  generation's GPUs). The kernels' own fixed times become ``layer_overhead_s``: four GEMM floors
  (QKV, output, up/gate, down) and one decode-attention floor per layer.
* **Serving factors.** Kernel microbenchmarks alone mispredict a tuned serving run. The CUDA
  stack gets two factors, one for the compute side (GEMM, prefill attention) and one for the
  memory side (weight streaming, decode attention), under physical ceilings, fitted on TensorRT-
  LLM's own published max-load table (Llama 3.1 8B; Mistral 7B and three ISL/OSL pairs held out),
  and a MoE factor on MLPerf v4.1's Mixtral Offline rows.
* **AMD (rocm)**: no kernel tables are public. A ROCm entry takes the same engine's Hopper FP8
  kernel shape and ONE factor on both sides, fitted on the MI300X submissions (vLLM on ROCm):
  how much of that shape ROCm's kernels reach. MLPerf's llama2-70b input length is not published,
  so it is fitted too (a workload parameter every vendor shares, on NVIDIA's rows), before the
  ROCm factor; every MLPerf fit is done per fold of submitters, so no fit sees the submitter it
  predicts (benchmarks/fit_engine_efficiency.py).

Nothing is fitted on silicon_sample.csv: it validates.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from typing import Any

from hermes_opt.compose import catalog, efficiency

KERNEL_PARAMS = ("compute_efficiency", "compute_half_tokens", "memory_efficiency",
                 "attention_efficiency", "decode_attention_efficiency",
                 "attention_half_context_tokens", "moe_efficiency", "comm_efficiency",
                 "allreduce_latency_s", "allreduce_latency_per_peer_s")
# Kernel-table dtypes -> precision classes of the table (fp8_block is DeepSeek-style block
# scaling; its shapes are few and its fits unstable, so per-tensor fp8 stands for the class).
KERNEL_DTYPES = {"bf16": "bf16", "fp8": "fp8", "nvfp4": "fp4"}
GEMMS_PER_LAYER = 4  # QKV, attention output, up/gate, down
def kernel_entries(kernel_fit: dict, source: str) -> list[dict]:
    """One entry per (engine, generation, precision class) of the kernel fit."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for engine, by_hw in kernel_fit.items():
        for hardware, by_dtype in by_hw.items():
            generation = str(catalog.entry("hardware", hardware).get("generation"))
            for dtype, fit in by_dtype.items():
                if dtype in KERNEL_DTYPES:
                    key = (engine, generation, KERNEL_DTYPES[dtype])
                    groups.setdefault(key, []).append({"hardware": hardware, **fit})
    return [_entry(key, fits, source) for key, fits in sorted(groups.items(), key=_order)]


def _order(item: tuple) -> tuple:
    (engine, generation, precision), _ = item
    return (("trtllm", "vllm", "sglang").index(engine) if engine in ("trtllm", "vllm", "sglang")
            else 9, generation, precision)


def _entry(key: tuple[str, str, str], fits: list[dict], source: str) -> dict:
    engine, generation, precision = key
    params = {}
    for name in KERNEL_PARAMS:
        values = [float(f[name]) for f in fits if f.get(name) is not None]
        if values:
            params[name] = round(min(1.0, statistics.median(values)), 6) \
                if name.endswith("efficiency") else round(statistics.median(values), 9)
    floors = [GEMMS_PER_LAYER * float(f.get("gemm_launch_s") or 0.0)
              + float(f.get("decode_attention_launch_s") or 0.0) for f in fits]
    params["layer_overhead_s"] = round(statistics.median(floors), 9)
    gpus = ", ".join(sorted(f["hardware"] for f in fits))
    kernel_err = statistics.median(float(f.get("heldout_median_pct") or 0) for f in fits)
    return {"engine": engine, "stack": "cuda", "generation": generation, "precision": precision,
            "params": params,
            "source": f"{source}: {engine} kernel tables on {gpus} (median over the generation)",
            "fitted_on": f"kernel microbenchmarks ({gpus}); GEMM held-out shape error median "
                         f"{kernel_err:.1f} %",
            "band": {}}


# Efficiency groups a stack's serving factors scale: the compute side (GEMM, prefill attention)
# and the memory side (weight streaming, decode attention's KV reads); the MoE factor moves
# moe_efficiency alone (relative to the dense GEMMs already scaled). Ramps and latencies keep the
# kernel tables' values.
COMPUTE = ("compute_efficiency", "attention_efficiency")
MEMORY = ("memory_efficiency", "decode_attention_efficiency")
# Physical ceilings no factor pushes past: GEMMs at peak; prefill attention at the best published
# kernel (FlashAttention-3, Shah et al. 2024, arXiv 2407.08608: 740 TFLOP/s BF16 on H100 = 75 % of
# peak; FP8 1.2 PFLOP/s = 61 %); HBM streams at about 92 % of peak in STREAM-like copies.
CEILINGS = {"compute_efficiency": 1.0, "attention_efficiency": 0.75, "memory_efficiency": 0.92,
            "decode_attention_efficiency": 0.92, "moe_efficiency": 1.0}


def scaled(entry: dict, compute: float, memory: float = 1.0, moe: float = 1.0,
           **fields: Any) -> dict:
    """``entry`` with its compute-side efficiencies times ``compute``, its memory side times
    ``memory`` and its MoE efficiency times ``moe`` (each under its ceiling; a factor of 1 leaves
    the kernel tables' value, even above the ceiling), other fields replaced."""
    params = dict(entry["params"])
    for names, factor in ((COMPUTE, compute), (MEMORY, memory)):
        for name in names:
            if name in params and factor != 1.0:
                params[name] = round(min(CEILINGS[name], params[name] * factor), 6)
    if moe != 1.0:  # no kernel-table MoE figure = as efficient as the dense GEMMs
        params["moe_efficiency"] = round(min(1.0, params.get("moe_efficiency", 1.0) * moe), 6)
    return {**entry, "params": params, **fields}


def log_error(pairs: Iterable[tuple[float, float]]) -> float:
    """Mean squared log ratio of (predicted, measured) pairs: symmetric in over/under."""
    errs = [math.log(p / m) ** 2 for p, m in pairs if p > 0 and m > 0]
    return sum(errs) / len(errs) if errs else math.inf


def fit_factor(loss: Callable[[float], float], low: float = 0.3, high: float = 1.2,
               steps: int = 10) -> float:
    """The factor in [low, high] with the least ``loss``: a coarse grid, then golden-section
    refinement around the best grid point (the loss is smooth and unimodal in practice)."""
    grid = [low + (high - low) * i / steps for i in range(steps + 1)]
    losses = [loss(f) for f in grid]
    best = min(range(len(grid)), key=losses.__getitem__)
    a, b = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(8):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return round((a + b) / 2, 4)


def band(pairs: list[tuple[float, float]], validated_on: str) -> dict:
    """Median and p90 absolute % error of (predicted, measured) pairs."""
    errs = sorted(abs(p / m - 1) * 100 for p, m in pairs if m > 0 and p == p)
    if not errs:
        return {}
    p90 = errs[min(len(errs) - 1, math.ceil(0.9 * len(errs)) - 1)]
    return {"median_pct": round(statistics.median(errs), 1), "p90_pct": round(p90, 1),
            "n": len(errs), "validated_on": validated_on}


def find(entries: list[dict], engine: str, stack: str, generation: str, precision: str) -> dict | None:
    for entry in entries:
        if (entry["engine"], entry["stack"], entry["generation"], entry["precision"]) == \
                (engine, stack, generation, precision):
            return entry
    return None


__all__ = ["kernel_entries", "scaled", "fit_factor", "band", "find", "log_error", "efficiency"]
