"""The roofline's calibration terms: each does what its docstring says, and decode steps stay
exactly ``base + slope * context`` (what the replica's closed-form decode runs rely on)."""

from __future__ import annotations

import dataclasses

import pytest

from hermes_opt.calibration.predict import hardware_spec, model_spec
from sim.cost.base import StepShape
from sim.cost.roofline import RooflineCostModel, RooflineParams, allreduce_time_s, comm_slowdown
from sim.errors import ConfigError

CALIBRATED = RooflineParams(
    compute_efficiency=0.7, memory_efficiency=0.85, attention_efficiency=0.2, comm_efficiency=0.6,
    allreduce_latency_s=2e-5, step_overhead_s=3e-3, compute_half_tokens=64, roofline_sharpness=3.0,
    layer_overhead_s=4e-5, seq_overhead_s=2e-4, prefill_seq_overhead_s=8e-3,
    allreduce_latency_per_peer_s=1e-5, comm_large_message_bytes=4e7, comm_large_message_efficiency=0.2,
    decode_attention_efficiency=0.4, attention_half_context_tokens=300, prefill_step_overhead_s=1.2e-2)


def model(params: RooflineParams, tp: int = 4) -> RooflineCostModel:
    return RooflineCostModel(model_spec("llama2_70b"), hardware_spec("h100_sxm"), tp=tp, params=params)


@pytest.mark.parametrize("params", [RooflineParams(), CALIBRATED])
@pytest.mark.parametrize("num_seqs", [1, 7, 64, 300])
def test_decode_step_is_exactly_linear_in_context(params, num_seqs):
    cm = model(params)
    base, slope = cm.decode_coefficients(num_seqs, 1000 * num_seqs)
    for context in (num_seqs, 500 * num_seqs, 4000 * num_seqs, 20000 * num_seqs):
        direct = cm.step_time_s(StepShape(num_decode_seqs=num_seqs, decode_context_tokens=context))
        assert base + slope * context == pytest.approx(direct, rel=1e-12)


def test_fixed_overheads_add_per_step_layer_and_sequence():
    plain = dataclasses.replace(CALIBRATED, step_overhead_s=0.0, layer_overhead_s=0.0,
                                seq_overhead_s=0.0, prefill_seq_overhead_s=0.0)
    shape = StepShape.for_prefill_chunks([(0, 300)] * 3)
    extra = model(CALIBRATED).step_time_s(shape) - model(plain).step_time_s(shape)
    layers = model_spec("llama2_70b").num_layers
    assert extra == pytest.approx(3e-3 + layers * 4e-5 + 3 * 2e-4 + 3 * 8e-3, rel=1e-9)


def test_prefill_step_overhead_is_paid_once_per_step_with_prompt_tokens():
    plain = dataclasses.replace(CALIBRATED, prefill_step_overhead_s=0.0)
    for chunks in ([(0, 300)], [(0, 300)] * 3, [(0, 100)] * 16):
        shape = StepShape.for_prefill_chunks(chunks)
        extra = model(CALIBRATED).step_time_s(shape) - model(plain).step_time_s(shape)
        assert extra == pytest.approx(1.2e-2, rel=1e-9), chunks
    decode = StepShape(num_decode_seqs=8, decode_context_tokens=8 * 900)
    assert model(CALIBRATED).step_time_s(decode) == model(plain).step_time_s(decode)
    assert model(CALIBRATED).decode_coefficients(8, 0) == model(plain).decode_coefficients(8, 0)


def test_attention_half_context_is_that_many_extra_tokens_per_sequence():
    base = dataclasses.replace(CALIBRATED, attention_half_context_tokens=0.0)
    with_half = model(CALIBRATED)
    shape = StepShape(num_decode_seqs=10, decode_context_tokens=10 * 800)
    shifted = StepShape(num_decode_seqs=10, decode_context_tokens=10 * (800 + 300))
    assert with_half.step_time_s(shape) == pytest.approx(model(base).step_time_s(shifted), rel=1e-12)


def test_compute_efficiency_ramps_with_tokens_per_step():
    # fixed per-layer latency off: the ratio isolates the compute-efficiency ramp
    flat_params = RooflineParams(layer_overhead_s=0.0)
    ramp = model(dataclasses.replace(flat_params, compute_half_tokens=512.0))
    flat = model(flat_params)
    # large steps are compute bound: time per token falls toward the flat roofline as tokens grow
    ratios = [ramp.layer_dense_s(t) / flat.layer_dense_s(t) for t in (1024, 4096, 32768)]
    assert ratios[0] > ratios[1] > ratios[2] > 1.0
    assert ratios[0] == pytest.approx(1 + 512 / 1024, rel=1e-6)


def test_roofline_sharpness_blends_only_near_the_ridge():
    sharp, soft = model(RooflineParams()), model(dataclasses.replace(RooflineParams(), roofline_sharpness=2.0))
    near = soft.layer_dense_s(300) / sharp.layer_dense_s(300)
    far = soft.layer_dense_s(1) / sharp.layer_dense_s(1)
    assert near > 1.2 and far == pytest.approx(1.0, abs=0.01)


def test_allreduce_bandwidth_curve_and_latency_per_peer():
    hw = hardware_spec("h100_sxm")
    p = CALIBRATED
    assert comm_slowdown(p, 1e3) == pytest.approx(1.0, abs=1e-6)
    assert comm_slowdown(p, 1e12) == pytest.approx(p.comm_efficiency / p.comm_large_message_efficiency, rel=1e-6)
    small = [allreduce_time_s(p, hw, n, 1024) for n in (2, 4, 8)]
    assert small[0] < small[1] < small[2]  # latency grows with ring size
    assert allreduce_time_s(p, hw, 1, 1e9) == 0.0


def test_tp_all_reduce_time_is_in_the_step():
    no_comm = dataclasses.replace(CALIBRATED, allreduce_latency_s=0.0, allreduce_latency_per_peer_s=0.0)
    shape = StepShape.for_prefill_chunks([(0, 2048)])
    tp1 = RooflineCostModel(model_spec("llama2_70b"), hardware_spec("h100_sxm"), tp=8, params=no_comm)
    tp8 = model(CALIBRATED, tp=8)
    layers = model_spec("llama2_70b").num_layers
    latency = 2 * layers * (CALIBRATED.allreduce_latency_s + 7 * CALIBRATED.allreduce_latency_per_peer_s)
    assert tp8.step_time_s(shape) - tp1.step_time_s(shape) == pytest.approx(latency, rel=1e-9)


@pytest.mark.parametrize("field,value", [("seq_overhead_s", -1.0), ("decode_attention_efficiency", 1.5),
                                         ("comm_large_message_efficiency", -0.1),
                                         ("roofline_sharpness", -2.0),
                                         ("prefill_step_overhead_s", -1e-3)])
def test_invalid_params_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"cost_model.{field}"):
        RooflineParams(**{field: value})
