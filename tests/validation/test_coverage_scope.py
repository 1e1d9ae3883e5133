"""Coverage counts rows in scope (docs/validation.md, "Coverage"): a metric the simulator does not
model and a CPU-only system are out of scope; every other row not run counts against coverage.
Also: the catalog entries added for the public tables (BLOOM-176B, H800, H20, H20-3e) and their
spellings."""

from __future__ import annotations

import pandas as pd
import pytest

from hermes_opt.compose import aliases, catalog, to_sim
from hermes_opt.validation import coverage

HEADER = "source,model,precision,gpu,tp,isl,osl,concurrency_or_qps_or_batch,metric,value,unit\n"


@pytest.fixture(autouse=True)
def shipped_aliases_only():
    aliases.use_tables([])
    yield
    aliases.use_tables([])


def test_out_of_scope_is_the_metric_or_a_cpu_only_system_never_a_missing_catalog_entry():
    assert coverage.out_of_scope("not expressible", "CPU-only system (num_gpus=0): ...")
    assert coverage.out_of_scope("not expressible", "metric outside the step-time simulator (KV ...)")
    assert not coverage.out_of_scope("not expressible", "model not in catalog (bloom-176b)")
    assert not coverage.out_of_scope("not expressible", "hardware h800 (from 'H800') not in the catalog")
    assert not coverage.out_of_scope("not expressible", "length distribution not given (isl/osl = a/b)")
    assert not coverage.out_of_scope("reproduced", "CPU-only system")  # a row that ran is always counted


def test_summary_reports_in_scope_coverage_per_table_and_over_all_tables():
    frame = pd.DataFrame({
        "file": ["measurements.csv"] * 5 + ["t.csv"] * 3,
        "source": ["a"] * 5 + ["b"] * 3, "row": range(8),
        "status": ["reproduced", "reproduced via file", "not expressible", "not expressible",
                   "not expressible", "reproduced", "not expressible", "not expressible"],
        "reason": ["", "", "CPU-only system (x)", "metric outside the step-time simulator (KV)",
                   "model not in catalog (m)", "", "CPU-only system (num_gpus=0)", "unknown hardware"]})
    cov = coverage.summarize(frame, tables={"t.csv"}).set_index("source")
    m = cov.loc["ALL rows of measurements.csv"]
    assert (m.rows, m.out_of_scope, m.in_scope, m.reproduced) == (5, 2, 3, 2)
    assert m.coverage_pct == pytest.approx(66.7) and m.coverage_all_pct == pytest.approx(40.0)
    t = cov.loc["ALL rows of t.csv"]
    assert (t.rows, t.out_of_scope, t.in_scope, t.reproduced) == (3, 1, 2, 1)
    whole = cov.loc[coverage.TOTAL_ALL_TABLES]
    assert (whole.rows, whole.out_of_scope, whole.in_scope, whole.reproduced) == (8, 3, 5, 3)
    assert whole.coverage_pct == pytest.approx(60.0)
    assert cov.loc["a", "notes"].startswith("CPU-only")  # reproduced rows add no empty reason


def test_a_cpu_row_of_an_unknown_model_is_out_of_scope_not_a_missing_model(tmp_path):
    path = tmp_path / "measurements.csv"
    path.write_text(HEADER
                    + "s,Llama-3.2-3B-Instruct,BF16,CPU: Intel Xeon 6980P x1 socket(s),1,1024,1024,1 req,TTFT,5,ms\n"
                    + "s,Qwen2.5-32B-Instruct,BF16,H800,8,9728,64,50 requests,avg_ttft_ms,900,ms\n"
                    + "s,Qwen3-8B,BF16,H800-81GB,8,128,128,max-concurrency 1,KV_transfer_time,3,ms\n")
    rows = coverage.measurements_coverage(path, reproduced_rows=set())
    reasons = dict(zip(rows.row, rows.reason))
    assert reasons[2].startswith("CPU-only system")
    assert "model" in reasons[3] and "qwen2.5-32b" in reasons[3].lower()  # H800 is known now: the model is not
    assert reasons[4].startswith("metric outside the step-time simulator")
    cov = coverage.summarize(rows).set_index("source")
    assert (cov.loc["ALL rows of measurements.csv", ["rows", "in_scope"]] == [3, 1]).all()


@pytest.mark.parametrize("spelling, name", [
    ("H800", "h800"), ("H800-81GB", "h800"), ("NVIDIA H800 SXM5 80GB", "h800"),
    ("H20", "h20"), ("NVIDIA H20 96GB", "h20"), ("H20-3e-143GB", "h20_3e"),
    ("H200", "h200"), ("H200-SXM-141GB", "h200")])  # the H20 patterns never take an H200
def test_new_hardware_spellings_map(spelling, name):
    assert aliases.catalog_name("hardware", spelling) == name


@pytest.mark.parametrize("spelling", ["bloom-176b", "bigscience/bloom", "BLOOM-176B", "bloom"])
def test_bloom_spellings_map(spelling):
    assert aliases.catalog_name("model", spelling) == "bloom_176b"


def test_bloom_is_the_published_176b_mha_model():
    model = to_sim.model_spec(catalog.entry("model", "bloom_176b"))
    assert model.num_params / 1e9 == pytest.approx(176.2, rel=0.01)  # model card: 176,247,271,424
    entry = catalog.entry("model", "bloom_176b")
    assert (entry.num_layers, entry.hidden_size, entry.num_heads, entry.vocab_size) == (70, 14336, 112, 250880)
    assert entry.num_kv_heads == entry.num_heads and entry.gated_mlp is False


def test_new_gpus_differ_from_h100_where_the_export_parts_do():
    h100, h800, h20 = (to_sim.hardware_spec(catalog.entry("hardware", n))
                       for n in ("h100_sxm", "h800", "h20"))
    assert h800.bf16_flops_per_s == h100.bf16_flops_per_s
    assert h800.scaleup_bw_bytes_per_s < h100.scaleup_bw_bytes_per_s / 2
    assert h20.bf16_flops_per_s < h100.bf16_flops_per_s / 6 and h20.mem_bw_bytes_per_s > h100.mem_bw_bytes_per_s


def test_max_concurrency_is_a_closed_loop_and_a_disaggregated_row_runs_with_its_workers(tmp_path):
    from hermes_opt.calibration import observations as obs_mod
    from hermes_opt.calibration import serving
    assert obs_mod.parse_load("max-concurrency 1, 50 prompts, request-rate inf") == ("closed_loop", 0.0, 1, 50)
    path = tmp_path / "measurements.csv"
    path.write_text(HEADER.replace(",unit", ",unit,engine")
                    + "Mooncake docs: vLLM v1 PD disaggregation,Qwen3-8B,BF16,H800-81GB,8,128,128,"
                      "max-concurrency 1,mean_TTFT,46,ms,vLLM + MooncakeConnector (1P1D)\n"
                    + "s,Qwen3-8B,BF16,H800-81GB,8,128,128,max-concurrency 1,mean_TTFT,46,ms,vLLM\n"
                    + "Mooncake docs: vLLM v1 PD disaggregation,Qwen3-8B,BF16,H800-81GB,8,128,128,"
                      "max-concurrency 1,mean_TTFT,46,ms,vLLM + MooncakeConnector\n")
    reasons: dict[int, str] = {}
    rows, _ = obs_mod.load_serving(path, strict=False, reasons=reasons)
    assert [(o.row, o.arrival, o.concurrency, o.hardware, o.workers) for o in rows] == [
        (2, "closed_loop", 1, "h800", (1, 1)), (3, "closed_loop", 1, "h800", (0, 0))]
    assert reasons == {4: "disaggregated prefill/decode deployment (vLLM + MooncakeConnector): "
                          "prefill/decode worker counts not stated (<P>P<D>D)"}
    # 1P1D: one prefill and one decode worker of TP 8; vLLM's first token comes with a decode step
    pools = serving.setup(rows[0], serving.RooflineParams()).config.pools
    assert [(p.role.value, p.num_replicas, p.tp) for p in pools] == [("prefill", 1, 8), ("decode", 1, 8)]
    assert pools[1].first_token.value == "decode_step"
    disagg, colocated = serving.simulate_rows(rows, serving.RooflineParams())
    assert disagg > colocated  # the hand-off and the decode worker's first step are in its TTFT
    cov = coverage.measurements_coverage(path, reproduced_rows=set())
    assert not coverage.out_of_scope(cov.status[2], cov.reason[2])  # in scope: it counts against coverage


def test_a_cold_run_of_n_requests_at_once_is_read_and_its_warm_second_round_is_not(tmp_path):
    from hermes_opt.calibration import observations as obs_mod
    assert obs_mod.parse_load("50 requests, no concurrency limit") == ("max_load", 0.0, 1, 50)
    assert obs_mod.parse_load("no concurrency limit") is None  # how many requests is not stated
    path = tmp_path / "measurements.csv"
    base = dict(source="s", model="Qwen2.5-72B-Instruct", precision="BF16", gpu="H800", isl=9728,
                osl=64, concurrency_or_qps_or_batch="50 requests, no concurrency limit",
                metric="avg_ttft_ms", value=9e3, unit="ms")
    pd.DataFrame([{**base, "tp": "8 (assumed, not stated)", "notes": "cold (first round, no cache)"},
                  {**base, "tp": "8", "notes": "cache hit from Mooncake Store (second round)"},
                  {**base, "tp": "2.5", "notes": ""}]).to_csv(path, index=False)
    reasons: dict[int, str] = {}
    rows, _ = obs_mod.load_serving(path, strict=False, reasons=reasons)
    assert [(o.row, o.model, o.hardware, o.tp, o.arrival, o.num_requests) for o in rows] == [
        (2, "qwen2_5_72b", "h800", 8, "max_load", 50)]
    assert reasons[3].startswith("KV cache warmed by an earlier run")
    assert reasons[4].startswith("tp not given")


def test_qwen2_5_72b_is_the_published_size():
    assert aliases.catalog_name("model", "Qwen/Qwen2.5-72B-Instruct") == "qwen2_5_72b"
    assert to_sim.model_spec(catalog.entry("model", "qwen2_5_72b")).num_params / 1e9 == pytest.approx(72.7, rel=0.01)
