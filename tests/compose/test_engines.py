"""Serving engines as a deployment dimension (docs/engines.md): what each entry decides, where it
runs, how bad input is refused, and the efficiency table's documented fallback order."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hermes_opt.compose import catalog, efficiency, engines, to_sim
from hermes_opt.compose.candidate import compose
from hermes_opt.compose.overrides import hydra_compose
from sim.cost.roofline import RooflineCostModel, RooflineParams
from sim.errors import ConfigError
from sim.hardware.memory import kv_capacity_blocks
from sim.hardware.specs import DType
from sim.pipeline.specs import FirstToken


def _engine(name: str, hardware: str, dtype: str = "bf16") -> engines.Engine:
    return engines.resolve(catalog.entry("engine", name), catalog.entry("hardware", hardware),
                           dtype, "engine")


def test_every_shipped_engine_resolves_on_the_hardware_it_claims():
    for name in catalog.options("engine"):
        entry = catalog.entry("engine", name)
        assert entry.sources, name  # every entry names where its defaults come from
        for hardware in catalog.options("hardware"):
            generation = catalog.entry("hardware", hardware).get("generation")
            claims = any(generation in gens for gens in entry.runs_on.values())
            if claims:
                assert _engine(name, hardware).generation == generation
            else:
                with pytest.raises(ConfigError, match="does not run on"):
                    _engine(name, hardware)


def test_trtllm_on_an_amd_gpu_is_one_clear_error():
    with pytest.raises(ConfigError) as err:
        to_sim.sim_config(hydra_compose(["engine=trtllm", "hardware=mi300x"]))
    assert str(err.value).startswith("engine='trtllm': does not run on mi300x")
    assert "vllm" in str(err.value)  # says what to choose instead


def test_a_version_without_data_is_an_error_unless_the_fallback_is_allowed():
    with pytest.raises(ConfigError, match=r"engine.version='0.3': no data for vllm 0.3"):
        to_sim.sim_config(hydra_compose(["engine.version=0.3"]))
    cfg = to_sim.sim_config(hydra_compose(["engine.version=0.3",
                                           "engine.version_fallback=nearest"]))
    provenance = dict(cfg.pools[0].cost_model.provenance)
    assert "version 0.3 has no data" in provenance["fallback"]


def test_an_unsupported_weight_format_names_the_engine_and_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"weight_dtype='nvfp4': sglang on mi300x \(rocm\)"):
        to_sim.sim_config(hydra_compose(["engine=sglang", "hardware=mi300x",
                                         "cluster.weight_dtype=nvfp4"]))


def test_device_memory_tiers_pick_budgets_as_the_engine_does():
    assert _engine("vllm", "h100_sxm").scheduler["max_num_seqs"] == 1024
    assert _engine("vllm", "a100_80g").scheduler["max_num_seqs"] == 256  # the A100 exception
    assert _engine("vllm", "l40s").scheduler["max_batched_tokens"] == 2048
    assert _engine("sglang", "b200").scheduler["chunk_size_tokens"] == 16384
    assert _engine("sglang", "h100_sxm").scheduler["chunk_size_tokens"] == 8192


def test_free_fraction_gives_more_kv_than_total_fraction_for_big_weights():
    """70B FP8 on one H100: vLLM's 0.9 of the total leaves a few GB; TensorRT-LLM's 0.9 of what
    is free after the weights leaves more (the issue's 1-2 GB vs ~7 GB)."""
    from hermes_opt.compose.values import hardware_spec, model_spec
    hw = hardware_spec(catalog.entry("hardware", "h100_sxm"))
    model = model_spec(catalog.entry("model", "llama3_1_70b"))
    args = dict(tp=1, pp=1, weight_dtype=DType.FP8, kv_dtype=DType.FP8, block_size_tokens=16,
                activation_reserve_fraction=2 * 2**30 / hw.memory_bytes)
    total = kv_capacity_blocks(model, hw, gpu_memory_utilization=0.9, **args)
    free = kv_capacity_blocks(model, hw, gpu_memory_utilization=0.9, kv_memory_rule="free_fraction",
                              **args)
    per_block_gb = 16 * 80 * 8 * 128 * 2 / 1e9  # 16 tokens x layers x kv heads x dim x K,V (fp8)
    assert 3 < total * per_block_gb < 6 and free * per_block_gb > total * per_block_gb


def test_captured_decode_steps_skip_the_eager_step_cost():
    from hermes_opt.compose.values import hardware_spec, model_spec
    model = model_spec(catalog.entry("model", "llama3_1_8b"))
    hw = hardware_spec(catalog.entry("hardware", "h100_sxm"))
    eager = RooflineCostModel(model, hw, params=RooflineParams(step_overhead_s=2e-3))
    graphs = RooflineCostModel(model, hw, params=RooflineParams(
        step_overhead_s=2e-3, cuda_graph_max_batch=64, graph_step_overhead_s=3e-4))
    small, big = (eager.decode_coefficients(n, 0)[0] - graphs.decode_coefficients(n, 0)[0]
                  for n in (8, 128))
    assert small == pytest.approx(1.7e-3) and big == 0.0  # above the capture size: eager again
    # a step with prompt tokens is never captured
    assert eager.step_time(512, 512 * 256.5, 512, 1, 4, 4000) == \
        graphs.step_time(512, 512 * 256.5, 512, 1, 4, 4000)


def _entry(engine, stack, generation, precision, n=1, **params):
    return {"engine": engine, "stack": stack, "generation": generation, "precision": precision,
            "params": {"compute_efficiency": 0.5, **params}, "band": {"n": n}, "source": "t",
            "fitted_on": "t"}


@pytest.mark.parametrize(("entries", "expected_key", "step"), [
    ([_entry("vllm", "cuda", "blackwell", "fp8"), _entry("vllm", "cuda", "hopper", "fp8")],
     "vllm/cuda/hopper/fp8", "exact"),
    ([_entry("vllm", "cuda", "blackwell", "fp8"), _entry("sglang", "cuda", "hopper", "fp8")],
     "vllm/cuda/blackwell/fp8", "nearest generation"),  # the named engine before another's
    ([_entry("sglang", "cuda", "hopper", "fp8", n=1), _entry("trtllm", "cuda", "hopper", "fp8", n=9)],
     "trtllm/cuda/hopper/fp8", "same stack"),  # more validated rows win, not the alphabet
    ([_entry("sglang", "cuda", "blackwell", "fp8")], "sglang/cuda/blackwell/fp8",
     "same stack, nearest generation"),
    ([_entry("vllm", "cuda", "hopper", "bf16")], "vllm/cuda/hopper/bf16", "other precision"),
    ([_entry("vllm", "cuda", "blackwell", "bf16")], "vllm/cuda/blackwell/bf16",
     "nearest generation, other precision"),
    ([_entry("sglang", "cuda", "blackwell", "bf16"), _entry("sglang", "cuda", "ampere", "fp8")],
     "sglang/cuda/blackwell/bf16", "same stack, other precision"),
    ([_entry("vllm", "rocm", "cdna3", "fp8"), _entry("vllm", "cuda", "ampere", "fp8")], "", "none"),
])
def test_the_fallback_order_is_the_documented_one(entries, expected_key, step):
    found = efficiency.lookup(_engine("vllm", "h100_sxm"), "fp8", entries=tuple(entries))
    assert found.key == expected_key
    assert found.match.startswith(step)


def test_a_newer_rocm_part_takes_the_older_rocm_data_not_the_datasheet():
    found = efficiency.lookup(_engine("vllm", "mi355x", "mxfp4"), "fp4")
    assert found.key == "vllm/rocm/cdna3/fp8" and found.match.startswith("nearest generation")


def test_data_never_crosses_stacks():
    cuda_only = (_entry("vllm", "cuda", "hopper", "fp8"),)
    found = efficiency.lookup(_engine("vllm", "mi300x"), "fp8", entries=cuda_only)
    assert found.key == "" and "no data for vllm on rocm cdna3 fp8" in found.match


def test_the_json_names_the_engine_and_carries_the_error_band():
    out = subprocess.run([sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()",
                          "engine=trtllm", "hardware=h200", "cluster.weight_dtype=fp8",
                          "cluster.kv_dtype=fp8", "workload.num_requests=50"],
                         capture_output=True, text=True, check=True)
    record = json.loads(out.stdout)["deployment"]
    pool = record["pools"][0]
    assert pool["engine"].startswith("trtllm ")
    assert pool["efficiency"]["entry"] == "trtllm/cuda/hopper/fp8"
    assert pool["efficiency"]["match"] == "exact"
    band = pool["efficiency"]["error_band"]
    assert band["median_pct"] > 0 and band["n"] > 0 and band["validated_on"]
    assert record["error_band"] == {**band, "pool": "llm"}  # the one LLM pool's band


def test_the_deployment_band_is_its_widest_pool_band():
    candidate = compose(["deployment.architecture=disaggregated", "deployment.total_devices=4",
                         "deployment.prefill.devices=2", "deployment.prefill.engine=trtllm",
                         "deployment.decode.engine=sglang", "cluster.weight_dtype=fp8",
                         "cluster.kv_dtype=fp8"])
    bands = {p["name"]: p["efficiency"]["error_band"] for p in candidate.deployment["pools"]}
    widest = max(bands, key=lambda name: bands[name]["p90_pct"])
    assert bands["prefill"] != bands["decode"]  # two entries, so the choice is tested
    assert candidate.deployment["error_band"] == {**bands[widest], "pool": widest}


def test_kv_reservation_is_the_engines_unless_the_scheduler_group_says_otherwise():
    """TensorRT-LLM's GUARANTEED_NO_EVICT reserves whole sequences; vLLM and SGLang the prompt;
    ``scheduler.kv_reservation`` on the command line wins."""
    def reservation(*overrides):
        return compose(list(overrides)).config.pools[0].scheduler.kv_reservation
    assert reservation("engine=trtllm") == "full_sequence"
    assert reservation("engine=vllm") == reservation("engine=sglang") == "prompt"
    assert reservation("engine=trtllm", "scheduler.kv_reservation=prompt") == "prompt"
    assert reservation("engine=sglang") == "prompt"
    assert compose(["engine=sglang"]).config.pools[0].scheduler.policy.value == "prefill_first"


def test_a_study_can_search_the_engine_per_pool():
    candidate = compose(["deployment.architecture=disaggregated", "deployment.total_devices=4",
                         "deployment.prefill.devices=2", "deployment.prefill.engine=trtllm",
                         "deployment.decode.engine=sglang"])
    engines_by_pool = {p["name"]: p["engine"].split()[0] for p in candidate.deployment["pools"]}
    assert engines_by_pool == {"prefill": "trtllm", "decode": "sglang"}


def test_an_unknown_engine_name_in_a_pool_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"deployment.colocated.engine='tgi': unknown engine; "
                                          r"allowed: sglang, trtllm, vllm"):
        compose(["deployment.architecture=colocated", "deployment.colocated.engine=tgi"])


@pytest.mark.parametrize(("override", "message"), [
    ("+engine.foo=1", "engine.foo=1: unknown key"),
    ("engine.memory.rule=half", "engine.memory.rule='half': allowed: total_fraction, free_fraction"),
    ("engine.cuda_graph.max_batch=-1", "engine.cuda_graph.max_batch=-1: must be a whole number >= 0"),
    ("engine.host.seq_overhead_s=abc", "engine.host.seq_overhead_s='abc': must be a number of "
                                       "seconds in [0, 1)"),
    ("engine.scheduler.max_num_seqs=0", "engine.scheduler.max_num_seqs=0: must be a whole number"),
    ("engine.scheduler.policy=fifo", "engine.scheduler.policy='fifo': allowed: static"),
    ("engine.scheduler.kv_reservation=evict", "engine.scheduler.kv_reservation='evict': allowed: "
                                              "prompt, full_sequence"),
    ("scheduler.kv_reservation=evict", "scheduler.kv_reservation='evict': allowed: prompt, "
                                       "full_sequence"),
    ("engine.version_fallback=maybe", "engine.version_fallback='maybe': allowed: error, nearest"),
    ("engine.memory.fraction=nan", "scheduler.gpu_memory_utilization=nan: must be a finite number"),
    ("engine.disaggregation.first_token=never", "engine.disaggregation.first_token='never': "
                                                 "allowed: decode_step, decode_admit, prefill"),
    ("+engine.disaggregation.when=1", "engine.disaggregation.when=1: unknown key; "
                                      "engine.disaggregation has: first_token, sources"),
])
def test_a_bad_engine_value_is_one_line_and_exit_2(override, message):
    out = subprocess.run([sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()",
                          override], capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hermes-sim: error: {message}"), out.stderr


@pytest.mark.parametrize(("engine", "rule"), [("vllm", FirstToken.DECODE_STEP),
                                              ("sglang", FirstToken.DECODE_ADMIT),
                                              ("trtllm", FirstToken.DECODE_STEP)])
def test_each_engine_states_when_a_disaggregated_client_sees_the_first_token(engine, rule):
    pools = compose([f"engine={engine}", "deployment.architecture=disaggregated",
                     "deployment.total_devices=4", "deployment.prefill.devices=2"]).config.pools
    assert [p.first_token for p in pools] == [rule, rule]
    entry = engines.entry_of(engine, "engine")
    assert entry.disaggregation.first_token == rule.value and entry.disaggregation.sources
