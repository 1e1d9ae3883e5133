"""Serving-benchmark client outputs are read by content (vLLM, SGLang, genai-perf, aiperf) into
one shape; bad files are one line naming the file, the field, the value and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path

import bench_synth
import pytest

from hermes_opt.calibration import bench_formats
from sim.errors import ConfigError

REAL = Path(__file__).parents[1] / "data" / "benchmarks" / "sglang_llama3_3_70b_4xh200_online.jsonl"
SUMMARY = {"duration_s": 50.0, "requests_completed": 100, "requests_per_s": 2.0,
           "output_tokens_per_s": 400.0, "total_tokens_per_s": 2400.0, "input_tokens_per_s": 2000.0,
           **{k: {"mean": m, "p50": m * 0.9, "p90": m * 1.5, "p99": m * 2.0}
              for k, m in (("ttft_ms", 120.0), ("tpot_ms", 30.0), ("itl_ms", 29.0),
                           ("e2e_ms", 6100.0))}}
LOADS = {"poisson": dict(rate=2.0, concurrency=None), "closed_loop": dict(rate=None, concurrency=8)}


@pytest.mark.parametrize("client", bench_synth.WRITERS)
@pytest.mark.parametrize("load", LOADS)
def test_each_client_reads_to_the_same_run(tmp_path, client, load):
    obj = bench_synth.WRITERS[client](SUMMARY, isl=1000, osl=200, n=100, **LOADS[load])
    # a misleading extension: the format comes from the content
    path = bench_synth.write(tmp_path / "result.txt", client, [obj])
    (run,) = bench_formats.read(str(path))
    assert run.client == client
    assert run.arrival == load
    assert (run.rate_per_s, run.concurrency) == (LOADS[load]["rate"], LOADS[load]["concurrency"])
    assert run.num_requests == 100
    assert (run.input_tokens.mean, run.output_tokens.mean) == (1000, 200)
    assert run.input_tokens.low == run.input_tokens.high == 1000
    assert run.measured["ttft_mean_ms"] == pytest.approx(120.0)
    assert run.measured["ttft_median_ms"] == pytest.approx(108.0)
    assert run.measured["tpot_p99_ms"] == pytest.approx(60.0)
    assert run.measured["e2e_mean_ms"] == pytest.approx(6100.0)
    assert run.measured["output_throughput_tokens_per_s"] == pytest.approx(400.0)
    assert run.model == bench_synth.HF_ID


def test_a_time_unit_other_than_ms_is_converted(tmp_path):
    obj = bench_synth.genai_perf(SUMMARY, rate=2.0, concurrency=None, isl=10, osl=5, n=100)
    obj["time_to_first_token"] = {"unit": "ns", "avg": 120e6, "p50": 100e6}
    (run,) = bench_formats.read(str(bench_synth.write(tmp_path / "g.json", "genai-perf", [obj])))
    assert run.measured["ttft_mean_ms"] == pytest.approx(120.0)


def test_the_published_sglang_file_reads_as_seven_runs():
    runs = bench_formats.read(str(REAL))
    assert [r.client for r in runs] == ["sglang"] * 7
    assert [r.rate_per_s for r in runs] == [1.0, 2.0, 4.0, 8.0, 16.0, 4.0, 8.0]
    assert runs[0].num_requests == 300
    # random dataset, range ratio 0: lengths up to 1024, mean from the file's totals
    assert runs[0].input_tokens.mean == pytest.approx(152612 / 300)
    assert (runs[0].input_tokens.low, runs[0].input_tokens.high) == (1.0, 1024.0)
    assert runs[5].input_tokens.low == runs[5].input_tokens.high  # ShareGPT: mean only
    assert set(runs[0].measured) == {"ttft_median_ms", "itl_median_ms", "e2e_mean_ms",
                                     "e2e_median_ms", "output_throughput_tokens_per_s"}
    assert runs[0].where.endswith(".jsonl:1")


def _vllm(**changes) -> dict:
    obj = bench_synth.vllm(SUMMARY, rate=2.0, concurrency=None, isl=100, osl=50, n=100)
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not ...}


@pytest.mark.parametrize("text, needle", [
    ('{"hello": 1}', "unknown format (keys hello"),
    ("not json at all\n", "unknown format (line 1 is not a JSON object)"),
    ("", "empty"),
    (json.dumps(_vllm(completed=...)), "completed: missing"),
    (json.dumps(_vllm(mean_ttft_ms=float("nan"))), "mean_ttft_ms=nan: must be a finite number"),
    (json.dumps(_vllm(mean_tpot_ms=float("inf"))), "mean_tpot_ms=inf: must be a finite number"),
    (json.dumps(_vllm(mean_tpot_ms="fast")), "mean_tpot_ms='fast': must be a number"),
    (json.dumps(_vllm(request_rate=-1)), "request_rate=-1: must be a finite number > 0"),
    (json.dumps(_vllm(total_input_tokens=...)), "total_input_tokens: missing"),
    (json.dumps(_vllm(request_rate="inf", max_concurrency=None)
                | {"request_rate": None}), "request_rate and max_concurrency: both missing"),
])
def test_bad_files_are_one_line_naming_file_and_field(tmp_path, text, needle):
    path = tmp_path / "bench.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        bench_formats.read(str(path))
    message = str(err.value)
    assert needle in message
    assert str(path) in message and "\n" not in message


def test_a_file_with_no_metric_says_so(tmp_path):
    obj = {k: v for k, v in _vllm().items() if not k.endswith(("_ms", "throughput"))}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(ConfigError, match="no measured metric"):
        bench_formats.read(str(path))
