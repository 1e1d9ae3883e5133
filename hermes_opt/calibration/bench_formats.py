"""Serving-benchmark client outputs -> ``BenchmarkRun`` (what was offered, what was measured).

Four clients, told apart by their content, never by the file name:

* **vLLM** ``vllm bench serve --save-result`` (``benchmarks/benchmark_serving.py`` before it): one
  JSON object with ``model_id``, ``request_rate`` (a number or ``"inf"``), ``max_concurrency``,
  ``completed``, ``total_input_tokens``/``total_output_tokens``, ``request_throughput``,
  ``output_throughput``, ``{mean,median,p99}_{ttft,tpot,itl,e2el}_ms`` and, with
  ``--save-detailed``, per-request ``input_lens``/``output_lens``; ``--metadata k=v`` adds keys
  (``tensor_parallel_size`` or ``tp`` is read).
* **SGLang** ``python -m sglang.bench_serving --output-file``: JSON Lines, one object per run
  (``backend``, ``dataset_name``, ``request_rate``, ``max_concurrency``, ``random_input_len``,
  ``random_output_len``, ``random_range_ratio``, ``completed``, totals, ``*_ttft_ms``,
  ``*_tpot_ms``, ``*_itl_ms``, ``*_e2e_latency_ms``; newer versions add ``server_info`` with
  ``model_path`` and ``tp_size``).
* **genai-perf** ``profile_export_genai_perf.json`` and **aiperf** ``profile_export_aiperf.json``:
  one object of metric records ``{"unit": "ms", "avg": .., "p50": .., "p99": ..}``
  (``time_to_first_token``, ``inter_token_latency`` = per-request TPOT, ``request_latency``,
  ``request_throughput``, ``output_token_throughput``, ``input_sequence_length``,
  ``output_sequence_length``) and ``input_config`` with the load (aiperf: ``loadgen``).

Bad input is one ``ConfigError`` naming the file (and line), the field, the value and what is
allowed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ConfigError

CLIENTS = ("vllm", "sglang", "genai-perf", "aiperf")
# canonical metric -> (hermes-sim summary key, statistic); units ms or per second
METRICS = {
    "ttft_mean_ms": ("ttft_ms", "mean"), "ttft_median_ms": ("ttft_ms", "p50"),
    "ttft_p99_ms": ("ttft_ms", "p99"),
    "tpot_mean_ms": ("tpot_ms", "mean"), "tpot_median_ms": ("tpot_ms", "p50"),
    "tpot_p99_ms": ("tpot_ms", "p99"),
    "itl_mean_ms": ("itl_ms", "mean"), "itl_median_ms": ("itl_ms", "p50"),
    "itl_p99_ms": ("itl_ms", "p99"),
    "e2e_mean_ms": ("e2e_ms", "mean"), "e2e_median_ms": ("e2e_ms", "p50"),
    "e2e_p99_ms": ("e2e_ms", "p99"),
    "request_throughput_per_s": ("requests_per_s", ""),
    "output_throughput_tokens_per_s": ("output_tokens_per_s", ""),
}
# vLLM / SGLang flat keys -> canonical metric
_FLAT = {f"{stat}_{name}_ms": f"{metric}_{stat}_ms"
         for name, metric in (("ttft", "ttft"), ("tpot", "tpot"), ("itl", "itl"),
                              ("e2el", "e2e"), ("e2e_latency", "e2e"))
         for stat in ("mean", "median", "p99")}
_FLAT.update({"request_throughput": "request_throughput_per_s",
              "output_throughput": "output_throughput_tokens_per_s"})
# genai-perf / aiperf metric records -> canonical metric prefix
_RECORDS = {"time_to_first_token": "ttft", "inter_token_latency": "tpot", "request_latency": "e2e"}
_STATS = {"avg": "mean", "p50": "median", "p99": "p99"}
# a client's `backend` -> the serving engine it talks to (generic OpenAI backends name none)
_BACKENDS = {"vllm": "vllm", "vllm-chat": "vllm", "sglang": "sglang", "sglang-native": "sglang",
             "sglang-oai": "sglang", "sglang-oai-chat": "sglang", "trt": "trtllm",
             "tensorrt-llm": "trtllm", "lmdeploy": "lmdeploy", "lmdeploy-chat": "lmdeploy",
             "tgi": "tgi", "deepspeed-mii": "deepspeed-mii", "scalellm": "scalellm",
             "llama.cpp": "llama.cpp"}
_TIME_UNITS_MS = {"ms": 1.0, "ns": 1e-6, "us": 1e-3, "s": 1e3, "sec": 1e3}


@dataclass(frozen=True, slots=True, kw_only=True)
class Lengths:
    """Token lengths of the benchmark's requests: the mean, and the range when known."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchmarkRun:
    where: str  # file, and line for JSON Lines
    client: str
    model: str | None  # the model id the client named (HF id or served name)
    tp: int | None  # when the file says (vLLM --metadata, SGLang server_info)
    engine: str | None  # the server kind the client's backend names (vllm, sglang, trtllm, ...)
    arrival: str  # poisson | max_load | closed_loop
    rate_per_s: float | None
    concurrency: int | None
    num_requests: int
    input_tokens: Lengths
    output_tokens: Lengths
    measured: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        load = (f"{self.rate_per_s:g} req/s" if self.arrival == "poisson" else
                f"concurrency {self.concurrency}" if self.arrival == "closed_loop" else "all at once")
        return (f"{self.client}, {self.num_requests} requests, {load}, ISL {self.input_tokens.mean:.0f}"
                f" / OSL {self.output_tokens.mean:.0f}")


def read(path: str) -> list[BenchmarkRun]:
    """Every run in one client output file (a JSON Lines file may hold several)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--from-benchmark={path!r}: cannot read it ({err})") from None
    objects = _objects(text, path)
    return [parse(obj, where) for obj, where in objects]


def _objects(text: str, path: str) -> list[tuple[dict, str]]:
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        return [(whole, path)]
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise ConfigError(f"--from-benchmark={path!r}: unknown format (line {number} is not a "
                              f"JSON object); allowed: {_ALLOWED}")
        out.append((obj, f"{path}:{number}"))
    if not out:
        raise ConfigError(f"--from-benchmark={path!r}: empty; allowed: {_ALLOWED}")
    return out


_ALLOWED = ("vLLM `bench serve --save-result` JSON, SGLang `bench_serving` JSONL, genai-perf "
            "profile_export_genai_perf.json, aiperf profile_export_aiperf.json")


def client_of(obj: dict) -> str | None:
    if isinstance(obj.get("time_to_first_token"), dict) or isinstance(obj.get("request_throughput"),
                                                                        dict):
        config = obj.get("input_config")
        aiperf = (isinstance(config, dict) and "loadgen" in config) or "benchmark_duration" in obj
        return "aiperf" if aiperf else "genai-perf"
    if "mean_e2el_ms" in obj or "model_id" in obj:
        return "vllm"
    if "mean_e2e_latency_ms" in obj or "median_e2e_latency_ms" in obj or (
            "backend" in obj and "dataset_name" in obj):
        return "sglang"
    return None


def parse(obj: dict, where: str) -> BenchmarkRun:
    client = client_of(obj)
    if client is None:
        keys = ", ".join(sorted(obj)[:8])
        raise ConfigError(f"--from-benchmark={where!r}: unknown format (keys {keys}, ...); "
                          f"allowed: {_ALLOWED}")
    if client in ("genai-perf", "aiperf"):
        return _profile_export(obj, where, client)
    return _flat(obj, where, client)


# --- typed reads ------------------------------------------------------------------------------
def _number(value: Any, where: str, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {name}={value!r}: must be a number")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(f"{where}: {name}={value!r}: must be a finite number "
                          f"{'> 0' if positive else '>= 0'}")
    return float(value)


def _required(obj: dict, key: str, where: str, what: str) -> Any:
    if obj.get(key) is None:
        raise ConfigError(f"{where}: {key}: missing ({what})")
    return obj[key]


def _load(rate: Any, concurrency: Any, where: str, rate_name: str,
          conc_name: str) -> tuple[str, float | None, int | None, tuple[str, ...]]:
    """(arrival, rate, concurrency, notes) from a client's request rate and concurrency cap."""
    infinite = rate is None or (isinstance(rate, str) and rate.strip().lower() in ("inf", "infinity"))
    if isinstance(rate, float) and math.isinf(rate):
        infinite = True
    cap = None if concurrency in (None, 0) else int(_number(concurrency, where, conc_name,
                                                            positive=True))
    if infinite:
        if cap is not None:
            return "closed_loop", None, cap, ()
        if rate is None:
            raise ConfigError(f"{where}: {rate_name} and {conc_name}: both missing (the load the "
                              "benchmark offered: a request rate or a concurrency)")
        return "max_load", None, None, ()
    value = _number(rate, where, rate_name, positive=True)
    notes = ((f"{conc_name}={cap} caps a Poisson load of {value:g} req/s; simulated as the "
              "Poisson load alone"),) if cap is not None else ()
    return "poisson", value, None, notes


def _measured(pairs: dict[str, tuple[str, Any]], where: str) -> dict[str, float]:
    """canonical metric -> value, from canonical metric -> (the file's field, its value)."""
    out = {}
    for name, (source, value) in pairs.items():
        if value is not None:
            out[name] = _number(value, where, source)
    if not out:
        raise ConfigError(f"{where}: no measured metric (TTFT, TPOT, ITL, E2E latency or "
                          "throughput); nothing to calibrate on")
    return out


# --- vLLM and SGLang ----------------------------------------------------------------------------
def _flat(obj: dict, where: str, client: str) -> BenchmarkRun:
    completed = int(_number(_required(obj, "completed", where, "successful requests"), where,
                            "completed", positive=True))
    arrival, rate, concurrency, notes = _load(obj.get("request_rate"), obj.get("max_concurrency"),
                                              where, "request_rate", "max_concurrency")
    measured = _measured({canon: (key, obj.get(key)) for key, canon in _FLAT.items()
                          if obj.get(key) is not None}, where)
    server = obj.get("server_info") if isinstance(obj.get("server_info"), dict) else {}
    model = obj.get("model_id") or server.get("model_path")
    tp = next((obj.get(k) or server.get(k) for k in ("tensor_parallel_size", "tp", "tp_size")
               if obj.get(k) or server.get(k)), None)
    if obj.get("dataset_name") not in (None, "random"):
        notes += (f"dataset {obj.get('dataset_name')}: only the mean lengths are known; "
                  "simulated as fixed at the mean",)
    return BenchmarkRun(
        where=where, client=client, model=str(model) if model else None,
        tp=int(_number(tp, where, "tp", positive=True)) if tp is not None else None,
        engine=_BACKENDS.get(str(obj.get("backend", "")).lower()),
        arrival=arrival, rate_per_s=rate, concurrency=concurrency, num_requests=completed,
        input_tokens=_flat_lengths(obj, where, "input", completed),
        output_tokens=_flat_lengths(obj, where, "output", completed),
        measured=measured, notes=notes)


def _flat_lengths(obj: dict, where: str, side: str, completed: int) -> Lengths:
    lens = obj.get(f"{side}_lens")
    if isinstance(lens, list) and lens:
        values = [_number(v, where, f"{side}_lens[]") for v in lens]
        values = [v for v in values if v > 0] or values
        return Lengths(mean=sum(values) / len(values), low=min(values), high=max(values))
    total = obj.get(f"total_{side}_tokens")
    if total is None:
        raise ConfigError(f"{where}: total_{side}_tokens: missing (and no {side}_lens); the "
                          "request lengths are needed to re-simulate the benchmark")
    mean = _number(total, where, f"total_{side}_tokens", positive=True) / completed
    nominal, ratio = obj.get(f"random_{side}_len"), obj.get("random_range_ratio")
    if obj.get("dataset_name") == "random" and nominal and ratio is not None:
        # SGLang's random dataset draws each length uniformly from [len x ratio, len]
        high = _number(nominal, where, f"random_{side}_len", positive=True)
        low = max(1.0, high * _number(ratio, where, "random_range_ratio"))
        return Lengths(mean=mean, low=min(low, mean), high=max(high, mean))
    return Lengths(mean=mean, low=mean, high=mean)


# --- genai-perf and aiperf ------------------------------------------------------------------
def _stat(obj: dict, name: str, stat: str, where: str) -> float | None:
    record = obj.get(name)
    if not isinstance(record, dict) or record.get(stat) is None:
        return None
    value = _number(record[stat], where, f"{name}.{stat}")
    unit = str(record.get("unit", "ms")).strip().lower()
    if name in _RECORDS:
        if unit not in _TIME_UNITS_MS:
            raise ConfigError(f"{where}: {name}.unit={unit!r}: allowed: {', '.join(_TIME_UNITS_MS)}")
        value *= _TIME_UNITS_MS[unit]
    return value


def _find(config: Any, keys: tuple[str, ...]) -> Any:
    """The first of ``keys`` anywhere in a nested input_config (its layout differs by version)."""
    if isinstance(config, dict):
        for key in keys:
            if config.get(key) is not None:
                return config[key]
        for value in config.values():
            found = _find(value, keys)
            if found is not None:
                return found
    return None


def _profile_export(obj: dict, where: str, client: str) -> BenchmarkRun:
    config = obj.get("input_config") if isinstance(obj.get("input_config"), dict) else {}
    pairs = {f"{prefix}_{canon}_ms": (f"{name}.{stat}", _stat(obj, name, stat, where))
             for name, prefix in _RECORDS.items() for stat, canon in _STATS.items()}
    for canon, name in (("request_throughput_per_s", "request_throughput"),
                        ("output_throughput_tokens_per_s", "output_token_throughput")):
        pairs[canon] = (f"{name}.avg", _stat(obj, name, "avg", where))
    measured = _measured(pairs, where)
    lengths = {}
    for side, name in (("input", "input_sequence_length"), ("output", "output_sequence_length")):
        mean = _stat(obj, name, "avg", where)
        if mean is None or mean <= 0:
            raise ConfigError(f"{where}: {name}.avg: missing (the request lengths are needed to "
                              "re-simulate the benchmark)")
        low, high = _stat(obj, name, "min", where), _stat(obj, name, "max", where)
        lengths[side] = Lengths(mean=mean, low=low if low else mean, high=high if high else mean)
    count = _stat(obj, "request_count", "avg", where) or _find(config, ("request_count",))
    if count is None:
        raise ConfigError(f"{where}: request_count: missing (how many requests were measured)")
    rate = _find(config, ("request_rate",))
    concurrency = _find(config, ("concurrency",))
    if isinstance(concurrency, dict):  # genai-perf's config file form: stimulus {concurrency: N}
        concurrency = None
    arrival, rate, concurrency, notes = _load(rate if rate is not None else
                                              ("inf" if concurrency else None), concurrency, where,
                                              "input_config.request_rate",
                                              "input_config.concurrency")
    model = _find(config, ("model_names", "model"))
    if isinstance(model, list):
        model = model[0] if model else None
    return BenchmarkRun(
        where=where, client=client, model=str(model) if model else None, tp=None, engine=None,
        arrival=arrival, rate_per_s=rate, concurrency=concurrency,
        num_requests=int(_number(count, where, "request_count", positive=True)),
        input_tokens=lengths["input"], output_tokens=lengths["output"], measured=measured,
        notes=notes)
