"""MLPerf results tables: scenario / constraint parsing, submissions, coverage reasons, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hermes_opt.calibration import mlperf_rows as mr
from hermes_opt.compose import aliases
from sim.errors import ConfigError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "mlperf_v4.1.csv"
NOTES = ("MLPerf Inference v5.0 closed; submitter=Acme; system=Acme 1x; result=VALID; "
         "weights=fp16 (quantization, affine fusion); constraints: p99 TTFT<=2000 ms, p99 TPOT<=200 ms")
URL = "https://github.com/mlcommons/inference_results_v5.0/blob/main/closed/Acme/results/{sys}/{bench}/{scen}/performance/run_1/mlperf_log_summary.txt"


def write_table(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=mr.COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in mr.COLUMNS})
    return path


def row(metric, value, *, scen="Offline (all samples issued at once)", bench="llama2-70b-99",
        gpu="NVIDIA H100-SXM5-80GB", gpus="1.0", sys="S1", unit="tokens/s (system)", notes=NOTES):
    scen_dir = scen.split(":")[0].split(" ")[0]
    return {"source": "MLPerf v5.0", "url": URL.format(sys=sys, bench=bench, scen=scen_dir),
            "model": bench, "precision": "fp16", "gpu": gpu, "num_gpus": gpus,
            "isl": "benchmark dataset", "osl": "benchmark dataset",
            "concurrency_or_qps_or_batch": scen, "metric": metric, "value": value, "unit": unit,
            "notes": notes}


@pytest.fixture(autouse=True)
def shipped_tables():
    aliases.use_tables([])
    mr.use_benchmark_tables([])
    yield
    mr.use_benchmark_tables([])


@pytest.mark.parametrize("text,expected", [
    ("Offline (all samples issued at once)", ("Offline", None)),
    ("Server: target_qps=8.6 (Poisson)", ("Server", 8.6)),
    ("server: target_qps=2 (Poisson)", ("Server", 2.0)),
    ("Interactive: target_qps=12.5 (Poisson)", ("Interactive", 12.5)),
    ("Interactive: target_qps=1e1", ("Interactive", 10.0)),
    ("Server", ("Server", None)),
    ("QPS=4", None), ("max load (all 30000 requests)", None), ("concurrency=8", None), ("", None),
])
def test_scenario_parsing(text, expected):
    assert mr.parse_scenario(text) == expected


def test_constraint_parsing():
    c = mr.parse_constraints(NOTES)
    assert (c.ttft_p99_ms, c.tpot_p99_ms, c.source) == (2000.0, 200.0, "notes")
    c = mr.parse_constraints("constraints: p99 TTFT<=0.45 s, p99 TPOT <= 40 ms")
    assert (c.ttft_p99_ms, c.tpot_p99_ms) == (450.0, 40.0)
    assert mr.parse_constraints("submitter=X; result=VALID") is None
    assert mr.parse_constraints("p99 TTFT<=2000 ms only") is None


def test_weights_kind():
    assert mr.weights_kind("fp16", NOTES) == "quantized"
    assert mr.weights_kind("fp16", "weights=fp16 (none)") == "bf16"
    assert mr.weights_kind("fp8", "") == "fp8"
    assert mr.weights_kind("fp4", "weights=nvfp4") == "nvfp4"
    assert mr.weights_kind("int2-magic", "") == ""


def test_benchmark_table_lookup_and_constraints():
    table = mr.benchmark_table()
    for raw, key in [("llama2-70b-99.9", "llama2-70b"), ("LLAMA2-70B-99", "llama2-70b"),
                     ("llama2-70b-interactive-99", "llama2-70b-interactive"),
                     ("mixtral-8x7b", "mixtral-8x7b"), ("llama3.1-405b", "llama3.1-405b"),
                     ("llama3.1-8b", "llama3.1-8b"), ("deepseek-r1", "deepseek-r1")]:
        assert table.find(raw).key == key, raw
    llama = table.find("llama2-70b-99")
    assert (llama.constraints["Server"].ttft_p99_ms, llama.constraints["Server"].tpot_p99_ms) == (2000, 200)
    assert (llama.constraints["Interactive"].ttft_p99_ms, llama.constraints["Interactive"].tpot_p99_ms) == (450, 40)
    assert llama.samples == 24576 and 280 <= llama.osl.mean <= 300
    assert table.find("resnet50") is None


def test_submissions_and_reasons(tmp_path):
    path = write_table(tmp_path / "v50.csv", [
        row("offline_output_tokens_per_s", 3000), row("offline_samples_per_s", 10.3, unit="samples/s"),
        row("offline_fancy_metric", 1.0),
        *(row(m, v, scen="Server: target_qps=9 (Poisson)", unit=u) for m, v, u in [
            ("server_completed_samples_per_s", 8.9, "samples/s"), ("p99_TTFT", 1.8, "s"),
            ("mean_TPOT", 90, "ms")]),
        row("interactive_output_tokens_per_s", 900, scen="Interactive: target_qps=3 (Poisson)"),
        row("offline_output_tokens_per_s", 10, gpu="Quantum QPU-9000", sys="S2"),
        row("offline_output_tokens_per_s", 10, bench="resnet50", sys="S3"),
        {**row("offline_output_tokens_per_s", 10, sys="S4"), "concurrency_or_qps_or_batch": "QPS=4"},
    ])
    subs, other, _ = mr.read_table(path)
    by = {(s.key.split("/")[1], s.scenario): s for s in subs}
    off = by[("S1", "Offline")]
    assert off.reason == "" and off.hardware == "h100_sxm" and off.model == "llama2_70b"
    assert off.weights == "quantized" and off.num_gpus == 1 and off.lines == [2, 3, 4]
    assert off.metrics["output_tokens_per_s"].value == 3000
    assert "metric not mapped" in off.line_reasons[4]
    srv = by[("S1", "Server")]
    assert srv.target_qps == 9 and srv.constraints.source == "notes"
    assert srv.metrics["ttft_ms.p99"].value == pytest.approx(1800.0)  # unit s -> ms
    assert srv.metrics["samples_per_s"].value == 8.9
    assert by[("S1", "Interactive")].target_qps == 3
    assert "unknown hardware spelling" in by[("S2", "Offline")].reason
    assert "not in conf/tables/mlperf_benchmarks.yaml" in by[("S3", "Offline")].reason
    assert list(other) == [11] and other[11].startswith("not an MLPerf scenario row")


def test_user_benchmark_table_overrides(tmp_path):
    user = tmp_path / "bench.yaml"
    user.write_text("benchmarks:\n  llama2-70b:\n    ids: [llama2-70b-99]\n    model: llama2_70b\n"
                    "    dataset: {samples: 100}\n    isl: {kind: fixed, mean: 100}\n"
                    "    osl: {kind: fixed, mean: 10}\n"
                    "    constraints: {Server: {ttft_p99_ms: 1, tpot_p99_ms: 2}}\n")
    mr.use_benchmark_tables([str(user)])
    b = mr.benchmark_table().find("llama2-70b-99")
    assert b.samples == 100 and b.constraints["Server"].ttft_p99_ms == 1
    assert mr.benchmark_table().find("llama2-70b-99.9").samples == 24576  # shipped entry


@pytest.mark.parametrize("change,needle", [
    ({"value": "fast"}, "value='fast': not a finite number > 0"),
    ({"value": "-3"}, "value='-3': not a finite number > 0"),
    ({"num_gpus": "eight"}, "num_gpus='eight': not an integer >= 1"),
    ({"num_gpus": "1.5"}, "num_gpus='1.5': not an integer >= 1"),
    ({"num_gpus": "0"}, "CPU-only system (num_gpus=0)"),
    ({"num_gpus": ""}, "num_gpus='nan': not an integer >= 1"),
    ({"value": "1e308"}, "value='1e+308': above 1e+12"),
    ({"num_gpus": "1e12"}, "num_gpus='1000000000000.0': more than 100,000 accelerators"),
    ({"concurrency_or_qps_or_batch": "Server: target_qps=1e-300"}, "target_qps=1e-300: not in"),
])
def test_rows_that_cannot_run_are_counted_and_the_table_goes_on(tmp_path, change, needle):
    """A CPU-only row or a row without a usable figure is counted with its reason (coverage); the
    other rows of the table are still read (issue 26: one row must not stop a whole table)."""
    path = write_table(tmp_path / "bad.csv", [{**row("offline_output_tokens_per_s", 1), **change},
                                              row("offline_samples_per_s", 2)])
    subs, other, _ = mr.read_table(path)
    assert list(other) == [2] and needle in other[2]
    assert [s.lines for s in subs] == [[3]] and subs[0].reason == ""


def test_unknown_and_missing_columns(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("model,gpu,precision,num_gpus,concurrency_or_qps_or_batch,metric,value,colour\n"
                    "llama2-70b-99,H100,fp8,1,Offline,offline_output_tokens_per_s,1,red\n")
    with pytest.raises(ConfigError, match=r"unknown column\(s\) \['colour'\]; allowed: source"):
        mr.read_table(path)
    path.write_text("model,gpu\nllama2-70b-99,H100\n")
    with pytest.raises(ConfigError, match=r"missing column\(s\)"):
        mr.read_table(path)


@pytest.mark.skipif(not SHARED.is_file(), reason="../shared/reference/mlperf_v4.1.csv not present")
def test_real_v41_table_parses_into_submissions():
    subs, other, frame = mr.read_table(SHARED)
    assert len(frame) == 810 and not other
    assert sum(len(s.lines) for s in subs) == 810
    assert {s.scenario for s in subs} == {"Offline", "Server"}
    assert all(s.benchmark is not None for s in subs)
    assert all(s.reason == "" or "not in the catalog" in s.reason or s.reason.startswith("MaxQ")
               for s in subs), {s.reason for s in subs}
    # NVIDIA's H200 MaxQ system: three benchmarks x Offline and Server
    assert sum(s.reason.startswith("MaxQ") for s in subs) == 6
    server = [s for s in subs if s.scenario == "Server"]
    assert all(s.target_qps and s.constraints.ttft_p99_ms == 2000 for s in server)


def test_every_length_figure_of_the_benchmark_table_has_a_source():
    import yaml
    node = yaml.safe_load(mr.BENCHMARKS_FILE.read_text())
    missing = [f"{key}.{side}" for key, b in node["benchmarks"].items() for side in ("isl", "osl")
               if not str(b[side].get("source", "")).strip()]
    assert not missing


def test_llama3_1_8b_outputs_run_to_the_128_token_cap():
    """Issue 26: tokens/s over samples/s is 128 in every llama3.1-8b submission (was 73)."""
    for bench in ("llama3.1-8b", "llama3.1-8b-interactive-99"):
        osl = mr.benchmark_table().find(bench).osl
        assert (osl.kind.value, osl.mean) == ("fixed", 128)


@pytest.mark.skipif(not SHARED.is_file(), reason="../shared/reference/mlperf_v4.1.csv not present")
def test_output_means_match_tokens_over_samples_of_the_submissions():
    """Each benchmark's mean output = output tokens/s over samples/s of its submissions (median,
    Offline and Server) within 1 %, wherever a table carries both figures."""
    import pandas as pd
    frame = pd.read_csv(SHARED)
    frame["sub"] = frame.url.str.extract(r"closed/(.*)/performance")[0]
    ratios: dict[str, list[float]] = {}
    for tokens, samples in (("offline_output_tokens_per_s", "offline_samples_per_s"),
                            ("server_output_tokens_per_s", "server_completed_samples_per_s")):
        t = frame[frame.metric == tokens].set_index("sub")
        s = frame[frame.metric == samples].set_index("sub").value
        for sub, r in t.iterrows():
            bench = mr.benchmark_table().find(r.model)
            ratios.setdefault(bench.key, []).append(r.value / s[sub])
    assert set(ratios) == {"llama2-70b", "mixtral-8x7b"}
    for key, values in ratios.items():
        mean = next(b for b in mr.benchmark_table().benchmarks if b.key == key).osl.mean
        assert float(pd.Series(values).median()) == pytest.approx(mean, rel=0.01), key


def test_edge_scenarios_and_summary_wordings(tmp_path):
    path = write_table(tmp_path / "edge.csv", [
        row("singlestream_90th_percentile_latency", 5, scen="SingleStream"),
        row("Tokens per second", 1000), row("Completed samples per second", 4),
        row("p90_TTFT", 900, scen="Server: target_qps=3 (Poisson)", unit="ms")])
    subs, other, _ = mr.read_table(path)
    assert "LoadGen scenario SingleStream not simulated" in other[2]
    off = next(s for s in subs if s.scenario == "Offline")
    assert set(off.metrics) == {"output_tokens_per_s", "samples_per_s"} and not off.line_reasons
    srv = next(s for s in subs if s.scenario == "Server")
    assert srv.metrics["ttft_ms.p90"].value == 900


def test_maxq_systems_are_counted_with_their_reason_and_4_gpu_hgx_systems_read_as_that_board(tmp_path):
    maxq = NOTES.replace("system=Acme 1x", "system=Acme (8x H200-SXM-141GB, MaxQ, TensorRT)")
    path = write_table(tmp_path / "t.csv", [
        row("offline_output_tokens_per_s", "20000", sys="H200x8_TRT_MaxQ", gpu="NVIDIA H200-SXM-141GB",
            gpus="8.0", notes=maxq),
        row("offline_output_tokens_per_s", "10000", sys="H100x4_TRT", gpus="4.0"),
        row("offline_output_tokens_per_s", "3000", sys="H100x1_TRT", gpus="1.0"),
        row("offline_output_tokens_per_s", "24000", sys="H100x8_TRT", gpus="8.0")])
    subs = {s.key.split("/")[1]: s for s in mr.read_table(path)[0]}
    assert subs["H200x8_TRT_MaxQ"].reason.startswith("MaxQ system (MLPerf Power")
    assert not subs["H100x4_TRT"].reason and subs["H100x4_TRT"].hardware == "h100_sxm_hgx4"
    assert subs["H100x1_TRT"].hardware == subs["H100x8_TRT"].hardware == "h100_sxm"
