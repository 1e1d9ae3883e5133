"""Layouts (issue 26 item 3): attention-DP with expert parallelism on any device count, the
MLA cache per attention-DP rank, and the all-to-all / all-reduce on the scale-out network when a
stage is wider than the scale-up (NVLink) domain."""

from __future__ import annotations

import dataclasses

import pytest

from sim.cost.roofline import RooflineCostModel, RooflineParams
from sim.errors import ConfigError
from sim.hardware.memory import kv_capacity_blocks, weight_bytes_per_device
from sim.hardware.specs import AttentionKind, DType, HardwareSpec, ModelSpec, check_parallelism

# an HGX-like board: 8 devices on NVLink (900 GB/s), 50 GB/s NIC per device beyond it
HGX = HardwareSpec(name="hgx", memory_bytes=180e9, mem_bw_bytes_per_s=8e12,
                   bf16_flops_per_s=2.25e15, fp8_flops_per_s=4.5e15,
                   scaleup_bw_bytes_per_s=900e9, host_bw_bytes_per_s=64e9,
                   scaleup_domain_devices=8, scaleout_bw_bytes_per_s=50e9)
RACK = dataclasses.replace(HGX, name="rack", scaleup_domain_devices=72)
# DeepSeek-shaped: 128 heads, MLA latent 576, 256 experts (8 per token), 4 layers
DSV3 = ModelSpec(name="dsv3ish", num_layers=4, hidden_size=7168, num_heads=128,
                 num_kv_heads=128, head_dim=192, intermediate_size=18432, vocab_size=129280,
                 attention=AttentionKind.MLA, q_lora_rank=1536, kv_lora_rank=512,
                 qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, num_experts=256,
                 experts_per_token=8, num_shared_experts=1, moe_intermediate_size=2048,
                 num_moe_layers=3)
NO_LATENCY = RooflineParams(allreduce_latency_s=0.0, allreduce_latency_per_peer_s=0.0)


def blocks(tp, attention_dp, ep=None, model=DSV3):
    return kv_capacity_blocks(model, HGX, tp=tp, pp=1, weight_dtype=DType.FP8, kv_dtype=DType.FP8,
                              block_size_tokens=64, gpu_memory_utilization=0.9,
                              activation_reserve_fraction=0.05, attention_dp=attention_dp)


def test_dep_holds_more_sequences_than_tp_for_mla():
    # TP replicates MLA's latent on every rank; DEP keeps each rank's own sequences only
    tp8, dep8 = blocks(8, False), blocks(8, True)
    assert dep8 > 5 * tp8
    # DEP2 / DEP4 / DEP8 all run, each rank with its own cache
    assert blocks(2, True) < blocks(4, True) < dep8


@pytest.mark.parametrize("tp, ep", [(2, 2), (4, 4), (8, 8), (8, 2), (8, 1), (16, 16), (12, 4)])
def test_attention_dp_runs_on_any_device_count_with_ep_dividing_it(tp, ep):
    check_parallelism(DSV3, tp, 1, ep, True)  # 12 ranks: 128 heads need not divide under DP
    RooflineCostModel(DSV3, RACK, tp=tp, ep=ep, attention_dp=True)


def test_heads_must_still_divide_tp_without_attention_dp():
    with pytest.raises(ConfigError, match="tp=12: must divide dsv3ish's num_heads=128"):
        check_parallelism(DSV3, 12, 1, 4, False)


def test_the_all_to_all_beyond_the_nvlink_domain_runs_at_the_nic_speed():
    tokens = 16 * 1024
    # 16 ranks: inside an NVL72-like domain, or across two 8-GPU boards
    in_rack = RooflineCostModel(DSV3, RACK, tp=16, ep=16, attention_dp=True, params=NO_LATENCY)
    two_boards = RooflineCostModel(DSV3, HGX, tp=16, ep=16, attention_dp=True, params=NO_LATENCY)
    assert two_boards._comm_s(tokens) > 5 * in_rack._comm_s(tokens)
    # the slower side sets the time: 8 of the 15 peers are behind the NIC
    per_rank = tokens / 16
    groups = 16 * (1 - (15 / 16) ** 8)  # distinct ranks hit by a token's 8 experts
    remote = per_rank * groups * 7168 * 2.0 * 15 / 16
    nic = remote * 8 / 15 / (50e9 * NO_LATENCY.comm_efficiency)
    assert two_boards._comm_s(tokens) == pytest.approx(3 * 2 * nic)
    # within one board both price the NVLink share alike
    one_board = RooflineCostModel(DSV3, HGX, tp=8, ep=8, attention_dp=True, params=NO_LATENCY)
    same_in_rack = RooflineCostModel(DSV3, RACK, tp=8, ep=8, attention_dp=True, params=NO_LATENCY)
    assert one_board._comm_s(tokens) == same_in_rack._comm_s(tokens)


def test_tensor_parallel_all_reduce_across_boards_is_slower_too():
    wide = RooflineCostModel(DSV3, HGX, tp=16, ep=16, params=NO_LATENCY)
    rack = RooflineCostModel(DSV3, RACK, tp=16, ep=16, params=NO_LATENCY)
    assert wide._comm_s(4096) == pytest.approx(rack._comm_s(4096) * 900 / 50)


def test_a_replica_wider_than_the_domain_needs_a_scale_out_bandwidth():
    no_nic = dataclasses.replace(HGX, name="no_nic", scaleout_bw_bytes_per_s=0.0)
    RooflineCostModel(DSV3, no_nic, tp=8, ep=8, attention_dp=True)  # fits in the domain
    with pytest.raises(ConfigError) as err:
        RooflineCostModel(DSV3, no_nic, tp=16, ep=16, attention_dp=True)
    assert str(err.value).startswith("tp=16: tp x pp = 16 devices span more than no_nic's "
                                     "scale-up domain of 8 devices")
    unbounded = dataclasses.replace(no_nic, scaleup_domain_devices=0)  # the old behaviour
    RooflineCostModel(DSV3, unbounded, tp=16, ep=16, attention_dp=True)


def test_a_token_is_sent_once_per_rank_its_experts_land_on():
    dep = RooflineCostModel(DSV3, HGX, tp=8, ep=8, attention_dp=True, params=NO_LATENCY)
    ep2 = RooflineCostModel(DSV3, HGX, tp=8, ep=2, attention_dp=True, params=NO_LATENCY)
    ep1 = RooflineCostModel(DSV3, HGX, tp=8, ep=1, attention_dp=True, params=NO_LATENCY)
    # ep=8: 8 x (1 - (7/8)^8) = 5.25 ranks of one device; ep=2: ~2 groups of 4 devices;
    # ep=1: every token to all 8 devices (an all-gather)
    assert dep._comm_s(4096) == pytest.approx(ep1._comm_s(4096) * 8 * (1 - (7 / 8) ** 8) / 8)
    assert ep2._comm_s(4096) == pytest.approx(ep1._comm_s(4096) * 2 * (1 - 0.5 ** 8) * 4 / 8)
    assert dep._comm_s(4096) < ep2._comm_s(4096) < ep1._comm_s(4096)


def test_bad_domain_fields_are_one_line():
    with pytest.raises(ConfigError, match=r"hardware\[x\].scaleup_domain_devices=-1: must be"):
        dataclasses.replace(HGX, name="x", scaleup_domain_devices=-1)


def test_wide_ep_over_an_nvl72_rack_rounds_expert_slots_up():
    # EP72 for 256 experts: 4 slots per rank (288 in all; 32 spare for redundant copies)
    check_parallelism(DSV3, 72, 1, 72, True)
    with pytest.raises(ConfigError, match="ep=72: must divide dsv3ish's num_experts=256"):
        check_parallelism(DSV3, 72, 1, 72, False)
    ep72 = weight_bytes_per_device(DSV3, 72, 1, DType.FP8, attention_dp=True, ep=72)
    experts = DSV3.moe_layers * DSV3.num_experts * DSV3.expert_params
    replicated = DSV3.num_params - experts
    assert ep72 == pytest.approx(replicated + DSV3.moe_layers * 4 * DSV3.expert_params)
    # a dividing ep keeps the even split
    assert weight_bytes_per_device(DSV3, 64, 1, DType.FP8, attention_dp=True, ep=64) == \
        pytest.approx(replicated + experts / 64)
    RooflineCostModel(DSV3, RACK, tp=72, ep=72, attention_dp=True)


def test_attention_dp_ranks_capture_graphs_and_pay_host_costs_for_their_own_sequences():
    params = RooflineParams(cuda_graph_max_batch=128, graph_step_overhead_s=3e-4,
                            step_overhead_s=1e-3, seq_overhead_s=3e-6)
    dep = RooflineCostModel(DSV3, HGX, tp=8, ep=8, attention_dp=True, params=params)
    tp = RooflineCostModel(DSV3, HGX, tp=8, ep=8, params=params)
    # 512 sequences: 64 per rank, within the captured graphs; one TP replica runs 512 eagerly
    layers = DSV3.num_layers * params.layer_overhead_s
    assert dep._fixed_s(512, 0) == pytest.approx(3e-4 + layers + 3e-6 * 64)
    assert tp._fixed_s(512, 0) == pytest.approx(1e-3 + layers + 3e-6 * 512)
