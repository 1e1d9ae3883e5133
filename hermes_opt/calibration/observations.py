"""Measurements as typed observations the fitter and the validation study both read.

Four shapes, one loader each (every loader raises ``ConfigError`` naming the file and the column
on malformed input; a measurement that is not a finite number > 0 is
``<file>:<line>: <column>=<value>: must be a finite number > 0``):

* ``StepObservation`` — one engine step: prefill of ``batch_size`` prompts, or a decode step of
  ``batch_size`` sequences at a mean context. Splitwise ``perf_model.csv`` and the plain
  ``steps`` CSV a user writes from their own engine's benchmark.
* ``OperatorObservation`` — Vidur ``mlp.csv``: one transformer layer's non-attention operators
  (norms, QKV/out projections, rope, MLP, residual add) at ``num_tokens`` and a TP degree.
* ``CollectiveObservation`` — Vidur ``all_reduce.csv``: one all-reduce of ``size`` fp16 elements.
* ``ServingObservation`` — one serving-level figure (throughput, mean TTFT/ITL/TPOT/E2E) under
  an arrival mode, in the shape of ``reference/measurements.csv``.

Names in the files (``h100-80gb``, ``LLaMA v3.1 8B``, ``H200-SXM-141GB`` ...) map to catalog names
through ``conf/tables/aliases.yaml``; rows naming hardware or models the catalog lacks are kept
with ``catalog_*`` = "" so the validation study can count them as out of reach rather than drop
them silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hermes_opt.calibration.serving_metrics import parse_metric
from hermes_opt.compose.csv_input import bad_cell, check_numbers, positive_number, read_csv
from sim.errors import ConfigError


# --- name mapping -----------------------------------------------------------------------
def catalog_name(kind: str, raw: object) -> str:
    """Catalog name for a file's spelling ('' when the catalog has no such entry).

    Spellings are mapped by the alias table ``conf/tables/aliases.yaml`` (plus any user table
    given with ``--aliases``): case-insensitive regular expressions on a normalized spelling, see
    ``hermes_opt.compose.aliases``."""
    from hermes_opt.compose import aliases
    return aliases.catalog_name(kind, raw)


def _read_csv(path: str | Path, required: tuple[str, ...], what: str) -> pd.DataFrame:
    return read_csv(path, what, required)


# --- step level -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class StepObservation:
    source: str
    model: str  # catalog name ('' = not in the catalog)
    hardware: str  # catalog name
    variant: str  # what distinguishes otherwise equal rows' setups (e.g. 'pcap' = power-capped)
    tp: int
    phase: str  # 'prefill' | 'decode'
    batch_size: int
    prompt_tokens: int  # prefill: tokens per prompt
    context_tokens: float  # decode: mean context per sequence over the measured steps
    measured_s: float
    config_key: str  # identifies the measured configuration (for splits)
    raw_model: str = ""
    note: str = ""


SPLITWISE_COLUMNS = ("model", "hardware", "tensor_parallel", "batch_size", "prompt_size",
                     "token_size", "prompt_time", "token_time")


def load_splitwise(path: str | Path) -> list[StepObservation]:
    """Splitwise perf_model.csv: median over repeats of each (model, hw, tp, batch, prompt, tokens)."""
    frame = _read_csv(path, SPLITWISE_COLUMNS, "splitwise")
    check_numbers(frame, path, counts=("tensor_parallel", "batch_size", "prompt_size"),
                  non_negative_ints=("token_size",), positive=("prompt_time", "token_time"))
    keys = ["model", "hardware", "tensor_parallel", "batch_size", "prompt_size", "token_size"]
    grouped = frame.groupby(keys, as_index=False)[["prompt_time", "token_time"]].median()
    out = []
    for r in grouped.itertuples(index=False):
        hw = str(r.hardware)
        key = (f"{r.model}/{hw}/tp{int(r.tensor_parallel)}/b{int(r.batch_size)}"
               f"/p{int(r.prompt_size)}/t{int(r.token_size)}")
        common = dict(source="splitwise", model=catalog_name("model", r.model),
                      hardware=catalog_name("hardware", hw), variant="pcap" if hw.endswith("-pcap") else "",
                      tp=int(r.tensor_parallel), batch_size=int(r.batch_size),
                      prompt_tokens=int(r.prompt_size), config_key=key, raw_model=str(r.model))
        out.append(StepObservation(phase="prefill", context_tokens=0.0,
                                   measured_s=float(r.prompt_time) / 1e3, **common))
        # token_time averages decode steps while context grows from prompt to prompt + tokens;
        # step time is linear in context, so the mean step is the step at the mean context.
        out.append(StepObservation(phase="decode", context_tokens=r.prompt_size + r.token_size / 2,
                                   measured_s=float(r.token_time) / 1e3, **common))
    return out


STEPS_COLUMNS = ("model", "tp", "phase", "batch_size", "prompt_tokens", "context_tokens", "time_ms")


def load_steps(path: str | Path, default_hardware: str = "") -> list[StepObservation]:
    """The plain CSV a user writes from their own engine's benchmark (see docs/validation.md)."""
    frame = _read_csv(path, STEPS_COLUMNS, "steps")
    check_numbers(frame, path, counts=("tp", "batch_size"), non_negative_ints=("prompt_tokens",),
                  non_negative=("context_tokens",), positive=("time_ms",))
    out = []
    for i, r in enumerate(frame.itertuples(index=False)):
        phase = str(r.phase).strip().lower()
        if phase not in ("prefill", "decode"):
            raise ConfigError(f"steps={str(path)!r}: column 'phase' row {i + 2} = {r.phase!r}: "
                              "allowed: prefill, decode")
        hw_raw = getattr(r, "hardware", default_hardware) if "hardware" in frame.columns else default_hardware
        hardware = catalog_name("hardware", hw_raw)
        model = catalog_name("model", r.model)
        if not hardware or not model:
            from hermes_opt.compose import catalog
            which, raw = ("hardware", hw_raw) if not hardware else ("model", r.model)
            raise ConfigError(f"steps={str(path)!r}: row {i + 2} {which}={raw!r}: unknown; allowed: "
                              f"{', '.join(catalog.options(which))}")
        out.append(StepObservation(
            source="steps", model=model, hardware=hardware, variant="", tp=int(r.tp), phase=phase,
            batch_size=int(r.batch_size), prompt_tokens=int(r.prompt_tokens),
            context_tokens=float(r.context_tokens), measured_s=float(r.time_ms) / 1e3,
            config_key=f"{model}/{hardware}/tp{int(r.tp)}/{phase}/b{int(r.batch_size)}/"
                       f"p{int(r.prompt_tokens)}/c{float(r.context_tokens):g}",
            raw_model=str(r.model)))
    if not out:
        raise ConfigError(f"steps={str(path)!r}: no rows")
    return out


# --- operator level (Vidur) ---------------------------------------------------------------
VIDUR_OPS = ("input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj",
             "post_attention_layernorm", "mlp_up_proj", "mlp_act", "mlp_down_proj", "add")


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorObservation:
    source: str
    model: str
    hardware: str
    tp: int
    num_tokens: int
    measured_s: float  # one layer's non-attention operators, sum of per-op medians
    raw_model: str = ""


_VIDUR_NAME = re.compile(r"compute__(?P<gpu>[^_]+)__(?P<org>[^_]+(?:-[^_]+)*)__(?P<model>.+)__mlp\.csv$")


def load_vidur_compute(path: str | Path) -> list[OperatorObservation]:
    path = Path(path)
    match = _VIDUR_NAME.search(path.name)
    if not match:
        raise ConfigError(f"vidur-compute={str(path)!r}: file name must look like "
                          "compute__<gpu>__<org>__<model>__mlp.csv")
    cols = tuple(f"time_stats.{op}.median" for op in VIDUR_OPS)
    frame = _read_csv(path, ("num_tokens", "num_tensor_parallel_workers", *cols), "vidur-compute")
    check_numbers(frame, path, counts=("num_tokens", "num_tensor_parallel_workers"), positive=cols)
    # Same sum as the published per-layer summary rows in reference/measurements.csv.
    total_ms = frame[list(cols)].sum(axis=1)
    model = catalog_name("model", match["model"])
    hardware = catalog_name("hardware", match["gpu"])
    return [OperatorObservation(source="vidur", model=model, hardware=hardware, tp=int(tp),
                                num_tokens=int(n), measured_s=float(ms) / 1e3, raw_model=match["model"])
            for n, tp, ms in zip(frame.num_tokens, frame.num_tensor_parallel_workers, total_ms)]


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectiveObservation:
    source: str
    hardware: str
    num_workers: int
    size_bytes: float
    measured_s: float


def load_vidur_allreduce(path: str | Path) -> list[CollectiveObservation]:
    """All-reduce within one node (devices_per_node == num_workers); median over ranks."""
    path = Path(path)
    match = re.search(r"network__(?P<topo>[^_]+_[^_]+)__all_reduce\.csv$", path.name)
    if not match:
        raise ConfigError(f"vidur-network={str(path)!r}: file name must look like "
                          "network__<gpu>_<topology>__all_reduce.csv")
    col = "time_stats.all_reduce.median"
    frame = _read_csv(path, ("num_workers", "size", "devices_per_node", col), "vidur-network")
    check_numbers(frame, path, counts=("num_workers", "size", "devices_per_node"), positive=(col,))
    frame = frame[frame.devices_per_node == frame.num_workers]
    grouped = frame.groupby(["num_workers", "size"], as_index=False)[col].median()
    hardware = catalog_name("hardware", match["topo"])
    return [CollectiveObservation(source="vidur_network", hardware=hardware, num_workers=int(r.num_workers),
                                  size_bytes=2.0 * float(r.size), measured_s=float(r[2]) / 1e3)
            for r in grouped.itertuples(index=False)]


# --- serving level -----------------------------------------------------------------------
SERVING_COLUMNS = ("source", "model", "precision", "gpu", "tp", "isl", "osl",
                   "concurrency_or_qps_or_batch", "metric", "value", "unit")
@dataclass(frozen=True, slots=True, kw_only=True)
class ServingObservation:
    source: str
    model: str
    hardware: str
    precision: str  # weights: 'fp8' | 'bf16'
    tp: int
    isl: int
    osl: int
    arrival: str  # 'max_load' | 'poisson' | 'closed_loop'
    rate_per_s: float  # poisson
    concurrency: int  # closed_loop
    num_requests: int
    metric: str  # summary figure, e.g. 'output_tokens_per_s', 'ttft_ms.mean'
    measured: float
    row: int  # row in the source file (for the report)
    raw_metric: str = ""
    raw_model: str = ""
    raw_gpu: str = ""
    raw_load: str = ""
    kv_precision: str = ""  # '' = same as precision
    length_spread: float = 0.0  # lengths uniform within +-spread of isl/osl (0 = fixed)
    engine: str = ""  # the table's engine text (settings: serving_engines.resolve)
    engine_version: str = ""
    # disaggregated: (prefill workers, decode workers), each of ``tp`` devices; (0, 0): colocated
    workers: tuple[int, int] = (0, 0)


def parse_load(text: str) -> tuple[str, float, int, int] | None:
    """'max load (all 30000 ...)', 'QPS=4', 'QPS=INF', 'concurrency=16', 'max-concurrency 1, 50
    prompts' -> (kind, rate, conc, n)."""
    t = str(text).strip().lower()
    n_match = re.search(r"(\d+)\s*(?:requests|prompts)", t)
    num = int(n_match.group(1)) if n_match else 0
    # 'max load (...)', 'QPS=INF', or 'N requests, no concurrency limit' (all issued at once)
    if (t.startswith("max load") or re.fullmatch(r"(qps|rps)\s*=\s*inf.*", t)
            or (num and "no concurrency limit" in t)):
        return "max_load", 0.0, 1, num
    m = re.fullmatch(r"(?:qps|rps)\s*=\s*([0-9.]+).*", t)
    if m:
        return "poisson", float(m.group(1)), 1, num
    m = re.fullmatch(r"(?:max-?)?concurrency\s*=?\s*(\d+).*", t)  # bench_serving --max-concurrency
    if m:
        return "closed_loop", 0.0, int(m.group(1)), num
    return None


def _precision(text: str) -> str:
    """'fp8' | 'bf16' | 'nvfp4' | 'mxfp4' | 'int8' | 'int4' | '' (not understood)."""
    t = str(text).strip().lower()
    if t.startswith("fp8"):
        return "fp8"
    if t.startswith(("fp16", "bf16")):
        return "bf16"  # same bytes and tensor-core rate on every catalog device
    if t.startswith("mxfp4"):
        return "mxfp4"
    if t.startswith(("nvfp4", "fp4")):  # NVFP4 is what Blackwell tables mean by FP4
        return "nvfp4"
    if t.startswith(("int8", "w8a16")):
        return "int8"
    if t.startswith(("int4", "w4a16", "awq", "gptq")):
        return "int4"
    return ""


def _precisions(text: str) -> tuple[str, str]:
    """(weights, kv) from 'FP8', 'BF16', 'weights BF16; KV FP8-KV' or 'KV FP8' (weights BF16)."""
    t = str(text).strip()
    weights = re.search(r"weights\s+(\S+)", t, re.I)
    kv = re.search(r"KV\s+(\S+)", t, re.I)
    if weights or kv:
        w = _precision(weights.group(1)) if weights else "bf16"
        return w, _precision(kv.group(1)) if kv else _kv_default(w)
    return _precision(t), _kv_default(_precision(t))


def _kv_default(weights: str) -> str:
    """KV cache format when only the weights' is stated: FP4 checkpoints ship an FP8 KV cache
    (NVIDIA ModelOpt NVFP4 / MXFP4 exports); weight-only int formats keep a bf16 one."""
    if weights in ("nvfp4", "mxfp4"):
        return "fp8"
    return "bf16" if weights in ("int8", "int4") else weights


def _length(text: object) -> tuple[int, float] | None:
    """'128' -> (128, 0); '~20000 (+-15%)' -> (20000, 0.15); 'ShareGPT', 'swept' -> None."""
    t = str(text).strip()
    try:
        return int(float(t)), 0.0
    except ValueError:
        m = re.fullmatch(r"~?\s*(\d+)\s*\(\s*\+-\s*(\d+(?:\.\d+)?)\s*%\s*\)", t)
        return (int(m.group(1)), float(m.group(2)) / 100) if m else None


def load_serving(path: str | Path, *, default_requests: int = 500, strict: bool = True,
                 reasons: dict[int, str] | None = None) -> tuple[list[ServingObservation], pd.DataFrame]:
    """Serving rows of a measurements-shaped CSV; also the whole frame (for coverage counts).

    Rows the simulator cannot express (unknown model or GPU, unknown metric or arrival mode,
    non-numeric ISL/OSL such as 'ShareGPT') are not returned; ``reasons`` (when given) gets
    {file line: why} for each. A mapped figure whose value is not a number > 0 is a ConfigError
    when ``strict`` (a fit must not use it), else a reason too (validation reads any table whole)."""
    frame = _read_csv(path, SERVING_COLUMNS, "serving")
    reasons = {} if reasons is None else reasons
    out = []
    for i, r in frame.iterrows():
        line = int(i) + 2
        why, obs = _serving_row(r, line, frame, path, default_requests, strict)
        if obs is None:
            reasons[line] = why
        else:
            out.append(obs)
    return out, frame


# A row measured on a prefill/decode-disaggregated deployment ("PD disaggregation", "1P1D"): run
# as a prefill and a decode pool when it states its worker counts ("<P>P<D>D"), each worker of the
# row's tp; simulating it colocated would hide the KV hand-off and the decode admission.
DISAGGREGATED = re.compile(r"disaggregat|\b\d+P\d+D\b|\bP/D\b", re.I)
WORKER_COUNTS = re.compile(r"\b(\d+)P(\d+)D\b")
# A row whose notes say its run was served from a KV cache filled by an earlier run ("cache hit
# from Mooncake Store (second round)"): the reader simulates every prompt from scratch.
WARM_CACHE = re.compile(r"cache hit|warm(ed)? cache|second round", re.I)


def _serving_row(r, line: int, frame, path, default_requests: int, strict: bool):
    """('', observation) or (why not, None) for one row of a serving table."""
    from hermes_opt.compose import aliases, catalog
    metric = parse_metric(r.metric, r.get("unit", ""))
    if metric is None:
        return f"metric not mapped ({str(r.metric)[:40]})", None
    if not positive_number(r.value):  # a figure the fit would use: never <= 0
        if strict:
            raise bad_cell(path, frame, frame.index.get_loc(line - 2), "value",
                           "must be a finite number > 0")
        return f"value={str(r.value)[:20]!r}: not a finite number > 0", None
    model, why_model = aliases.resolve("model", r.model)
    hardware, why_hw = aliases.resolve("hardware", r.gpu)
    # a CPU-only system first: its row is out of scope whether or not its model is in the catalog
    if not why_hw and catalog.entry("hardware", hardware).get("kind") == "cpu":
        return f"CPU-only system ({str(r.gpu)[:40]}): LLM serving is simulated on accelerators", None
    if why_hw or why_model:
        return why_hw or why_model, None
    load = parse_load(r.concurrency_or_qps_or_batch)
    if load is None:
        return f"arrival mode not stated ({str(r.concurrency_or_qps_or_batch)[:30]})", None
    notes = str(r.get("notes", "") or "")
    if WARM_CACHE.search(notes):  # its prompts' KV was stored by an earlier run of the same prompts
        return (f"KV cache warmed by an earlier run (notes: {notes[:40]!r}): cross-run KV reuse is "
                "not set up by the serving reader"), None
    layout = " ".join(str(r.get(c, "") or "") for c in ("source", "engine"))
    counts = WORKER_COUNTS.search(f"{layout} {notes}")
    workers = (int(counts.group(1)), int(counts.group(2))) if counts else (0, 0)
    if DISAGGREGATED.search(layout) and min(workers) < 1:
        return (f"disaggregated prefill/decode deployment ({str(r.get('engine', ''))[:40]}): "
                "prefill/decode worker counts not stated (<P>P<D>D)"), None
    precision, kv_precision = _precisions(r.precision)
    if not (precision and kv_precision):
        return f"precision not understood ({str(r.precision)[:30]})", None
    isl_spec, osl_spec = _length(r.isl), _length(r.osl)
    if not (isl_spec and osl_spec):
        return f"length distribution not given (isl/osl = {r.isl}/{r.osl})", None
    tp_match = re.fullmatch(r"\s*(\d+)(?:\.0*)?\s*(?:\([^)]*\))?\s*", str(r.tp))  # '8', '8.0', '8 (assumed)'
    if not tp_match:
        return f"tp not given ({str(r.tp)[:20]})", None
    tp = int(tp_match.group(1))
    if tp < 1:
        return f"tp={r.tp}: not an integer >= 1", None
    (isl, isl_spread), (osl, osl_spread) = isl_spec, osl_spec
    kind, rate, conc, num = load
    if not num and "notes" in frame.columns:  # e.g. '500 requests; Poisson arrivals ...'
        n_match = re.search(r"(\d+)\s*(?:requests|prompts)", str(r.notes))
        num = int(n_match.group(1)) if n_match else 0
    return "", ServingObservation(
        source=str(r.source), model=model, hardware=hardware, precision=precision, tp=tp,
        isl=isl, osl=osl, arrival=kind, rate_per_s=rate, concurrency=conc,
        num_requests=num or default_requests, metric=metric[0],
        measured=float(r.value) * metric[1], row=line, raw_metric=str(r.metric),
        raw_model=str(r.model), raw_gpu=str(r.gpu), raw_load=str(r.concurrency_or_qps_or_batch),
        kv_precision=kv_precision, length_spread=max(isl_spread, osl_spread),
        engine=str(r.get("engine", "") or ""), engine_version=str(r.get("engine_version", "") or ""),
        workers=workers)


def ape(predicted: np.ndarray | float, measured: np.ndarray | float) -> np.ndarray:
    """Absolute percentage error."""
    return np.abs(np.asarray(predicted, dtype=float) / np.asarray(measured, dtype=float) - 1.0) * 100.0
