"""MoE, MLA, expert/attention-data parallelism and precision in the roofline cost model.

Each expectation is computed by hand from the documented formulas (sim/cost/layer_work.py,
sim/hardware/precision.py), on small made-up models whose numbers are easy to follow."""

from __future__ import annotations

import math

import pytest

from sim.cost.base import StepShape
from sim.cost.layer_work import AttentionWork, ExpertWork
from sim.cost.roofline import RooflineCostModel, RooflineParams
from sim.errors import ConfigError
from sim.hardware.memory import (
    kv_bytes_per_token_per_device,
    kv_capacity_blocks,
    weight_bytes_per_device,
)
from sim.hardware.precision import plan_precision
from sim.hardware.specs import AttentionKind, DType, HardwareSpec, ModelSpec, check_parallelism

GPU = HardwareSpec(name="gpu", memory_bytes=80e9, mem_bw_bytes_per_s=3e12, bf16_flops_per_s=1e15,
                   fp8_flops_per_s=2e15, scaleup_bw_bytes_per_s=400e9, host_bw_bytes_per_s=60e9)
OLD_GPU = HardwareSpec(name="old", memory_bytes=80e9, mem_bw_bytes_per_s=2e12, bf16_flops_per_s=3e14,
                       scaleup_bw_bytes_per_s=300e9, host_bw_bytes_per_s=30e9)
FP4_GPU = HardwareSpec(name="fp4gpu", memory_bytes=180e9, mem_bw_bytes_per_s=8e12,
                       bf16_flops_per_s=2.25e15, fp8_flops_per_s=4.5e15, fp4_flops_per_s=9e15,
                       scaleup_bw_bytes_per_s=900e9, host_bw_bytes_per_s=64e9)

MOE = ModelSpec(name="moe", num_layers=4, hidden_size=1024, num_heads=16, num_kv_heads=4,
                head_dim=64, intermediate_size=4096, vocab_size=32000, num_experts=64,
                experts_per_token=4, num_shared_experts=1, moe_intermediate_size=512,
                num_moe_layers=3)
MLA = ModelSpec(name="mla", num_layers=2, hidden_size=1024, num_heads=16, num_kv_heads=16,
                head_dim=192, intermediate_size=4096, vocab_size=32000,
                attention=AttentionKind.MLA, q_lora_rank=256, kv_lora_rank=512,
                qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128)
DENSE = ModelSpec(name="dense", num_layers=4, hidden_size=1024, num_heads=16, num_kv_heads=4,
                  head_dim=64, intermediate_size=4096, vocab_size=32000)


def test_moe_parameter_counts_follow_the_layer_mix():
    expert = 3 * 1024 * 512
    dense_mlp = 3 * 1024 * 4096
    attn = 1024 * 16 * 64 * 2 + 2 * 1024 * 4 * 64
    router = 1024 * 64
    assert MOE.dense_layers == 1 and MOE.moe_layers == 3
    assert MOE.num_params == 2 * 32000 * 1024 + 4 * attn + dense_mlp + 3 * (65 * expert + router)
    assert MOE.active_params == 2 * 32000 * 1024 + 4 * attn + dense_mlp + 3 * (5 * expert + router)


def test_mla_caches_one_latent_per_token_that_tp_cannot_split():
    per_layer = (512 + 64) * 2.0  # kv_lora + rope, bf16
    assert MLA.kv_bytes_per_token(DType.BF16) == 2 * per_layer
    assert kv_bytes_per_token_per_device(MLA, 8, 1, DType.BF16) == 2 * per_layer
    assert kv_bytes_per_token_per_device(MLA, 8, 2, DType.BF16) == per_layer
    # GQA splits its KV heads: 4 heads over tp=2 -> half per device
    assert kv_bytes_per_token_per_device(DENSE, 2, 1, DType.BF16) == 4 * 2 * 4 * 64 * 2.0 / 2


def test_attention_dp_gives_each_device_its_sequences_and_full_attention_weights():
    tp = 4
    dp_kv = kv_bytes_per_token_per_device(MOE, tp, 1, DType.BF16, attention_dp=True)
    assert dp_kv == MOE.kv_bytes_per_token(DType.BF16) / tp
    experts = MOE.moe_layers * MOE.num_experts * MOE.expert_params
    dp_w = weight_bytes_per_device(MOE, tp, 1, DType.BF16, attention_dp=True)
    assert dp_w == pytest.approx(((MOE.num_params - experts) + experts / tp) * 2.0)
    assert dp_w > weight_bytes_per_device(MOE, tp, 1, DType.BF16)


def test_mla_absorbed_decode_and_decompressed_prefill_work():
    work = AttentionWork(MLA, tp=2, attention_dp=False, kv_bpe=1.0)
    heads = 16 / 2
    assert work.decode_flops_per_pair == (2 * (512 + 64) + 2 * 512) * heads
    assert work.prefill_flops_per_pair == (2 * (128 + 64) + 2 * 128) * heads
    assert work.prefill_expand_flops_per_token == 2 * 512 * 16 * (128 + 128) / 2
    assert work.kv_read_bytes_per_token == 576.0
    absorbed = AttentionWork(MLA, tp=2, attention_dp=False, kv_bpe=1.0, mla_prefill="absorbed")
    assert absorbed.prefill_expand_flops_per_token == 0.0
    assert absorbed.prefill_flops_per_pair == work.decode_flops_per_pair


def test_decompressed_prefill_pays_for_expanding_a_long_cached_prefix():
    # 64 new tokens after 32k cached ones: expanding the cache dominates decompressed prefill,
    # while absorbed attention pays ~3.6x more per pair but expands nothing.
    shape = StepShape.for_prefill_chunks([(32768, 64)])
    params = RooflineParams(step_overhead_s=0.0, layer_overhead_s=0.0)
    dec = RooflineCostModel(MLA, GPU, params=params).step_time_s(shape)
    absd = RooflineCostModel(MLA, GPU, params=params, mla_prefill="absorbed").step_time_s(shape)
    work = AttentionWork(MLA, tp=1, attention_dp=False, kv_bpe=2.0)
    expand_s = work.prefill_expand_flops_per_token * 32768 / (1e15 * 0.6)
    pairs_s = ((work.decode_flops_per_pair - work.prefill_flops_per_pair)
               * shape.prefill_attention_pairs / (1e15 * 0.5))
    assert dec > absd  # at 512x more cached than new tokens, expanding costs more than it saves
    assert dec - absd == pytest.approx(MLA.num_layers * (expand_s - pairs_s), rel=1e-9)


def test_busiest_expert_group_gets_more_than_its_share():
    one = ExpertWork(MOE, tp=8, ep=1)
    assert one.busiest_group_assignments(100) == 400  # one group does everything
    eight = ExpertWork(MOE, tp=8, ep=8)
    mean = 400 / 8
    assert eight.busiest_group_assignments(100) == pytest.approx(mean + math.sqrt(2 * math.log(8) * mean))
    skewed = ExpertWork(MOE, tp=8, ep=8, imbalance=0.3)
    assert skewed.busiest_group_assignments(100) == pytest.approx(
        mean * 1.3 + math.sqrt(2 * math.log(8) * mean))


def test_a_single_token_reads_only_its_experts():
    work = ExpertWork(MOE, tp=1, ep=1)
    flops, params = work.per_device(1)
    assert params == pytest.approx(4 * MOE.expert_params)  # k of E experts touched
    assert flops == 2 * MOE.expert_params * 4
    _, many = work.per_device(10_000)
    assert many == pytest.approx(64 * MOE.expert_params)  # every expert touched


def test_moe_decode_is_cheaper_than_a_dense_model_of_the_same_total_size():
    params = RooflineParams()
    moe = RooflineCostModel(MOE, GPU, params=params)
    # decode at batch 1 is weight-read bound: MoE reads attention + shared + 4 experts, not all 64
    base_moe, _ = moe.decode_coefficients(1, 1000)
    all_experts = MOE.moe_layers * 64 * MOE.expert_params * 2.0 / (3e12 * 0.75)
    active_experts = MOE.moe_layers * 4 * MOE.expert_params * 2.0 / (3e12 * 0.75)
    base_big = base_moe - active_experts + all_experts
    assert base_moe < base_big


def test_attention_dp_adds_an_all_to_all_per_moe_layer():
    params = RooflineParams(allreduce_latency_s=0.0, allreduce_latency_per_peer_s=0.0)
    dep = RooflineCostModel(MOE, GPU, tp=4, ep=4, attention_dp=True, params=params)
    tokens = 4096
    groups = 4 * (1 - (3 / 4) ** 4)  # distinct ranks a token's 4 experts land on (DeepEP)
    bytes_out = tokens / 4 * groups * 1024 * 2.0 * 3 / 4
    expected = 3 * 2 * bytes_out / (400e9 * params.comm_efficiency)
    assert dep._comm_s(tokens) == pytest.approx(expected)  # no all-reduces under attention-DP
    tp_only = RooflineCostModel(MOE, GPU, tp=4, params=params)
    assert tp_only._comm_s(tokens) > 0


def test_dense_model_path_is_unchanged_by_the_moe_machinery():
    model = RooflineCostModel(DENSE, GPU, tp=2)
    shape = StepShape(num_decode_seqs=8, decode_context_tokens=8000)
    base, slope = model.decode_coefficients(8, 8000)
    assert model.step_time_s(shape) == pytest.approx(base + slope * 8000, rel=1e-12)


@pytest.mark.parametrize("tp, ep, dp, message", [
    (4, 3, False, "must divide tp=4"),
    (1, 1, True, "needs tp >= 2 attention-DP ranks"),
    (6, 6, False, "must divide moe's num_experts=64"),
    (3, 1, False, "must divide moe's num_heads=16"),
])
def test_parallelism_rules_name_the_value_and_what_is_allowed(tp, ep, dp, message):
    with pytest.raises(ConfigError, match=message):
        check_parallelism(MOE, tp, 1, ep, dp)


def test_expert_parallelism_needs_experts():
    with pytest.raises(ConfigError, match="dense model"):
        check_parallelism(DENSE, 4, 1, 2, False)
    with pytest.raises(ConfigError, match="dense model"):
        check_parallelism(DENSE, 4, 1, 4, True)


def test_model_that_does_not_fit_says_by_how_much_even_with_ep():
    big = ModelSpec(name="big", num_layers=60, hidden_size=7168, num_heads=128, num_kv_heads=128,
                    head_dim=192, intermediate_size=18432, vocab_size=129280, num_experts=256,
                    experts_per_token=8, num_shared_experts=1, moe_intermediate_size=2048,
                    attention=AttentionKind.MLA, q_lora_rank=1536, kv_lora_rank=512,
                    qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128)
    with pytest.raises(ConfigError, match="does not fit.*short by"):
        kv_capacity_blocks(big, GPU, tp=8, pp=1, weight_dtype=DType.BF16, kv_dtype=DType.BF16,
                           block_size_tokens=16, gpu_memory_utilization=0.9,
                           activation_reserve_fraction=0.05)
    assert kv_capacity_blocks(big, FP4_GPU, tp=8, pp=1, weight_dtype=DType.NVFP4,
                              kv_dtype=DType.FP8, block_size_tokens=16, gpu_memory_utilization=0.9,
                              activation_reserve_fraction=0.05) > 0


def test_formats_store_their_scales():
    assert DType.NVFP4.bytes_per_element == 0.5625  # + one fp8 scale per 16 values
    assert DType.MXFP4.bytes_per_element == 0.53125  # + one 8-bit scale per 32
    assert DType.INT4.bytes_per_element == 0.515625  # + one bf16 scale per 128


def test_fp4_runs_on_fp4_tensor_cores_where_they_exist():
    plan = plan_precision(FP4_GPU, DType.NVFP4, DType.FP8)
    assert plan.gemm_dtype is DType.NVFP4 and not plan.notes
    no_overheads = RooflineParams(step_overhead_s=0, layer_overhead_s=0)
    fast = RooflineCostModel(DENSE, FP4_GPU, weight_dtype=DType.NVFP4, params=no_overheads)
    slow = RooflineCostModel(DENSE, FP4_GPU, weight_dtype=DType.BF16, params=no_overheads)
    big = StepShape.for_prefill_chunks([(0, 512)] * 64)  # GEMM compute-bound, short attention
    assert fast.step_time_s(big) < 0.6 * slow.step_time_s(big)


def test_unsupported_formats_run_weight_only_and_say_so():
    plan = plan_precision(OLD_GPU, DType.FP8, DType.FP8)
    assert plan.weight_only and plan.gemm_dtype is DType.BF16
    assert any("W8A16" in n and "no FP8 tensor cores" in n for n in plan.notes)
    assert any("attention computes in bf16" in n for n in plan.notes)
    w4 = plan_precision(FP4_GPU, DType.INT4, DType.BF16)
    assert w4.weight_only and "W4A16" in w4.notes[0]
    with pytest.raises(ConfigError, match="no FP4 tensor cores"):
        plan_precision(GPU, DType.MXFP4, DType.BF16, fallback="error")
    with pytest.raises(ConfigError, match="kv_dtype='int4'"):
        plan_precision(GPU, DType.BF16, DType.INT4)


def test_weight_only_saves_memory_time_but_not_compute_time():
    int4 = RooflineCostModel(DENSE, OLD_GPU, weight_dtype=DType.INT4,
                             params=RooflineParams(step_overhead_s=0, layer_overhead_s=0))
    bf16 = RooflineCostModel(DENSE, OLD_GPU, weight_dtype=DType.BF16,
                             params=RooflineParams(step_overhead_s=0, layer_overhead_s=0))
    small = StepShape(num_decode_seqs=1, decode_context_tokens=10)  # weight-read bound
    assert int4.step_time_s(small) < 0.35 * bf16.step_time_s(small)
    big = StepShape.for_prefill_chunks([(0, 8192)] * 2)  # compute-bound: same GEMM speed
    assert int4.step_time_s(big) == pytest.approx(bf16.step_time_s(big), rel=0.02)
