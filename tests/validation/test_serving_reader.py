"""Serving tables read whole (issue 26): FP4, per-GPU and percentile metrics, engine settings by
engine and version, and a reason for every row that is not simulated."""

from __future__ import annotations

import csv
import math

import pytest

from hermes_opt.calibration import serving, serving_engines
from hermes_opt.calibration.observations import load_serving
from hermes_opt.calibration.serving_metrics import parse_metric
from hermes_opt.compose import aliases
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError

COLUMNS = ("source", "engine", "engine_version", "model", "precision", "gpu", "num_gpus", "tp",
           "isl", "osl", "concurrency_or_qps_or_batch", "metric", "value", "unit", "notes")


@pytest.fixture(autouse=True)
def shipped_aliases():
    aliases.use_tables([])
    yield


@pytest.mark.parametrize("name,unit,expected", [
    ("output_throughput_total", "tokens/s", ("output_tokens_per_s", 1.0)),
    ("output_throughput", "tok/s", ("output_tokens_per_s", 1.0)),
    ("output_tok_s", "", ("output_tokens_per_s", 1.0)),
    ("Output token throughput (tok/s)", "", ("output_tokens_per_s", 1.0)),
    ("output_throughput_per_gpu", "tok/s/gpu", ("output_tokens_per_s_per_gpu", 1.0)),
    ("total_token_throughput", "", ("total_tokens_per_s", 1.0)),
    ("req_per_s", "", ("requests_per_s", 1.0)),
    ("request_throughput", "req/s", ("requests_per_s", 1.0)),
    ("mean_TTFT", "ms", ("ttft_ms.mean", 1.0)),
    ("avg_ttft_ms", "", ("ttft_ms.mean", 1.0)),
    ("p95_ttft_ms", "", ("ttft_ms.p95", 1.0)),
    ("P99 TPOT", "s", ("tpot_ms.p99", 1000.0)),
    ("median_E2E_latency", "ms", ("e2e_ms.p50", 1.0)),
    ("p90_itl", "ms", ("itl_ms.p90", 1.0)),
    ("TTFT", "ms", ("ttft_ms.mean", 1.0)),
    ("total_duration", "s", ("duration_s", 1.0)),
    ("mean_TTFT_change_vs_HBM_only", "%", None), ("ITL_linear_fit_slope", "ms/token", None),
    ("e2e_request_time", "ms", None), ("decode_time_per_token (TBT)", "ms", None),
    ("KV_transfer_time", "ms", None), ("p95_itl", "ms", None), ("", "", None),
])
def test_metric_names(name, unit, expected):
    assert parse_metric(name, unit) == expected


@pytest.mark.parametrize("engine,version,label,fallback", [
    ("TensorRT-LLM via Triton tensorrtllm_backend", "0.14.0", "trtllm 0.14", False),
    ("TensorRT-LLM (trtllm-bench throughput)", "0.17", "trtllm 0.17", False),
    ("TensorRT-LLM 1.0rc", "", "trtllm 0.17", True),
    ("vLLM", "v0.10.1", "vllm 0.8", True),
    ("vLLM (FlashAttention-3)", "v0.19.1 (FA3)", "vllm 0.8", True),
    ("vLLM", "0.6.0", "vllm 0.6", False),
    ("vllm", "0.4.3", "vllm 0.6", True),  # older than any listed: the oldest
    ("SGLang 0.5.2", "", "sglang 0.3", True),
    ("SGLang", "sglang main@43124cdd (2026-07-15)", "sglang 0.3", True),
])
def test_engine_settings_by_name_and_version(engine, version, label, fallback):
    s = serving_engines.resolve(engine, version)
    assert s.label == label and bool(s.note) == fallback, s.note
    if fallback:
        assert label in s.note


def test_engine_not_named_takes_the_recorded_default():
    s = serving_engines.resolve("llama.cpp", "b4500")
    assert s is serving_engines.DEFAULT and s.max_num_seqs == 256
    assert serving_engines.resolve("", "", "vLLM blog: FP8 KV cache").label == "vllm 0.8"


def _write(path, rows):
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in COLUMNS})
    return path


BASE = {"source": "engine table 2026", "engine": "vLLM", "engine_version": "v0.10.1",
        "model": "meta-llama/Llama-3.1-8B-Instruct", "gpu": "NVIDIA B200", "num_gpus": 1, "tp": 1,
        "isl": 1024, "osl": 128, "concurrency_or_qps_or_batch": "QPS=4", "unit": "ms"}


def test_rows_read_whole_with_a_reason_for_each_other(tmp_path):
    path = _write(tmp_path / "t.csv", [
        {**BASE, "precision": "NVFP4", "metric": "output_throughput_per_gpu", "value": 900, "unit": "tok/s"},
        {**BASE, "precision": "FP8", "metric": "p95_TTFT", "value": 40},
        {**BASE, "precision": "MXFP4", "metric": "p99_tpot", "value": 9},
        {**BASE, "precision": "FP8", "metric": "p99_tpot", "value": "n/a"},
        {**BASE, "precision": "FP8", "metric": "goodput_ratio", "value": 1},
        {**BASE, "precision": "BF16", "gpu": "CPU: Intel Xeon 6980P x2 socket(s)", "metric": "TTFT",
         "value": 300},
        {**BASE, "precision": "FP8", "gpu": "NVIDIA L4", "metric": "mean_TTFT", "value": 30},  # l4: no entry
        {**BASE, "precision": "FP6", "metric": "mean_TTFT", "value": 30},
        {**BASE, "precision": "FP8", "isl": "ShareGPT", "metric": "mean_TTFT", "value": 30},
    ])
    reasons: dict[int, str] = {}
    rows, _ = load_serving(path, strict=False, reasons=reasons)
    assert [(o.row, o.precision, o.kv_precision, o.metric) for o in rows] == [
        (2, "nvfp4", "fp8", "output_tokens_per_s_per_gpu"), (3, "fp8", "fp8", "ttft_ms.p95"),
        (4, "mxfp4", "fp8", "tpot_ms.p99")]
    assert rows[0].hardware == "b200" and rows[0].engine_version == "v0.10.1"
    assert "not a finite number > 0" in reasons[5] and "metric not mapped" in reasons[6]
    assert "CPU-only" in reasons[7] and "l4" in reasons[8] and "not in the catalog" in reasons[8]
    assert "precision not understood" in reasons[9] and "length distribution" in reasons[10]
    with pytest.raises(ConfigError, match=r":5: value=nan: must be a finite number > 0"):
        load_serving(path)  # a fit never uses such a row silently


def test_per_gpu_and_p95_figures_are_simulated(tmp_path):
    path = _write(tmp_path / "t.csv", [
        {**BASE, "tp": 2, "precision": "FP8", "metric": m, "value": 1, "unit": u,
         "concurrency_or_qps_or_batch": "QPS=20 (200 requests)"}
        for m, u in (("output_throughput", "tok/s"), ("output_throughput_per_gpu", "tok/s"),
                     ("p90_ttft", "ms"), ("p95_ttft", "ms"), ("p99_ttft", "ms"))])
    rows, _ = load_serving(path)
    total, per_gpu, p90, p95, p99 = serving.simulate_rows(rows, RooflineParams())
    assert per_gpu == pytest.approx(total / 2)
    assert all(math.isfinite(v) for v in (p90, p95, p99)) and p90 <= p95 <= p99
    assert "engine vllm 0.8" in serving.describe(rows[0]) and "max_num_seqs" in serving.describe(rows[0])
