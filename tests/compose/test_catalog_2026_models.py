"""The 2026 catalog models load with their published sizes, and their memory rules hold."""

from __future__ import annotations

import pytest

from hermes_opt.compose import catalog, to_sim
from sim.hardware.memory import kv_bytes_per_token_per_device
from sim.hardware.specs import AttentionKind, DType

# (catalog name, published total params, published active params or None), in billions. Sources:
# each model card (Hugging Face); DeepSeek-V3's 671B excludes its 14B multi-token-prediction module.
PUBLISHED = [
    ("deepseek_v3", 671, 37), ("deepseek_r1", 671, 37), ("qwen3_235b_a22b", 235, 22),
    ("qwen3_30b_a3b", 30.5, 3.3), ("qwen3_8b", 8.2, None), ("gpt_oss_120b", 117, None),
    ("gpt_oss_20b", 21, None), ("llama4_maverick", 400, 17), ("mixtral_8x22b", 141, 39),
    ("mixtral_8x7b", 46.7, 12.9), ("llama3_3_70b", 70.6, None),
]


def spec(name):
    return to_sim.model_spec(catalog.entry("model", name))


@pytest.mark.parametrize("name, total_b, active_b", PUBLISHED)
def test_parameter_counts_match_the_model_cards(name, total_b, active_b):
    model = spec(name)
    assert model.num_params / 1e9 == pytest.approx(total_b, rel=0.03)
    if active_b is not None:
        assert model.active_params / 1e9 == pytest.approx(active_b, rel=0.06)


def test_deepseek_uses_mla_with_a_576_element_latent():
    model = spec("deepseek_v3")
    assert model.attention is AttentionKind.MLA
    assert model.kv_bytes_per_token(DType.FP8) == 61 * 576
    # 70 KB per token in fp8, not the ~4.7 MB a 128-head MHA cache of the same shapes would take
    assert kv_bytes_per_token_per_device(model, 8, 1, DType.FP8) == 61 * 576
    assert model.dense_layers == 3 and model.num_shared_experts == 1


def test_every_model_and_hardware_entry_composes():
    for name in catalog.options("model"):
        to_sim.model_spec(catalog.entry("model", name))
    fp4 = []
    for name in catalog.options("hardware"):
        hw = to_sim.hardware_spec(catalog.entry("hardware", name))
        if hw.fp4_flops_per_s:
            fp4.append(name)
    assert {"b200", "b300", "gb200", "gb300", "mi355x", "rtx_pro_6000"} <= set(fp4)
    assert "h100_sxm" not in fp4 and "mi300x" not in fp4
