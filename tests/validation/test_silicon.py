"""Row mapping of AIConfigurator's silicon_sample.csv (hand-written rows; no aiconfigurator)."""

import csv

import numpy as np
import pytest

from hermes_opt.validation import silicon, silicon_client

HEADER = ("id,silicon_data_source,backend,backend_version,model_path,system,precision,mode,isl,osl,"
          "gemm_quant_mode,moe_quant_mode,batch_size,tp_size,pp_size,attention_dp_size,moe_tp_size,"
          "moe_ep_size,prefill_batch_size,prefill_num_workers,prefill_tp_size,prefill_pp_size,"
          "prefill_attention_dp_size,prefill_moe_tp_size,prefill_moe_ep_size,decode_batch_size,"
          "decode_num_workers,decode_tp_size,decode_pp_size,decode_attention_dp_size,"
          "decode_moe_tp_size,decode_moe_ep_size,silicon_ttft_ms,silicon_tpot_ms")
ROWS = [
    # DeepSeek-R1 nvfp4 on 8 x B200, attention DP 8 + EP 8 (DEP), 64 clients
    "dep,src,trtllm,1.2,deepseek-ai/DeepSeek-R1,b200_sxm,fp4,agg,1024,1024,nvfp4,nvfp4,64,1,1,8,1,8,"
    ",,,,,,,,,,,,,,200.0,20.0",
    # Llama-3.1-70B fp8 TP4 on H200, 16 clients (dense: no ep)
    "dense,src,vllm,0.12,meta-llama/Llama-3.1-70B,h200_sxm,fp8,agg,8192,1024,fp8,fp8,16,4,1,1,4,1,"
    ",,,,,,,,,,,,,,500.0,10.0",
    # model outside the catalog
    "kimi,src,sglang,0.5,moonshotai/Kimi-K2.5,b200_sxm,fp4,agg,1024,1024,nvfp4,nvfp4,8,8,1,1,8,1,"
    ",,,,,,,,,,,,,,100.0,5.0",
    # disagg with workers: 1 x prefill DEP4 + 1 x decode DEP8, concurrency in the source
    "pd,x; silicon_concurrency=32; y,trtllm,1.2,deepseek-ai/DeepSeek-R1,gb200,fp4,disagg,8192,1024,"
    "nvfp4,nvfp4,,,,,,,1,1,1,1,4,1,4,32,1,1,1,8,1,8,300.0,12.0",
    # disagg without worker counts
    "pd_noworkers,x; silicon_concurrency=8,sglang,0.5,deepseek-ai/DeepSeek-R1,b200_sxm,fp8,disagg,"
    "1024,1024,fp8,fp8_block,,,,,,,,,8,1,1,1,8,,,8,1,1,8,,150.0,9.0",
    # bf16 Qwen3-32B with no quant modes, TP2 on H100
    "bf16,src,trtllm,1.0,Qwen/Qwen3-32B,h100_sxm,,agg,1024,128,,,4,2,1,,1,1,"
    ",,,,,,,,,,,,,,80.0,12.0",
    # attention DP mixed with moe tp: 16 ranks, experts in 4 groups of 4 (moe tp 4 x ep 4)
    "mixdp,src,trtllm,1.2,deepseek-ai/DeepSeek-R1,gb200,fp4,agg,1024,1024,nvfp4,nvfp4,64,1,1,16,4,4,"
    ",,,,,,,,,,,,,,200.0,20.0",
]


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "silicon_sample.csv"
    path.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n")
    return {r["id"]: r for r in silicon.read_rows(path)}


def ov(m: silicon.Mapped) -> dict[str, str]:
    return dict(o.split("=", 1) for o in m.overrides if "=" in o and not o.startswith(("~", "+")))


def test_agg_attention_dp_row(rows, tmp_path):
    m = silicon.map_row(rows["dep"], conf_dir=tmp_path)
    assert m.reason is None
    o = ov(m)
    assert o["model"] == "deepseek_r1" and o["hardware"] == "b200"
    assert o["cluster.weight_dtype"] == "nvfp4" and o["cluster.kv_dtype"] == "fp8"
    assert (o["cluster.tp"], o["cluster.ep"], o["cluster.attention_dp"]) == ("8", "8", "true")
    assert o["workload"] == "closed_loop" and o["workload.arrival.concurrency"] == "64"
    assert int(o["workload.num_requests"]) >= 4 * 64
    assert m.gpus == 8 and m.partition == ("b200_sxm", "trtllm", "agg")
    assert "engine" not in o
    assert any("mean: 1024" in x for x in m.overrides if x.startswith("+workload.request_types"))


def test_dense_row_and_measured_throughput(rows, tmp_path):
    m = silicon.map_row(rows["dense"], conf_dir=tmp_path)
    o = ov(m)
    assert m.reason is None
    assert (o["model"], o["hardware"], o["cluster.tp"], o["cluster.ep"]) == (
        "llama3_1_70b", "h200", "4", "1")
    assert o["cluster.attention_dp"] == "false" and o["cluster.weight_dtype"] == "fp8"
    # 16 clients x 1024 tokens per (0.5 + 1023 * 0.01) s, over 4 GPUs
    assert m.throughput_per_gpu == pytest.approx(16 * 1024 / (0.5 + 1023 * 0.01) / 4)


def test_reasons(rows, tmp_path):
    assert silicon.map_row(rows["kimi"], conf_dir=tmp_path).reason.startswith("model not in catalog")
    assert silicon.map_row(rows["pd_noworkers"], conf_dir=tmp_path).reason == (
        "disagg row without worker counts")



def test_attention_dp_with_moe_tp_maps_to_ep_groups(rows, tmp_path):
    m = silicon.map_row(rows["mixdp"], conf_dir=tmp_path)
    o = ov(m)
    assert m.reason is None and m.gpus == 16
    assert (o["cluster.tp"], o["cluster.ep"], o["cluster.attention_dp"]) == ("16", "4", "true")


def test_disagg_row(rows, tmp_path):
    m = silicon.map_row(rows["pd"], conf_dir=tmp_path)
    assert m.reason is None and m.concurrency == 32 and m.gpus == 12
    o = ov(m)
    assert o["deployment.architecture"] == "disaggregated"
    assert o["deployment.total_devices"] == "12" and o["deployment.prefill.devices"] == "4"
    assert (o["deployment.prefill.tp"], o["deployment.prefill.attention_dp"]) == ("4", "true")
    assert (o["deployment.decode.tp"], o["deployment.decode.ep"]) == ("8", "8")
    assert o["hardware"] == "gb200"
    # the deployed running-batch caps: batch_size per attention-DP rank x ranks
    assert o["deployment.prefill.scheduler.max_num_seqs"] == "4"  # 1 x DEP4
    assert o["deployment.decode.scheduler.max_num_seqs"] == "256"  # 32 x DEP8
    # with the engine entry, an attention-DP worker's token budget is the engine's per rank
    o = ov(silicon.map_row(rows["pd"]))
    assert o["engine"] == "trtllm" and o["deployment.decode.scheduler.max_batched_tokens"] == str(8 * 8192)
    # a row that states no batch size leaves the engine's default
    assert not any("max_num_seqs" in x for x in silicon.map_row(rows["pd_noworkers"],
                                                               conf_dir=tmp_path).overrides)


def test_bf16_row_without_quant_modes(rows, tmp_path):
    o = ov(silicon.map_row(rows["bf16"], conf_dir=tmp_path))
    assert (o["model"], o["cluster.weight_dtype"], o["cluster.kv_dtype"], o["cluster.tp"]) == (
        "qwen3_32b", "bf16", "bf16", "2")


def test_engine_override_only_when_config_exists(rows, tmp_path):
    assert silicon.engine_overrides("vllm", conf_dir=tmp_path) == []
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "vllm.yaml").write_text("name: vllm\n")
    assert silicon.engine_overrides("vllm", conf_dir=tmp_path) == ["engine=vllm"]
    assert "engine=vllm" in silicon.map_row(rows["dense"], conf_dir=tmp_path).overrides


def test_overrides_compose(rows):
    """The mapped overrides are a valid hermes-sim candidate."""
    from hermes_opt.compose.candidate import compose
    cand = compose(list(silicon.map_row(rows["dense"]).overrides))
    assert cand.deployment["num_accelerators"] == 4


def test_csv_helpers_read_plain_csv(tmp_path):
    path = tmp_path / "x.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["id", "mode"], ["a", "agg"]])
    assert silicon.read_rows(path) == [{"id": "a", "mode": "agg"}]


def _row(**kw) -> dict[str, str]:
    row = dict.fromkeys(HEADER.split(","), "")
    row.update({"mode": "agg", "model_path": "meta-llama/Llama-3.1-70B", "system": "h200_sxm",
                "backend": "sglang", "isl": "1024", "osl": "8192", "batch_size": "16",
                "tp_size": "1", "attention_dp_size": "8", "moe_ep_size": "8",
                "silicon_ttft_ms": "100", "silicon_tpot_ms": "10"})
    row.update(kw)
    return row


def test_concurrency_is_the_clients_not_the_per_rank_batch():
    """With attention DP, batch_size is per rank; the clients are silicon_concurrency."""
    src = "source_file=2026-03-25.csv; model=DeepSeek-R1; silicon_concurrency=128; wip=False"
    assert silicon.concurrency_of(_row(silicon_data_source=src)) == 128
    assert silicon.concurrency_of(_row(id="x_agg_1024x1024_c96_tp8_1")) == 96
    assert silicon.concurrency_of(_row()) == 16  # nothing else stated: batch_size


def test_client_of_sources():
    bs, fixed = silicon_client.CLIENT_BENCHMARK_SERVING, silicon_client.CLIENT_FIXED
    assert silicon_client.client_of(_row(silicon_data_source=(
        "db-dump/2026-04-27; config_id=733; silicon_concurrency=128; vllm/vllm-openai:v0.19.0"))) == bs
    assert silicon_client.client_of(_row(silicon_data_source=(
        "source_file=2026-04-06.csv; model=DeepSeek-R1; silicon_concurrency=4; wip=False"))) == bs
    assert silicon_client.client_of(_row(silicon_data_source=(
        "source_file=/Users/x/aic-auto-gap-analysis/data/h100_sxm/sglang/0.5.1/Qwen.csv; "
        "silicon_concurrency=16"))) == fixed
    assert silicon_client.client_of(_row(silicon_data_source="source_file=kimi-k2.5-gap-analysis.csv"
                                  )) == fixed
    assert silicon_client.client_of(_row(silicon_data_source="")) == fixed


def test_benchmark_serving_lengths_and_request_count():
    """InferenceX: uniform lengths in [int(0.8 L), L], 10 prompts per client."""
    spec = silicon_client.length_spec(1024, silicon_client.CLIENT_BENCHMARK_SERVING)
    assert "kind: uniform" in spec and "min_tokens: 819" in spec and "max_tokens: 1024" in spec
    assert "mean: 921.5" in spec
    assert "kind: fixed" in silicon_client.length_spec(1024, silicon_client.CLIENT_FIXED)
    assert silicon_client.num_requests(32, silicon_client.CLIENT_BENCHMARK_SERVING) == 320
    assert silicon_client.num_requests(4, silicon_client.CLIENT_BENCHMARK_SERVING) == silicon_client.MIN_REQUESTS
    assert silicon_client.num_requests(1000, silicon_client.CLIENT_BENCHMARK_SERVING) == silicon_client.MAX_REQUESTS
    assert silicon_client.num_requests(32, silicon_client.CLIENT_FIXED) == 128


def test_benchmark_serving_lengths_draw_in_range():
    """The composed uniform draws stay within the client's integer range and centre on it."""
    from hermes_opt.compose.candidate import compose
    from sim.workload.generator import draw
    src = "db-dump/2026-04-27; config_id=1; silicon_concurrency=8; workflow_run_id=2"
    m = silicon.map_row(_row(silicon_data_source=src, attention_dp_size="1", moe_ep_size="1",
                             tp_size="4", backend="vllm", isl="1000", osl="200"))
    assert m.reason is None and m.client == silicon_client.CLIENT_BENCHMARK_SERVING
    spec = compose(list(m.overrides)).config.workload
    drawn = draw(spec, seed=0)
    assert drawn.prompt_tokens.min() >= 800 and drawn.prompt_tokens.max() <= 1000
    assert drawn.output_tokens.min() >= 160 and drawn.output_tokens.max() <= 200
    assert abs(np.mean(drawn.prompt_tokens) - 900) < 15
    assert len(drawn.prompt_tokens) == 80  # 10 prompts per client
