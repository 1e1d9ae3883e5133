"""Board topology and power limits (issue 22): a 4-GPU HGX board links GPUs point to point, so a
TP-2 pair gets a third of the per-device NVLink bandwidth an NVSwitch board gives it; a PCIe card
of an SXM part's die runs its GEMMs at the clock its power limit allows."""

from __future__ import annotations

import dataclasses

import pytest

from sim.cost.base import StepShape
from sim.cost.roofline import RooflineCostModel, RooflineParams, allreduce_time_s
from sim.errors import ConfigError
from sim.hardware.specs import DType, HardwareSpec

SWITCHED = HardwareSpec(name="hgx8", memory_bytes=80e9, mem_bw_bytes_per_s=3.35e12,
                        bf16_flops_per_s=989e12, fp8_flops_per_s=1979e12,
                        scaleup_bw_bytes_per_s=450e9, host_bw_bytes_per_s=64e9,
                        scaleup_domain_devices=8)
MESH4 = dataclasses.replace(SWITCHED, name="hgx4", scaleup_domain_devices=4,
                            scaleup_mesh_devices=4)
NO_LATENCY = RooflineParams(allreduce_latency_s=0.0, allreduce_latency_per_peer_s=0.0)


@pytest.mark.parametrize("devices, share", [(2, 1 / 3), (3, 2 / 3), (4, 1.0), (8, 1.0)])
def test_a_mesh_group_reaches_only_its_members_links(devices, share):
    assert MESH4.group_bw_bytes_per_s(devices) == pytest.approx(450e9 * share)
    assert SWITCHED.group_bw_bytes_per_s(devices) == 450e9


def test_a_tp2_all_reduce_on_a_4_gpu_mesh_takes_three_times_as_long():
    size = 64e6
    switched = allreduce_time_s(NO_LATENCY, SWITCHED, 2, size)
    assert allreduce_time_s(NO_LATENCY, MESH4, 2, size) == pytest.approx(3 * switched)
    # all four talking use all 18 links: the same as the switch
    assert allreduce_time_s(NO_LATENCY, MESH4, 4, size) == pytest.approx(
        allreduce_time_s(NO_LATENCY, SWITCHED, 4, size))


def test_a_decode_step_at_tp2_is_slower_on_the_mesh_board(model_70b):
    shape = StepShape(num_decode_seqs=256, decode_context_tokens=256 * 512)
    def step(hw):
        return RooflineCostModel(model_70b, hw, tp=2, weight_dtype=DType.FP8, kv_dtype=DType.FP8,
                                 params=NO_LATENCY).step_time_s(shape)
    assert step(MESH4) > step(SWITCHED) * 1.02


def test_a_power_limited_part_computes_slower_but_streams_memory_as_fast(model_70b):
    capped = dataclasses.replace(SWITCHED, name="capped", sustained_compute_fraction=0.5)
    def model(hw):
        return RooflineCostModel(model_70b, hw, tp=1, weight_dtype=DType.FP8, kv_dtype=DType.FP8,
                                 params=NO_LATENCY)
    big_prefill = StepShape.for_prefill_chunks([(0, 8192)])
    assert model(capped).step_time_s(big_prefill) == pytest.approx(
        2 * model(SWITCHED).step_time_s(big_prefill), rel=0.05)
    one_decode = StepShape(num_decode_seqs=1, decode_context_tokens=128)  # weight streaming: bandwidth-bound
    assert model(capped).step_time_s(one_decode) == pytest.approx(
        model(SWITCHED).step_time_s(one_decode), rel=0.02)
    assert capped.sustained_flops_per_s(DType.FP8) == pytest.approx(0.5 * 1979e12)


@pytest.mark.parametrize("field, value", [("scaleup_mesh_devices", 1),
                                          ("scaleup_mesh_devices", -4),
                                          ("sustained_compute_fraction", 0.0),
                                          ("sustained_compute_fraction", 1.5)])
def test_bad_topology_and_power_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"hardware\\[hgx8\\].{field}"):
        dataclasses.replace(SWITCHED, **{field: value})
