"""Step-time cost models: the StepCostModel contract over every implementation, roofline
physics, and table reproduction/validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim import CostModelKind, CostModelSpec, DType, RooflineParams
from sim.cost.base import ConstantCostModel, StepCostModel, StepShape
from sim.cost.factory import build_cost_model
from sim.cost.roofline import RooflineCostModel
from sim.cost.table import TableCostModel
from sim.errors import ConfigError

# A table linear in total context per batch size, with prefill measured at three prompt lengths:
# rows (batch_size, prompt_tokens, prefill_ms, decode_step_ms, context_tokens).
DECODE_BASE_MS = {1: 7.0, 8: 8.0, 32: 11.0}
DECODE_SLOPE_MS = {1: 2e-5, 8: 3e-5, 32: 4e-5}  # ms per token of total context
PREFILL_MS = {(1, 128): 9.0, (1, 1024): 30.0, (1, 4096): 110.0,
              (8, 128): 31.0, (8, 1024): 215.0, (8, 4096): 900.0,
              (32, 128): 110.0, (32, 1024): 850.0, (32, 4096): 3500.0}
CONTEXTS = {128: 128, 1024: 1500, 4096: 6000}  # prompt_tokens -> per-sequence decode context


def table_rows():
    rows = []
    for (batch, prompt), prefill_ms in PREFILL_MS.items():
        context = CONTEXTS[prompt]
        decode_ms = DECODE_BASE_MS[batch] + DECODE_SLOPE_MS[batch] * batch * context
        rows.append((batch, prompt, prefill_ms, decode_ms, context))
    return tuple(rows)


def roofline(b, **kw):
    model = kw.pop("model", None) or b.llama_8b()
    return RooflineCostModel(model, b.h100(), **kw)


def all_models(b):
    calibrated = dict(compute_half_tokens=64.0)
    optional = {"seq_overhead_s": 2e-5, "layer_overhead_s": 1e-6,
                "attention_half_context_tokens": 256.0, "decode_attention_efficiency": 0.6}
    names = {f.name for f in dataclasses.fields(RooflineParams)}
    calibrated.update({k: v for k, v in optional.items() if k in names})
    return {
        "constant": ConstantCostModel(0.02),
        "roofline_8b": roofline(b),
        "roofline_70b_tp4_fp8": roofline(b, model=b.llama_70b(), tp=4, weight_dtype=DType.FP8,
                                         kv_dtype=DType.FP8),
        "roofline_calibrated": roofline(b, params=RooflineParams(**calibrated)),
        "table": TableCostModel(table_rows(), "synthetic"),
    }


MODEL_NAMES = ["constant", "roofline_8b", "roofline_70b_tp4_fp8", "roofline_calibrated", "table"]


def decode_shape(batch, context_per_seq):
    return StepShape(num_decode_seqs=batch, decode_context_tokens=batch * context_per_seq)


# --- the StepCostModel contract -----------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_contract_decode_coefficients_reproduce_step_time(sim_build, name):
    """The closed-form decode runs rely on step_time(decode shape) == base + slope * context."""
    model = all_models(sim_build)[name]
    assert isinstance(model, StepCostModel)
    for batch in (1, 2, 7, 8, 20, 32, 100):
        for context in (1, 100, 1500, 6000, 30000):
            total = batch * context
            base, slope = model.decode_coefficients(batch, total)
            assert base > 0 and slope >= 0
            assert base + slope * total == pytest.approx(
                model.step_time_s(decode_shape(batch, context)), rel=1e-12)
            # and the pair stays exact while context grows over a run (linear, not just local)
            later = total + 500 * batch
            assert base + slope * later == pytest.approx(
                model.step_time_s(StepShape(num_decode_seqs=batch, decode_context_tokens=later)),
                rel=1e-9)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_contract_step_times_positive_and_monotone(sim_build, name):
    model = all_models(sim_build)[name]
    prev = 0.0
    for tokens in (1, 16, 256, 2048, 16384):
        t = model.step_time_s(StepShape.for_prefill_chunks([(0, tokens)]))
        assert np.isfinite(t) and t > 0 and t >= prev
        prev = t
    for batch in (1, 8, 64):
        times = [model.step_time_s(decode_shape(batch, c)) for c in (10, 1000, 10000)]
        assert all(np.isfinite(times)) and times == sorted(times)


def test_factory_builds_each_kind(sim_build):
    assert isinstance(build_cost_model(sim_build.make_pool(cost=sim_build.constant_cost(0.5))),
                      ConstantCostModel)
    assert isinstance(build_cost_model(sim_build.make_pool()), RooflineCostModel)
    pool = sim_build.make_pool(cost=CostModelSpec(kind=CostModelKind.TABLE,
                                                  table_rows=table_rows()))
    assert isinstance(build_cost_model(pool), TableCostModel)
    # the roofline the factory builds uses the pool's parallelism and dtypes
    pool = sim_build.make_pool(model=sim_build.llama_70b(), tp=4, weight_dtype=DType.FP8)
    built = build_cost_model(pool)
    direct = roofline(sim_build, model=sim_build.llama_70b(), tp=4, weight_dtype=DType.FP8)
    shape = decode_shape(16, 2000)
    assert built.step_time_s(shape) == direct.step_time_s(shape)


# --- roofline physics -----------------------------------------------------------------------


def test_decode_step_grows_with_batch_and_context(sim_build):
    m = roofline(sim_build)
    grid = np.array([[m.step_time_s(decode_shape(b, c)) for c in (128, 2048, 8192)]
                     for b in (1, 8, 64, 256)])
    assert np.all(np.diff(grid, axis=0) > 0)  # more sequences, longer step
    assert np.all(np.diff(grid, axis=1) > 0)  # more context, longer step
    # small batches are weight-read bound: 8 sequences cost little more than 1
    assert grid[1, 0] < 1.05 * grid[0, 0]
    # large batch x long context is KV-read bound: roughly linear in context
    assert grid[3, 2] > 3 * grid[3, 1]


def test_prefill_is_linear_in_tokens_at_large_counts(sim_build):
    m = roofline(sim_build)

    def batched(total):  # many 512-token prompts: compute-bound GEMMs, bounded attention
        return m.step_time_s(StepShape.for_prefill_chunks([(0, 512)] * (total // 512)))

    for n in (4096, 8192, 16384):
        assert batched(2 * n) / batched(n) == pytest.approx(2.0, rel=0.05)
    # one long prompt: attention is quadratic, so per-token cost rises with length
    single = [m.step_time_s(StepShape.for_prefill_chunks([(0, n)])) / n for n in (4096, 16384, 65536)]
    assert single == sorted(single) and single[-1] > 1.3 * single[0]
    # tiny prefills are weight-read bound: 16 and 128 tokens cost about the same
    tiny = [m.step_time_s(StepShape.for_prefill_chunks([(0, n)])) for n in (16, 128)]
    assert tiny[1] < 1.05 * tiny[0]


def test_fp8_weights_speed_up_memory_bound_decode(sim_build):
    bf16 = roofline(sim_build)
    fp8 = roofline(sim_build, weight_dtype=DType.FP8)
    shape = decode_shape(8, 1000)
    assert fp8.step_time_s(shape) < 0.75 * bf16.step_time_s(shape)
    # fp8 KV as well halves the KV bytes: long-context decode gets faster still
    fp8_kv = roofline(sim_build, weight_dtype=DType.FP8, kv_dtype=DType.FP8)
    long = decode_shape(64, 8000)
    assert fp8_kv.step_time_s(long) < 0.8 * fp8.step_time_s(long)


def test_tensor_parallel_reduces_step_time_for_70b(sim_build):
    tp1 = roofline(sim_build, model=sim_build.llama_70b(), tp=1)
    tp2 = roofline(sim_build, model=sim_build.llama_70b(), tp=2)
    for shape in (decode_shape(32, 1000), decode_shape(1, 100),
                  StepShape.for_prefill_chunks([(0, 4096)])):
        assert tp2.step_time_s(shape) < 0.7 * tp1.step_time_s(shape)


def test_tensor_parallel_adds_communication(sim_build):
    """A sharded step is never faster than a perfect 1/tp split of the unsharded compute."""
    m = sim_build.llama_70b()
    one = roofline(sim_build, model=m, tp=1, params=RooflineParams(step_overhead_s=0.0))
    eight = roofline(sim_build, model=m, tp=8, params=RooflineParams(step_overhead_s=0.0))
    shape = StepShape.for_prefill_chunks([(0, 512)] * 8)
    assert eight.step_time_s(shape) > one.step_time_s(shape) / 8


def test_mixed_step_costs_more_than_either_part(sim_build):
    for m in (roofline(sim_build), roofline(sim_build, model=sim_build.llama_70b(), tp=4)):
        prefill = StepShape.for_prefill_chunks([(0, 512)])
        decode = decode_shape(32, 2000)
        both = StepShape(prefill_tokens=prefill.prefill_tokens,
                         prefill_attention_pairs=prefill.prefill_attention_pairs,
                         prefill_context_tokens=prefill.prefill_context_tokens,
                         num_prefill_seqs=1, num_decode_seqs=32,
                         decode_context_tokens=decode.decode_context_tokens)
        t_both = m.step_time_s(both)
        assert t_both > m.step_time_s(prefill) and t_both > m.step_time_s(decode)
        # but less than running them as two steps (one overhead, shared weight reads)
        assert t_both < m.step_time_s(prefill) + m.step_time_s(decode)


def test_empty_step_costs_nothing(sim_build):
    assert roofline(sim_build).step_time_s(StepShape()) == 0.0


# --- the table model --------------------------------------------------------------------------


def test_table_reproduces_its_prefill_rows():
    table = TableCostModel(table_rows())
    for (batch, prompt), prefill_ms in PREFILL_MS.items():
        shape = StepShape(prefill_tokens=batch * prompt, num_prefill_seqs=batch)
        assert table.step_time_s(shape) == pytest.approx(prefill_ms / 1e3, rel=1e-9)


def test_table_reproduces_a_linear_decode_table_exactly():
    table = TableCostModel(table_rows())
    for batch in DECODE_BASE_MS:
        base, slope = table.decode_coefficients(batch, batch * 1000)
        assert base == pytest.approx(DECODE_BASE_MS[batch] / 1e3, rel=1e-9)
        assert slope == pytest.approx(DECODE_SLOPE_MS[batch] / 1e3, rel=1e-9)
        for context in CONTEXTS.values():
            expected_ms = DECODE_BASE_MS[batch] + DECODE_SLOPE_MS[batch] * batch * context
            assert table.step_time_s(decode_shape(batch, context)) == pytest.approx(
                expected_ms / 1e3, rel=1e-9)


def test_table_interpolates_between_batch_sizes():
    table = TableCostModel(table_rows())
    w = (4 - 1) / (8 - 1)
    base, slope = table.decode_coefficients(4, 4 * 1000)
    assert base == pytest.approx(((1 - w) * DECODE_BASE_MS[1] + w * DECODE_BASE_MS[8]) / 1e3)
    assert slope == pytest.approx(((1 - w) * DECODE_SLOPE_MS[1] + w * DECODE_SLOPE_MS[8]) / 1e3)
    # prefill between measured token counts of one batch size: linear
    mid = table.step_time_s(StepShape(prefill_tokens=(128 + 1024) // 2, num_prefill_seqs=1))
    assert mid == pytest.approx((9.0 + 30.0) / 2 / 1e3, rel=1e-3)
    # beyond the last point: extrapolated with the last segment's slope
    far = table.step_time_s(StepShape(prefill_tokens=8192, num_prefill_seqs=1))
    slope_ms = (110.0 - 30.0) / (4096 - 1024)
    assert far == pytest.approx((110.0 + slope_ms * 4096) / 1e3, rel=1e-9)


@pytest.mark.parametrize("rows,why", [
    ((), "no rows"),
    (((1, 128, 9.0, 7.0, 128),), "one row"),
    (((1, 128, 9.0, 7.0), (2, 128, 9.0, 7.0)), "four columns"),
    (((1, 128, -9.0, 7.0, 128), (2, 128, 9.0, 7.0, 128)), "negative time"),
    (((1, 128, float("nan"), 7.0, 128), (2, 128, 9.0, 7.0, 128)), "nan"),
    (((1, 128, float("inf"), 7.0, 128), (2, 128, 9.0, 7.0, 128)), "inf"),
])
def test_invalid_tables_raise_config_error(rows, why):
    with pytest.raises(ConfigError, match="cost_model.table"):
        TableCostModel(rows, "bad.csv")


@pytest.mark.parametrize("rows", [
    ((0, 128, 9.0, 7.0, 128), (1, 256, 20.0, 8.0, 256)),
    ((1, 0, 9.0, 7.0, 128), (1, 0, 20.0, 8.0, 256)),
], ids=["zero_batch", "zero_prompt"])
def test_degenerate_table_rows_raise_config_error(rows):
    with pytest.raises(ConfigError, match="cost_model.table"):
        TableCostModel(rows, "bad.csv")
