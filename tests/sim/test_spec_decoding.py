"""Speculative decoding (sim/hardware/speculative.py, sim/cost/speculative.py): the acceptance
length, the cost of drafting and verifying, the drafter's memory, and the checks on bad input."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from sim.cost.roofline import RooflineCostModel
from sim.cost.speculative import SpeculativeCostModel
from sim.errors import ConfigError
from sim.hardware.memory import kv_capacity_blocks
from sim.hardware.specs import AttentionKind, DType, HardwareSpec, ModelSpec
from sim.hardware.speculative import SpecDecodeSpec, SpecMethod
from sim.roles import PoolRole

GPU = HardwareSpec(name="gpu", memory_bytes=180e9, mem_bw_bytes_per_s=8e12,
                   bf16_flops_per_s=2.25e15, fp8_flops_per_s=4.5e15,
                   scaleup_bw_bytes_per_s=900e9, host_bw_bytes_per_s=64e9)
# a small DeepSeek-shaped model: MLA attention, 1 dense + 3 MoE layers
MOE_MLA = ModelSpec(name="moe_mla", num_layers=4, hidden_size=2048, num_heads=16,
                    num_kv_heads=16, head_dim=192, intermediate_size=8192, vocab_size=32000,
                    attention=AttentionKind.MLA, q_lora_rank=512, kv_lora_rank=512,
                    qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, num_experts=64,
                    experts_per_token=4, num_shared_experts=1, moe_intermediate_size=1024,
                    num_moe_layers=3)
DENSE = ModelSpec(name="dense", num_layers=8, hidden_size=4096, num_heads=32, num_kv_heads=8,
                  head_dim=128, intermediate_size=14336, vocab_size=32000)
DRAFT = ModelSpec(name="draft", num_layers=2, hidden_size=1024, num_heads=8, num_kv_heads=8,
                  head_dim=128, intermediate_size=4096, vocab_size=32000)


def mtp(k: int, rate: float) -> SpecDecodeSpec:
    return SpecDecodeSpec(method=SpecMethod.MTP, draft_tokens=k, acceptance_per_position=(rate,) * k)


def tpot_s(cost, num_seqs: int = 1, context: int = 2000) -> float:
    """Time per generated token of a decode-only step (one scheduler step = one token)."""
    return cost.step_time(0, 0.0, 0, 0, num_seqs, num_seqs * context)


def target(model=MOE_MLA, **kw) -> RooflineCostModel:
    return RooflineCostModel(model, GPU, tp=4, ep=kw.pop("ep", 4), weight_dtype=DType.FP8, **kw)


def test_acceptance_length_is_one_plus_the_chance_each_prefix_is_kept():
    spec = SpecDecodeSpec(method=SpecMethod.MTP, draft_tokens=3,
                          acceptance_per_position=(0.9, 0.5, 0.5, 0.99))
    assert spec.acceptance_length == pytest.approx(1 + 0.9 + 0.45 + 0.225)  # 4th rate unused
    assert mtp(4, 0.0).acceptance_length == 1.0
    assert mtp(4, 1.0).acceptance_length == 5.0
    assert SpecDecodeSpec().acceptance_length == 1.0


def test_tpot_falls_as_acceptance_rises_and_is_worse_than_plain_decoding_at_zero():
    plain = target()
    tpots = [tpot_s(SpeculativeCostModel(plain, mtp(3, rate))) for rate in (0.0, 0.3, 0.6, 0.9)]
    assert all(a > b for a, b in zip(tpots, tpots[1:], strict=False)), tpots
    # nothing accepted: every step still verifies 4 tokens and drafts 3, for one token
    assert tpots[0] > tpot_s(plain)
    # high acceptance beats plain decoding at batch 1 (decode is memory-bound)
    assert tpots[-1] < tpot_s(plain) / 2


def test_a_step_costs_verification_plus_drafts_over_the_acceptance_length():
    plain = target()
    spec = mtp(2, 0.8)
    cost = SpeculativeCostModel(plain, spec)
    verify_base, verify_slope = plain.multi_query_decode_coefficients(8, 3)
    draft_base, draft_slope = cost.draft_pass_coefficients(8)
    base, slope = cost.decode_coefficients(8, 0)
    tau = 1 + 0.8 + 0.64
    assert base == pytest.approx((verify_base + 2 * draft_base) / tau)
    assert slope == pytest.approx((verify_slope + 2 * draft_slope) / tau)
    # verification of one query per sequence is a plain decode step
    assert plain.multi_query_decode_coefficients(8, 1) == pytest.approx(plain.decode_coefficients(8, 0))
    # a draft pass is one layer: far cheaper than the whole model's step
    assert draft_base < plain.decode_coefficients(8, 0)[0] / 2


def test_decode_only_steps_keep_the_closed_form_contract():
    cost = SpeculativeCostModel(target(), mtp(3, 0.7))
    for n, context in ((1, 100), (16, 40_000), (64, 300_000)):
        base, slope = cost.decode_coefficients(n, context)
        assert cost.step_time(0, 0.0, 0, 0, n, context) == base + slope * context


def test_a_mixed_step_pays_the_prompt_fully_and_the_decodes_speculatively():
    plain = target()
    cost = SpeculativeCostModel(plain, mtp(3, 0.9))
    for chunk in (64, 2048):
        args = (chunk, chunk * (chunk + 1) / 2, chunk, 1)
        prompt_only = plain.step_time(*args, 0, 0)
        mixed = cost.step_time(*args, 32, 96_000)
        assert prompt_only < mixed
        assert cost.step_time(*args, 0, 0) == prompt_only
        # the decoders' share of the real step (drafts + verification), over tau = 3.439
        base, slope = cost.decode_coefficients(32, 96_000)
        plain_base, plain_slope = plain.decode_coefficients(32, 96_000)
        real = (plain.step_time(*args, 32, 96_000) - plain_base - plain_slope * 96_000
                + cost.acceptance_length * (base + slope * 96_000))
        assert mixed == pytest.approx(prompt_only + (real - prompt_only) / 3.439)


def test_draft_model_passes_cost_the_draft_models_whole_step():
    plain = RooflineCostModel(DENSE, GPU, tp=2)
    draft = RooflineCostModel(DRAFT, GPU, tp=2)
    spec = SpecDecodeSpec(method=SpecMethod.DRAFT_MODEL, draft_tokens=4,
                          acceptance_per_position=(0.7,) * 4, draft_model=DRAFT)
    cost = SpeculativeCostModel(plain, spec, draft=draft)
    assert cost.draft_pass_coefficients(8) == draft.decode_coefficients(8, 0)


def test_the_drafters_weights_and_kv_take_memory_from_the_kv_cache():
    def blocks(spec=None, model=MOE_MLA, tp=4, attention_dp=False):
        return kv_capacity_blocks(model, GPU, tp=tp, pp=1, weight_dtype=DType.FP8,
                                  kv_dtype=DType.FP8, block_size_tokens=16,
                                  gpu_memory_utilization=0.9, activation_reserve_fraction=0.05,
                                  attention_dp=attention_dp, spec=spec)
    base = blocks()
    with_mtp = blocks(mtp(3, 0.8))
    # one extra layer's cache on 4 layers: at most 4/5 of the blocks, less for the weights
    assert with_mtp < base * 4 / 5 + 1
    assert with_mtp > base * 0.7
    draft = SpecDecodeSpec(method=SpecMethod.DRAFT_MODEL, draft_tokens=2,
                           acceptance_per_position=(0.7, 0.7), draft_model=DRAFT)
    assert blocks(draft, model=DENSE, tp=2) < blocks(model=DENSE, tp=2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(method=SpecMethod.MTP, draft_tokens=0, acceptance_per_position=()),
     "spec_decoding.draft_tokens=0: must be an integer in 1..16"),
    (dict(method=SpecMethod.MTP, draft_tokens=3, acceptance_per_position=(0.8, 0.7)),
     "spec_decoding.acceptance_per_position=[0.8, 0.7]: gives 2 position(s) but draft_tokens=3"),
    (dict(method=SpecMethod.EAGLE, draft_tokens=1, acceptance_per_position=(1.5,)),
     "spec_decoding.acceptance_per_position[0]=1.5: must be a probability in [0, 1]"),
    (dict(method=SpecMethod.DRAFT_MODEL, draft_tokens=1, acceptance_per_position=(0.5,)),
     "spec_decoding.draft_model=None: method=draft_model needs a draft model"),
    (dict(method=SpecMethod.MTP, draft_tokens=1, acceptance_per_position=(0.5,),
          draft_model=DRAFT),
     "spec_decoding.draft_model='draft': only for method=draft_model, not mtp"),
])
def test_bad_specs_are_one_line_naming_field_value_and_what_is_allowed(kwargs, message):
    with pytest.raises(ConfigError) as err:
        SpecDecodeSpec(**kwargs)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def pool(model, tp, cost="roofline", role=PoolRole.COLOCATED):
    return SimpleNamespace(model=model, tp=tp, attention_dp=False, role=role,
                           cost_model=SimpleNamespace(kind=SimpleNamespace(value=cost)))


def test_a_draft_model_must_share_the_vocabulary_and_split_over_tp():
    other = ModelSpec(name="other", num_layers=2, hidden_size=1024, num_heads=6, num_kv_heads=6,
                      head_dim=128, intermediate_size=4096, vocab_size=32000)
    spec = SpecDecodeSpec(method=SpecMethod.DRAFT_MODEL, draft_tokens=1,
                          acceptance_per_position=(0.5,), draft_model=other)
    with pytest.raises(ConfigError, match=r"cluster.spec_decoding.draft_model='other': runs on "):
        spec.check_pool(pool(DENSE, 4), "cluster")
    wide = ModelSpec(name="wide", num_layers=2, hidden_size=1024, num_heads=8, num_kv_heads=8,
                     head_dim=128, intermediate_size=4096, vocab_size=50000)
    spec = SpecDecodeSpec(method=SpecMethod.DRAFT_MODEL, draft_tokens=1,
                          acceptance_per_position=(0.5,), draft_model=wide)
    with pytest.raises(ConfigError, match="vocab_size 50000 differs"):
        spec.check_pool(pool(DENSE, 2), "cluster")
    with pytest.raises(ConfigError, match="needs the roofline cost model, not table"):
        mtp(1, 0.5).check_pool(pool(MOE_MLA, 4, cost="table"), "cluster")
    with pytest.raises(ConfigError, match="embed pools do not decode"):
        mtp(1, 0.5).check_pool(pool(MOE_MLA, 4, role=PoolRole.EMBED), "cluster")


def test_speculative_tpot_is_finite_at_every_draft_length():
    plain = target()
    for k in range(1, 17):
        assert math.isfinite(tpot_s(SpeculativeCostModel(plain, mtp(k, 0.5))))
