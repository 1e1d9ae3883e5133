"""NVIDIA AIConfigurator's ``silicon_sample.csv`` as a validation set (never fitted on).

Each row is one measured deployment (system x backend x model x parallelism x ISL/OSL x
concurrency) with its end-to-end TTFT and TPOT. ``map_row`` turns a row into the ``hermes-sim``
overrides of the same deployment, or into exactly one coverage reason; ``predict`` simulates the
overrides and returns TTFT, TPOT and output throughput per GPU.

Conventions (AIConfigurator's, as the file uses them):

* concurrency: the number of benchmark clients, ``silicon_concurrency=N`` in
  ``silicon_data_source`` (or ``_c<N>_`` in the id); agg rows without either take ``batch_size``.
  ``batch_size`` itself is AIConfigurator's per-rank batch: with attention DP it is the clients
  divided by the DP ranks (``batch_size = 16, attention_dp_size = 8`` for 128 clients).
* agg rows: a worker holds ``tp_size * pp_size * attention_dp_size`` GPUs; MoE layers split them
  ``moe_tp_size x moe_ep_size``.
* disagg rows: a row is simulated only when it states ``prefill_num_workers`` and
  ``decode_num_workers``. Its ``prefill_batch_size`` / ``decode_batch_size`` (per attention-DP
  rank) set each worker's running batch (``deployment.<pool>.scheduler.max_num_seqs``,
  ``batch_caps``): the deployment as configured, so a handed-off request waits for a decode slot
  only as it did on the measured system (the engine's default cap, e.g. TensorRT-LLM's 2048,
  would make 4096 clients wait).
* measured throughput per GPU (closed loop): each of the ``c`` clients produces ``osl`` tokens per
  ``ttft + (osl - 1) * tpot``, so ``c * osl / (ttft + (osl - 1) * tpot) / gpus``.

The benchmark client is modelled, not the simulator's default closed loop (``client_of``):

* SemiAnalysis InferenceX rows (``db-dump/...`` and the dated exports ``source_file=2026-..csv;
  model=...``) ran ``utils/bench_serving/benchmark_serving.py`` (InferenceX
  ``benchmarks/benchmark_lib.sh``, ``run_benchmark_serving``): random prompts whose input and
  output lengths are drawn uniformly from ``[int(0.8 * L), L]`` (``--random-range-ratio 0.8``,
  ``.github/workflows/benchmark-tmpl.yml``; ``sample_random_requests``), ``--ignore-eos``,
  ``--num-prompts 10 * conc`` all queued at once behind a ``--max-concurrency conc`` semaphore
  (``--request-rate inf``), after ``2 * conc`` warm-up requests that are not measured (so the
  measured run starts on an idle server with every client at once, as the simulated one does).
* AIConfigurator's own gap-analysis rows (``source_file=.../aic-auto-gap-analysis/...``,
  ``...-gap-analysis.csv``) state no client; they are taken as a fixed-length closed loop
  (aiperf/genai-perf with ``--synthetic-input-tokens-stddev 0 --output-tokens-stddev 0``).

Both clients report the MEAN over the measured requests: AIConfigurator's evaluation harness
(ai-dynamo/aisimulate ``scripts/e2e_accuracy``) writes ``silicon_ttft_ms = metrics.mean_ttft``
and ``silicon_tpot_ms = metrics.mean_tpot``, TPOT per request being
``(latency - ttft) / (output_len - 1)`` (``benchmark_serving.calculate_metrics``), exactly the
simulator's per-request TPOT. Predictions therefore compare the simulated means, first wave and
drain included, as the client's do.

The CSV ships in the ``aiconfigurator-core`` wheel (Apache-2.0); it is located through the
installed package's files, never copied into this repository and never imported as a module.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hermes_opt.validation.silicon_client import CLIENT_FIXED, client_of, workload_overrides

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
CSV_NAME = "silicon_sample.csv"

# Hugging Face model path -> catalog model (hermes_opt/conf/model/*.yaml)
MODELS = {
    "deepseek-ai/DeepSeek-R1": "deepseek_r1",
    "nvidia/DeepSeek-R1-NVFP4": "deepseek_r1",
    "deepseek-ai/DeepSeek-V3": "deepseek_v3",
    "nvidia/DeepSeek-V3.1-NVFP4": "deepseek_v3",  # V3.1 has V3's architecture
    "openai/gpt-oss-120b": "gpt_oss_120b",
    "openai/gpt-oss-20b": "gpt_oss_20b",
    "meta-llama/Llama-3.1-70B": "llama3_1_70b",
    "meta-llama/Llama-3.1-70B-Instruct": "llama3_1_70b",
    "meta-llama/Llama-3.1-8B": "llama3_1_8b",
    "meta-llama/Llama-3.1-8B-Instruct": "llama3_1_8b",
    "nvidia/Llama-3.1-8B-Instruct-FP8": "llama3_1_8b",
    "meta-llama/Llama-3.3-70B-Instruct": "llama3_3_70b",
    "Qwen/Qwen3-32B": "qwen3_32b",
    "Qwen/Qwen3-32B-FP8": "qwen3_32b",
    "nvidia/Qwen3-32B-NVFP4": "qwen3_32b",
    "Qwen/Qwen3-235B-A22B": "qwen3_235b_a22b",
    "Qwen/Qwen3-235B-A22B-FP8": "qwen3_235b_a22b",
    "Qwen/Qwen3-30B-A3B": "qwen3_30b_a3b",
    "Qwen/Qwen3-8B": "qwen3_8b",
}
MOE_MODELS = {"deepseek_r1", "deepseek_v3", "gpt_oss_120b", "gpt_oss_20b", "qwen3_235b_a22b",
              "qwen3_30b_a3b"}

# AIConfigurator system -> catalog hardware (hermes_opt/conf/hardware/*.yaml)
SYSTEMS = {"b200_sxm": "b200", "h200_sxm": "h200", "h100_sxm": "h100_sxm", "gb200": "gb200",
           "b300_sxm": "b300", "gb300": "gb300"}

# quant mode -> cluster.weight_dtype
WEIGHT_DTYPES = {"fp8": "fp8", "fp8_block": "fp8", "nvfp4": "nvfp4", "mxfp4": "mxfp4",
                 "int4_wo": "int4", "w4a16": "int4", "int8_wo": "int8", "bf16": "bf16",
                 "float16": "bf16", "fp16": "bf16"}
PRECISION_DTYPES = {"fp8": "fp8", "fp4": "nvfp4", "int4": "int4", "bf16": "bf16", "": "bf16"}

# prices do not enter latency; the mixed set is the one that prices every system above
PRICING = "pricing=mixed_2026_11"

@dataclass(frozen=True, slots=True)
class Mapped:
    """One CSV row: its identity, its measurements and either overrides or one reason."""

    id: str
    system: str
    backend: str
    mode: str
    model_path: str
    isl: int
    osl: int
    concurrency: int
    gpus: int
    ttft_ms: float
    tpot_ms: float
    overrides: tuple[str, ...] = ()
    reason: str | None = None
    client: str = CLIENT_FIXED
    notes: tuple[str, ...] = field(default=())

    @property
    def partition(self) -> tuple[str, str, str]:
        return (self.system, self.backend, self.mode)

    @property
    def throughput_per_gpu(self) -> float | None:
        """Measured output tokens/s per GPU of the closed loop (module docstring)."""
        return closed_loop_throughput_per_gpu(self.concurrency, self.osl, self.ttft_ms,
                                              self.tpot_ms, self.gpus)


def closed_loop_throughput_per_gpu(concurrency: int, osl: int, ttft_ms: float, tpot_ms: float,
                                   gpus: int) -> float | None:
    request_s = (ttft_ms + (osl - 1) * tpot_ms) / 1000.0
    if concurrency <= 0 or gpus <= 0 or request_s <= 0:
        return None
    return concurrency * osl / request_s / gpus


# --- locating and reading the file ------------------------------------------------------------
def installed_csv_path() -> Path | None:
    """``aiconfigurator_core/systems/silicon_sample.csv`` of an installed package, located without
    importing it (its import pulls in the native engine)."""
    try:
        spec = importlib.util.find_spec("aiconfigurator_core")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "systems" / CSV_NAME
        if path.is_file():
            return path
    return None


def read_rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- engine group (switched on by the existence of its config) ---------------------------------
def engine_overrides(backend: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """``engine=<backend>`` when ``conf/engine/<backend>.yaml`` exists, else nothing."""
    return [f"engine={backend}"] if (conf_dir / "engine" / f"{backend}.yaml").is_file() else []


# --- row mapping ------------------------------------------------------------------------------
def _int(row: dict[str, str], key: str, default: int = 0) -> int:
    value = (row.get(key) or "").strip()
    if not value:
        return default
    return int(float(value))


def _float(row: dict[str, str], key: str) -> float:
    value = (row.get(key) or "").strip()
    return float(value) if value else float("nan")


def concurrency_of(row: dict[str, str]) -> int:
    """The number of benchmark clients: ``silicon_concurrency=N`` in the source, else ``_c<N>_``
    in the id, else (agg) ``batch_size``, which is per attention-DP rank (module docstring)."""
    match = re.search(r"silicon_concurrency=(\d+)", row.get("silicon_data_source") or "")
    if match:
        return int(match.group(1))
    match = re.search(r"_c(\d+)(?:_|$)", row.get("id") or "")
    if match:
        return int(match.group(1))
    if row.get("mode") == "agg" and (row.get("batch_size") or "").strip():
        return _int(row, "batch_size")
    return 0


def dtypes(row: dict[str, str], model: str) -> tuple[str, str] | str:
    """(weight_dtype, kv_dtype), or a reason. MoE models take the MoE layers' format (their
    weights are mostly experts), dense models the GEMM format; fp8 KV cache with fp8/fp4
    weights (the backends' FP8-checkpoint default), bf16 otherwise."""
    mode = (row.get("moe_quant_mode") if model in MOE_MODELS else "") or row.get("gemm_quant_mode")
    mode = (mode or "").strip()
    if mode:
        weight = WEIGHT_DTYPES.get(mode)
        if weight is None:
            return f"quant mode {mode!r} has no weight_dtype"
    else:
        weight = PRECISION_DTYPES.get((row.get("precision") or "").strip())
        if weight is None:
            return f"precision {row.get('precision')!r} has no weight_dtype"
    kv = "fp8" if weight in ("fp8", "nvfp4", "mxfp4") else "bf16"
    return weight, kv


def parallel(prefix: str, row: dict[str, str], model: str) -> tuple[dict[str, Any], int] | str:
    """One worker's hermes parallelism ``{tp, pp, ep, attention_dp}`` and its GPU count, or a
    reason. AIConfigurator: GPUs = tp * pp * attention_dp; hermes: attention DP spans the tp
    devices with experts in ep groups of tp / ep (moe_tp), so attention DP maps with attention
    tp 1 and moe_tp x moe_ep = dp."""
    tp = _int(row, f"{prefix}tp_size", 1) or 1
    pp = _int(row, f"{prefix}pp_size", 1) or 1
    dp = _int(row, f"{prefix}attention_dp_size", 1) or 1
    moe_tp = _int(row, f"{prefix}moe_tp_size", 1) or 1
    moe_ep = _int(row, f"{prefix}moe_ep_size", 1) or 1
    gpus = tp * pp * dp
    is_moe = model in MOE_MODELS
    if dp > 1:
        if not is_moe:
            return f"attention DP {dp} on dense model", gpus
        if tp != 1 or moe_ep * moe_tp != dp:
            return (f"attention DP {dp} with attention tp {tp}, moe tp {moe_tp} x ep {moe_ep} "
                    "(hermes: attention DP needs attention tp 1 and moe tp x ep = dp)"), gpus
        return {"tp": dp, "pp": pp, "ep": moe_ep, "attention_dp": True}, gpus
    ep = moe_ep if is_moe else 1
    if is_moe and moe_tp * moe_ep != tp:
        return f"moe tp {moe_tp} x ep {moe_ep} != tp {tp}", gpus
    return {"tp": tp, "pp": pp, "ep": ep, "attention_dp": False}, gpus


def batch_caps(row: dict[str, str], label: str, par: dict[str, Any], backend: str, hardware: str,
               weight: str, conf_dir: Path) -> list[str]:
    """A disagg worker's running batch as deployed: ``<label>_batch_size`` per attention-DP rank,
    so ``batch x ranks`` sequences per worker. An attention-DP worker's ranks each schedule their
    own step under the engine's token budget, so its budget is ``ranks x`` the engine's (the
    simulator's one replica spans the ranks)."""
    batch = _int(row, f"{label}_batch_size")
    if batch <= 0:
        return []
    ranks = par["tp"] if par["attention_dp"] else 1
    out = [f"deployment.{label}.scheduler.max_num_seqs={batch * ranks}"]
    if ranks > 1 and engine_overrides(backend, conf_dir):
        from hermes_opt.compose import catalog, engines
        from sim.errors import ConfigError
        try:
            engine = engines.resolve(engines.entry_of(backend, "engine"),
                                     catalog.entry("hardware", hardware), weight, "engine")
        except ConfigError:  # composing the row says why (its reason), not the mapping
            return out
        budget = int(engine.scheduler["max_batched_tokens"]) * ranks
        out.append(f"deployment.{label}.scheduler.max_batched_tokens={budget}")
    return out


def _unmapped(base: dict[str, Any], model: str | None, hardware: str | None) -> str | None:
    """Why a row cannot be simulated before its parallelism is read (None: it can so far)."""
    if model is None:
        return f"model not in catalog: {base['model_path']}"
    if hardware is None:
        return f"system not mapped: {base['system']}"
    if base["mode"] not in ("agg", "disagg"):
        return f"mode {base['mode']!r}"
    if base["isl"] <= 0 or base["osl"] <= 0 or base["concurrency"] <= 0:
        return "isl/osl/concurrency missing"
    if not (base["ttft_ms"] > 0 and base["tpot_ms"] > 0):
        return "measured ttft/tpot missing"
    return None


def map_row(row: dict[str, str], conf_dir: Path = CONF_DIR) -> Mapped:
    """The row's hermes-sim overrides, or its one coverage reason."""
    mode = (row.get("mode") or "").strip()
    model_path = (row.get("model_path") or "").strip()
    system = (row.get("system") or "").strip()
    backend = (row.get("backend") or "").strip()
    base = dict(id=row.get("id") or "", system=system, backend=backend, mode=mode,
                model_path=model_path, isl=_int(row, "isl"), osl=_int(row, "osl"),
                concurrency=concurrency_of(row), ttft_ms=_float(row, "silicon_ttft_ms"),
                tpot_ms=_float(row, "silicon_tpot_ms"), client=client_of(row))
    model = MODELS.get(model_path)
    hardware = SYSTEMS.get(system)
    # GPUs first (the measured throughput needs them even for rows we cannot simulate)
    if mode == "disagg":
        pw, dw = _int(row, "prefill_num_workers"), _int(row, "decode_num_workers")
        p = parallel("prefill_", row, model or "")
        d = parallel("decode_", row, model or "")
        gpus = pw * p[1] + dw * d[1]
    else:
        a = parallel("", row, model or "")
        gpus = a[1]
    reason = _unmapped(base, model, hardware)
    if reason is not None:
        return Mapped(**base, gpus=gpus, reason=reason)
    dt = dtypes(row, model)
    if isinstance(dt, str):
        return Mapped(**base, gpus=gpus, reason=dt)
    weight, kv = dt
    overrides = [f"model={model}", f"hardware={hardware}", PRICING, f"cluster.weight_dtype={weight}",
                 f"cluster.kv_dtype={kv}", *engine_overrides(backend, conf_dir)]
    if mode == "agg":
        par, _ = a
        if isinstance(par, str):
            return Mapped(**base, gpus=gpus, reason=par)
        overrides += [f"cluster.tp={par['tp']}", f"cluster.pp={par['pp']}",
                      f"cluster.ep={par['ep']}",
                      f"cluster.attention_dp={str(par['attention_dp']).lower()}"]
    else:
        if pw <= 0 or dw <= 0:
            return Mapped(**base, gpus=gpus, reason="disagg row without worker counts")
        for label, (par, _) in (("prefill", p), ("decode", d)):
            if isinstance(par, str):
                return Mapped(**base, gpus=gpus, reason=f"{label}: {par}")
            if par["pp"] != 1:
                return Mapped(**base, gpus=gpus, reason=f"{label}: pp > 1 in a derived pool")
        overrides += ["deployment.architecture=disaggregated", f"deployment.total_devices={gpus}",
                      f"deployment.prefill.devices={pw * p[1]}"]
        for label, (par, _) in (("prefill", p), ("decode", d)):
            overrides += [f"deployment.{label}.tp={par['tp']}", f"deployment.{label}.ep={par['ep']}",
                          f"deployment.{label}.attention_dp={str(par['attention_dp']).lower()}"]
            overrides += batch_caps(row, label, par, backend, hardware, weight, conf_dir)
    overrides += workload_overrides(base["isl"], base["osl"], base["concurrency"], base["client"])
    return Mapped(**base, gpus=gpus, overrides=tuple(overrides))


# --- simulation -------------------------------------------------------------------------------
def predict(mapped: Mapped) -> dict[str, Any]:
    """``{id, ttft_ms, tpot_ms, throughput_per_gpu}`` (means, as the clients report them;
    throughput = steady-state output tokens/s over the accelerators) or ``{id, reason}`` when
    the candidate is infeasible."""
    from hermes_opt.compose.candidate import compose
    from hermes_opt.compose.evaluate import simulate_candidate
    from sim.errors import ConfigError

    if mapped.reason is not None:
        return {"id": mapped.id, "reason": mapped.reason}
    try:
        summary = simulate_candidate(compose(list(mapped.overrides)), seed=0)
    except ConfigError as exc:
        return {"id": mapped.id, "reason": f"infeasible: {short_reason(str(exc))}",
                "detail": str(exc)}
    if not summary.get("requests_completed"):
        return {"id": mapped.id, "reason": "simulated no completed requests"}
    accelerators = summary.get("num_accelerators") or mapped.gpus
    steady = summary.get("steady_state") or {}
    tokens_per_s = steady.get("output_tokens_per_s") or summary["output_tokens_per_s"]
    entries = sorted({(p.get("efficiency") or {}).get("entry") or "none"
                      for p in summary["deployment"]["pools"] if p.get("engine")})
    # the clients report means over every measured request (module docstring)
    return {"id": mapped.id, "ttft_ms": summary["ttft_ms"]["mean"],
            "tpot_ms": summary["tpot_ms"]["mean"],
            "ttft_p50_ms": summary["ttft_ms"]["p50"], "tpot_p50_ms": summary["tpot_ms"]["p50"],
            # TTFT's share spent waiting for admission (the rest: prefill steps and chunking)
            "queue_mean_ms": sum(stage["queue_ms"]["mean"] for stage in summary["stages"].values()
                                 if stage.get("kind") == "generate"),
            "throughput_per_gpu": tokens_per_s / accelerators,
            "efficiency_entry": "+".join(entries)}


def short_reason(message: str) -> str:
    """A ConfigError, shortened to its kind so coverage counts group (numbers dropped)."""
    text = message.split(": ", 1)[-1] if message.startswith(("cluster.", "deployment.")) else message
    text = re.sub(r"(?<![\w.])\d+(\.\d+)?", "N", text)
    return text[:90]
