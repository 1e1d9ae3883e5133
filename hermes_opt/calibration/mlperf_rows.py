"""MLPerf Inference results tables -> one submission record per (system, benchmark, scenario).

A table has the columns of ``reference/measurements.csv`` (one row per metric of a submission's
``mlperf_log_summary.txt``, as ``reference/mlperf_v4.1.csv``). Nothing here is specific to one
round: benchmark ids, their datasets and latency constraints come from
``conf/tables/mlperf_benchmarks.yaml``, hardware/model spellings from ``conf/tables/aliases.yaml``,
the scenario from the ``concurrency_or_qps_or_batch`` column ("Offline (...)", "Server:
target_qps=8.6 (Poisson)", "Interactive: target_qps=...").

Rows that cannot be simulated are kept with a reason (coverage) and never stop the table: a
CPU-only row (``num_gpus`` 0), a GPU count or value that is not a positive number, an unknown
benchmark, GPU or precision. A malformed file (unreadable, missing or unknown columns) is one
``ConfigError`` naming it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from hermes_opt.compose import aliases, catalog
from hermes_opt.compose.csv_input import MAX_MEASURED, read_csv
from hermes_opt.compose.deployment import MAX_DEVICES
from sim import LengthKind, LengthSpec
from sim.errors import ConfigError
from sim.workload.spec import MAX_RATE_PER_S

MIN_TARGET_QPS = 1 / 86_400  # one query a day: below that a Server scenario is no benchmark

COLUMNS = ("source", "url", "engine", "engine_version", "model", "precision", "gpu", "num_gpus",
           "tp", "pp", "isl", "osl", "concurrency_or_qps_or_batch", "metric", "value", "unit", "notes")
REQUIRED = ("model", "precision", "gpu", "num_gpus", "concurrency_or_qps_or_batch", "metric", "value")
SCENARIOS = ("Offline", "Server", "Interactive")
BENCHMARKS_FILE = catalog.CONF_DIR / "tables" / "mlperf_benchmarks.yaml"
LATENCY_UNITS = {"ms": 1.0, "s": 1e3, "us": 1e-3}

_user_benchmarks: tuple[str, ...] = ()


# --- the benchmark table ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Constraints:
    ttft_p99_ms: float
    tpot_p99_ms: float
    source: str  # 'table' (mlperf_benchmarks.yaml) or 'notes' (the row's own notes)


@dataclass(frozen=True, slots=True)
class Benchmark:
    key: str
    ids: tuple[str, ...]  # normalized
    model: str
    samples: int
    isl: LengthSpec
    osl: LengthSpec
    constraints: dict[str, Constraints]


@dataclass(frozen=True, slots=True)
class BenchmarkTable:
    benchmarks: tuple[Benchmark, ...]
    metrics: dict[str, str]

    def find(self, raw: str) -> Benchmark | None:
        text = norm_id(raw)
        return next((b for b in self.benchmarks if text in b.ids), None)


def norm_id(raw: object) -> str:
    return "-".join(t for t in re.split(r"[^a-z0-9]+", str(raw).strip().lower()) if t)


def use_benchmark_tables(paths: list[str] | tuple[str, ...] = ()) -> BenchmarkTable:
    global _user_benchmarks
    for p in paths:
        if not Path(p).is_file():
            raise ConfigError(f"--mlperf-benchmarks={p}: no such file")
    wanted = tuple(str(Path(p).resolve()) for p in paths)
    merged = _merged_benchmarks(wanted)  # raises on a malformed table, before it is used
    _user_benchmarks = wanted
    return merged


def benchmark_table() -> BenchmarkTable:
    return _merged_benchmarks(_user_benchmarks)


@cache
def _merged_benchmarks(user: tuple[str, ...]) -> BenchmarkTable:
    parts = [_read_benchmarks(Path(p)) for p in user] + [_read_benchmarks(BENCHMARKS_FILE)]
    metrics: dict[str, str] = {}
    for t in reversed(parts):  # user tables override
        metrics.update(t.metrics)
    return BenchmarkTable(tuple(b for t in parts for b in t.benchmarks), metrics)


def _length(where: str, node: object) -> LengthSpec:
    if not isinstance(node, dict):
        raise ConfigError(f"{where}={node!r}: must be a mapping {{kind, mean, std, min, max}}")
    kinds = [k.value for k in LengthKind if k is not LengthKind.TRACE]
    kind = str(node.get("kind", "fixed"))
    if kind not in kinds:
        raise ConfigError(f"{where}.kind={kind!r}: allowed: {', '.join(kinds)}")
    try:
        mean, std = float(node["mean"]), float(node.get("std", 0.0))
        lo, hi = int(node.get("min", 1)), int(node.get("max", 1_000_000))
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{where}={node!r}: needs a number mean (and optional std, integer "
                          "min/max)") from None
    if not (math.isfinite(mean) and mean > 0 and math.isfinite(std) and std >= 0 and 1 <= lo <= hi):
        raise ConfigError(f"{where}={node!r}: needs mean > 0, std >= 0, 1 <= min <= max")
    return LengthSpec(kind=LengthKind(kind), mean=mean, std=std, min_tokens=lo, max_tokens=hi)


@cache
def _read_benchmarks(path: Path) -> BenchmarkTable:
    where = f"mlperf-benchmarks={path}"
    try:
        node = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        first = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
        raise ConfigError(f"{where}: not a readable YAML file ({first})") from None
    if not isinstance(node, dict) or any(k not in ("metrics", "benchmarks") for k in node):
        raise ConfigError(f"{where}: must be a mapping with keys metrics, benchmarks")
    metrics = node.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise ConfigError(f"{where}: metrics: must map table metric names to figures")
    out = []
    for key, b in (node.get("benchmarks") or {}).items():
        w = f"{where}: benchmarks.{key}"
        if not isinstance(b, dict):
            raise ConfigError(f"{w}: must be a mapping")
        allowed = ("ids", "model", "dataset", "isl", "osl", "constraints")
        for k in b:
            if k not in allowed:
                raise ConfigError(f"{w}.{k}: unknown key; allowed: {', '.join(allowed)}")
        ids = b.get("ids") or [key]
        if not isinstance(ids, list):
            raise ConfigError(f"{w}.ids={ids!r}: must be a list of benchmark ids")
        model = str(b.get("model", ""))
        if not model:
            raise ConfigError(f"{w}.model: missing (a catalog model name)")
        samples = (b.get("dataset") or {}).get("samples", 24576)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ConfigError(f"{w}.dataset.samples={samples!r}: must be an integer >= 1")
        cons = {}
        for scen, c in (b.get("constraints") or {}).items():
            if scen not in SCENARIOS[1:]:
                raise ConfigError(f"{w}.constraints.{scen}: allowed scenarios: Server, Interactive")
            try:
                cons[scen] = Constraints(float(c["ttft_p99_ms"]), float(c["tpot_p99_ms"]), "table")
            except (KeyError, TypeError, ValueError):
                raise ConfigError(f"{w}.constraints.{scen}={c!r}: needs ttft_p99_ms and "
                                  "tpot_p99_ms numbers") from None
        out.append(Benchmark(key=str(key), ids=tuple(norm_id(i) for i in ids), model=model,
                             samples=samples, isl=_length(f"{w}.isl", b.get("isl")),
                             osl=_length(f"{w}.osl", b.get("osl")), constraints=cons))
    return BenchmarkTable(tuple(out), {str(k).lower(): str(v) for k, v in metrics.items()})


# --- parsing cells ----------------------------------------------------------------------------
_SCENARIO = re.compile(r"\s*(offline|server|interactive|singlestream|multistream)\b(.*)", re.I | re.S)
SCENARIO_NAMES = {"offline": "Offline", "server": "Server", "interactive": "Interactive",
                  "singlestream": "SingleStream", "multistream": "MultiStream"}
_QPS = re.compile(r"target_qps\s*=\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)", re.I)
_LIMIT = r"p99\s*{}\s*(?:<=|=<|≤|<)\s*([0-9]*\.?[0-9]+)\s*(ms|s|us)\b"


def parse_scenario(text: object) -> tuple[str, float | None] | None:
    """'Offline (all samples issued at once)' -> ('Offline', None); 'Server: target_qps=8.6
    (Poisson)' -> ('Server', 8.6); 'Interactive: target_qps=3' -> ('Interactive', 3.0); else None."""
    m = _SCENARIO.match(str(text))
    if not m:
        return None
    scenario = SCENARIO_NAMES[m.group(1).lower()]
    q = _QPS.search(m.group(2))
    return scenario, (float(q.group(1)) if q else None)


def parse_constraints(notes: object) -> Constraints | None:
    """'constraints: p99 TTFT<=2000 ms, p99 TPOT<=200 ms' -> Constraints(2000, 200, 'notes')."""
    text = str(notes)
    ttft = re.search(_LIMIT.format("TTFT"), text, re.I)
    tpot = re.search(_LIMIT.format("TPOT"), text, re.I)
    if not (ttft and tpot):
        return None
    return Constraints(float(ttft.group(1)) * LATENCY_UNITS[ttft.group(2).lower()],
                       float(tpot.group(1)) * LATENCY_UNITS[tpot.group(2).lower()], "notes")


def note_field(notes: object, name: str) -> str:
    m = re.search(rf"(?:^|;)\s*{name}\s*=\s*([^;]*)", str(notes))
    return m.group(1).strip() if m else ""


def weights_kind(precision: object, notes: object) -> str:
    """'fp8' | 'quantized' (fp16 + quantization: TensorRT-LLM FP8 in practice) | 'bf16' |
    'nvfp4' | 'mxfp4' | '' (unknown)."""
    text = f"{precision} {note_field(notes, 'weights')}".lower()
    if "mxfp4" in text:
        return "mxfp4"
    if "fp4" in text:
        return "nvfp4"
    if "fp8" in text or "int8" in text:
        return "fp8"
    if re.search(r"\b(fp16|bf16|float16|bfloat16)\b", text):
        quant = re.search(r"quantiz", text) and not re.search(r"\(none\)", text)
        return "quantized" if quant else "bf16"
    return ""


# --- submissions -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Metric:
    figure: str  # e.g. output_tokens_per_s, ttft_ms.p99
    value: float  # in the figure's unit (ms for latencies)
    line: int  # line in the file (header = 1)
    raw: str


@dataclass(slots=True)
class Submission:
    key: str
    file: str
    benchmark_raw: str
    scenario: str
    target_qps: float | None
    gpu_raw: str
    num_gpus: int
    weights: str
    submitter: str
    system: str
    engine_raw: str = ""  # the table's `engine` column (e.g. "TensorRT 10.2.0, CUDA 12.4")
    lines: list[int] = field(default_factory=list)
    benchmark: Benchmark | None = None
    hardware: str = ""
    model: str = ""
    constraints: Constraints | None = None
    metrics: dict[str, Metric] = field(default_factory=dict)
    reason: str = ""  # why the submission cannot be simulated ('' = it can)
    line_reasons: dict[int, str] = field(default_factory=dict)  # rows of it not compared, and why


def _submission_key(r: pd.Series, scenario: str) -> str:
    m = re.search(r"([^/]+)/results/([^/]+)/([^/]+)/([^/]+)/", str(r.get("url", "")))
    if m:  # <submitter>/results/<system>/<benchmark>/<scenario>/...
        return f"{m.group(1)}/{m.group(2)}/{m.group(3)}/{scenario}"
    system = note_field(r.get("notes", ""), "system") or str(r.get("source", ""))
    return f"{system}|{r.gpu}x{r.num_gpus}/{r.model}/{scenario}"


def read_table(path: str | Path, field: str = "measurements"
               ) -> tuple[list[Submission], dict[int, str], pd.DataFrame]:
    """(submissions, {line: reason} for rows that are no MLPerf scenario row, the frame)."""
    path = Path(path)
    frame = read_csv(path, field, REQUIRED)
    unknown = [c for c in frame.columns if c not in COLUMNS]
    if unknown:
        raise ConfigError(f"{field}={str(path)!r}: unknown column(s) {unknown}; allowed: "
                          f"{', '.join(COLUMNS)}")
    table = benchmark_table()
    subs: dict[str, Submission] = {}
    other: dict[int, str] = {}
    for pos, (_, r) in enumerate(frame.iterrows()):
        line = pos + 2
        parsed = parse_scenario(r.concurrency_or_qps_or_batch)
        if parsed is None:
            other[line] = (f"not an MLPerf scenario row (concurrency_or_qps_or_batch="
                           f"{str(r.concurrency_or_qps_or_batch)[:40]!r}; allowed: Offline ..., "
                           "Server: target_qps=<n>, Interactive: target_qps=<n>)")
            continue
        scenario, qps = parsed
        if scenario not in SCENARIOS:  # LoadGen's edge scenarios: one query at a time
            other[line] = (f"LoadGen scenario {scenario} not simulated (Offline, Server and "
                           "Interactive are)")
            continue
        gpus, value = _number(r.num_gpus), _number(r.value)
        why = _gpus_reason(r.num_gpus, gpus) or _value_reason(r.value, value) or _qps_reason(qps)
        if why:  # a row the simulator cannot express: counted, the table goes on
            other[line] = why
            continue
        key = _submission_key(r, scenario)
        sub = subs.get(key)
        if sub is None:
            sub = subs[key] = _new_submission(path, key, r, scenario, qps, int(gpus), table)
        sub.lines.append(line)
        raw_metric = str(r.metric).strip()
        name = re.sub(r"^(offline|server|interactive)_", "", raw_metric.lower())
        name = re.sub(r"[^a-z0-9]+", "_", name).strip("_")  # "Tokens per second" -> tokens_per_second
        figure = table.metrics.get(name)
        unit = str(r.get("unit", "")).strip().lower().split(" ")[0]
        if figure is None:
            sub.line_reasons[line] = (f"metric not mapped ({raw_metric[:40]}; add it to metrics: in "
                                      "conf/tables/mlperf_benchmarks.yaml)")
            continue
        scale = 1.0
        if "_ms." in figure:
            if unit not in LATENCY_UNITS:
                sub.line_reasons[line] = f"metric not mapped (latency unit {unit!r}; allowed ms, s, us)"
                continue
            scale = LATENCY_UNITS[unit]
        sub.metrics[figure] = Metric(figure, value * scale, line, raw_metric)
    return list(subs.values()), other, frame


def _number(raw: object) -> float:
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _gpus_reason(raw: object, gpus: float) -> str:
    """Why a row's ``num_gpus`` cannot be simulated ('' when it can)."""
    if gpus == 0:
        return ("CPU-only system (num_gpus=0): the MLPerf scenarios are simulated on accelerators "
                "(num_gpus >= 1)")
    if not (math.isfinite(gpus) and gpus >= 1 and gpus == int(gpus)):
        return f"num_gpus={str(raw)[:20]!r}: not an integer >= 1 (accelerators of the system)"
    if gpus > MAX_DEVICES:
        return f"num_gpus={str(raw)[:20]!r}: more than {MAX_DEVICES:,} accelerators (no system has)"
    return ""


def _value_reason(raw: object, value: float) -> str:
    if not (math.isfinite(value) and value > 0):
        return f"value={str(raw)[:20]!r}: not a finite number > 0 (no result to compare)"
    if value > MAX_MEASURED:
        return (f"value={str(raw)[:20]!r}: above {MAX_MEASURED:g} (no measured time, rate or "
                f"count is; a corrupt cell)")
    return ""


def _qps_reason(qps: float | None) -> str:
    if qps is not None and not MIN_TARGET_QPS <= qps <= MAX_RATE_PER_S:
        return (f"target_qps={qps:g}: not in {MIN_TARGET_QPS:.3g}..{MAX_RATE_PER_S:g} queries/s "
                f"(one a day to a million a second)")
    return ""


# MLPerf Power's energy-efficient configurations ("..., MaxQ, TensorRT", "..._TRT_MaxQ")
MAXQ = re.compile(r"(?<![a-z])maxq(?![a-z])", re.I)


def _new_submission(path: Path, key: str, r: pd.Series, scenario: str, qps: float | None,
                    gpus: int, table: BenchmarkTable) -> Submission:
    notes = r.get("notes", "")
    sub = Submission(key=key, file=path.name, benchmark_raw=str(r.model), scenario=scenario,
                     target_qps=qps, gpu_raw=str(r.gpu), num_gpus=gpus,
                     weights=weights_kind(r.precision, notes),
                     submitter=note_field(notes, "submitter"), system=note_field(notes, "system"),
                     engine_raw=str(r.get("engine", "") or ""))
    sub.benchmark = table.find(r.model)
    sub.hardware, hw_reason = aliases.resolve("hardware", r.gpu)
    if not hw_reason:
        sub.hardware = catalog.board_of(sub.hardware, gpus)
    if sub.benchmark is None:
        model_alias = aliases.alias("model", r.model)
        sub.reason = (f"benchmark {str(r.model)[:40]!r} not in conf/tables/mlperf_benchmarks.yaml"
                      + (f" (model spelling -> {model_alias})" if model_alias else ""))
        return sub
    sub.model = sub.benchmark.model if sub.benchmark.model in catalog.options("model") else ""
    sub.constraints = parse_constraints(notes) or sub.benchmark.constraints.get(scenario)
    if hw_reason:
        sub.reason = hw_reason
    elif MAXQ.search(f"{sub.system} {key}"):
        sub.reason = ("MaxQ system (MLPerf Power: GPUs run under a lowered power limit the row "
                      "does not give; simulated, it would be the full-power GPU)")
    elif not sub.model:
        sub.reason = f"model {sub.benchmark.model} (benchmark {sub.benchmark.key}) not in the catalog"
    elif not sub.weights:
        sub.reason = f"precision not understood ({str(r.precision)[:30]!r})"
    elif scenario != "Offline" and qps is None:
        sub.reason = f"{scenario} row without target_qps ({str(r.concurrency_or_qps_or_batch)[:40]!r})"
    elif scenario != "Offline" and sub.constraints is None:
        sub.reason = (f"no latency constraints for {sub.benchmark.key} {scenario} (notes or "
                      "conf/tables/mlperf_benchmarks.yaml)")
    return sub
