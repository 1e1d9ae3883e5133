"""hermes-sim import-model's mapping (hermes_opt/compose/hf_config.py): every shipped model entry
is re-derived from the config.json it came from, written here by hand with Hugging Face's field
names and the entry's own numbers, and the 2026 models of tests/data/hf_configs map (or are
refused) as their model cards say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from hermes_opt.compose.hf_config import config_to_entry
from hermes_opt.compose.values import model_spec
from sim.errors import ConfigError

CATALOG = Path(__file__).resolve().parents[2] / "hermes_opt" / "conf" / "model"
HF_CONFIGS = Path(__file__).resolve().parents[1] / "data" / "hf_configs"


def _llama(layers, hidden, heads, kv, inter, vocab, ctx, *, model_type="llama", tie=False, **extra):
    return {"architectures": ["LlamaForCausalLM"], "model_type": model_type, "num_hidden_layers": layers,
            "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv,
            "intermediate_size": inter, "vocab_size": vocab, "max_position_embeddings": ctx,
            "tie_word_embeddings": tie, **extra}


def _deepseek(name_or_path):
    return {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
            "_name_or_path": name_or_path, "num_hidden_layers": 61, "hidden_size": 7168,
            "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536,
            "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
            "intermediate_size": 18432, "moe_intermediate_size": 2048, "n_routed_experts": 256,
            "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
            "moe_layer_freq": 1, "vocab_size": 129280, "max_position_embeddings": 163840,
            "tie_word_embeddings": False,
            "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128],
                                    "activation_scheme": "dynamic"}}


def _gpt_oss(layers, experts):
    return {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "num_hidden_layers": layers,
            "hidden_size": 2880, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
            "intermediate_size": 2880, "num_local_experts": experts, "num_experts_per_tok": 4,
            "experts_per_token": 4, "vocab_size": 201088, "max_position_embeddings": 131072,
            "sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * (layers // 2),
            "tie_word_embeddings": False, "quantization_config": {
                "quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"]}}


def _llama4(experts, step, ctx):
    return {"architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4",
            "text_config": {"model_type": "llama4_text", "num_hidden_layers": 48, "hidden_size": 5120,
                            "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
                            "intermediate_size": 8192, "intermediate_size_mlp": 16384,
                            "num_local_experts": experts, "num_experts_per_tok": 1,
                            "interleave_moe_layer_step": step, "attention_chunk_size": 8192,
                            "vocab_size": 202048, "max_position_embeddings": ctx}}


def _qwen3_moe(layers, hidden, heads, inter, moe_inter):
    return {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "num_hidden_layers": layers,
            "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": 4, "head_dim": 128,
            "intermediate_size": inter, "moe_intermediate_size": moe_inter, "num_experts": 128,
            "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [],
            "vocab_size": 151936, "max_position_embeddings": 40960, "sliding_window": None,
            "use_sliding_window": False, "tie_word_embeddings": False}


def _mixtral(layers, hidden, heads, inter, ctx):
    return {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "num_hidden_layers": layers,
            "hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": 8,
            "intermediate_size": inter, "num_local_experts": 8, "num_experts_per_tok": 2,
            "vocab_size": 32000, "max_position_embeddings": ctx, "sliding_window": None,
            "tie_word_embeddings": False}


def _encoder(arch, model_type, vocab, positions):
    return {"architectures": [arch], "model_type": model_type, "num_hidden_layers": 24, "hidden_size": 1024,
            "num_attention_heads": 16, "intermediate_size": 4096, "hidden_act": "gelu",
            "vocab_size": vocab, "max_position_embeddings": positions, "type_vocab_size": 2}


# Each shipped entry's config.json (shape fields only), keyed by catalog name.
HF_CONFIG_OF = {
    "bge_large_en": _encoder("BertModel", "bert", 30522, 512),
    "bge_reranker_large": _encoder("XLMRobertaForSequenceClassification", "xlm-roberta", 250002, 514),
    "deepseek_r1": _deepseek("deepseek-ai/DeepSeek-R1"),
    "deepseek_v3": _deepseek("deepseek-ai/DeepSeek-V3"),
    "gpt_oss_120b": _gpt_oss(36, 128),
    "gpt_oss_20b": _gpt_oss(24, 32),
    "llama2_70b": _llama(80, 8192, 64, 8, 28672, 32000, 4096),
    "llama2_7b": _llama(32, 4096, 32, 32, 11008, 32000, 4096),
    "llama3_1_405b": _llama(126, 16384, 128, 8, 53248, 128256, 131072),
    "llama3_1_70b": _llama(80, 8192, 64, 8, 28672, 128256, 131072),
    "llama3_1_8b": _llama(32, 4096, 32, 8, 14336, 128256, 131072),
    "llama3_3_70b": _llama(80, 8192, 64, 8, 28672, 128256, 131072),
    "llama4_maverick": _llama4(128, 2, 1048576),
    "llama4_scout": _llama4(16, 1, 10485760),
    "mistral_7b": _llama(32, 4096, 32, 8, 14336, 32768, 32768, model_type="mistral", head_dim=128,
                         sliding_window=None),
    "mixtral_8x22b": _mixtral(56, 6144, 48, 16384, 65536),
    "mixtral_8x7b": _mixtral(32, 4096, 32, 14336, 32768),
    "qwen2_5_1_5b": _llama(28, 1536, 12, 2, 8960, 151936, 32768, model_type="qwen2", tie=True,
                           sliding_window=32768, use_sliding_window=False),
    "qwen2_5_72b": _llama(80, 8192, 64, 8, 29568, 152064, 32768, model_type="qwen2",
                          sliding_window=131072, use_sliding_window=False),
    "qwen3_235b_a22b": _qwen3_moe(94, 4096, 64, 12288, 1536),
    "qwen3_30b_a3b": _qwen3_moe(48, 2048, 32, 6144, 768),
    "qwen3_32b": _llama(64, 5120, 64, 8, 25600, 151936, 40960, model_type="qwen3", head_dim=128),
    "qwen3_8b": _llama(36, 4096, 32, 8, 12288, 151936, 40960, model_type="qwen3", head_dim=128),
    "reward_8b": {**_llama(32, 4096, 32, 8, 14336, 128256, 131072),
                  "architectures": ["LlamaForSequenceClassification"], "num_labels": 1},
}

# What the simulator reads from an entry. The MoE ones are compared by meaning: the catalog writes
# "every layer" and "experts as wide as intermediate_size" either as 0/absent or explicitly.
SHAPE = ("kind", "attention", "num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim",
         "intermediate_size", "vocab_size", "num_experts", "experts_per_token", "gated_mlp",
         "tie_word_embeddings", "max_context_tokens", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
         "qk_rope_head_dim", "v_head_dim", "num_shared_experts")


def _shape(spec) -> dict:
    out = {key: getattr(spec, key) for key in SHAPE}
    out.update(moe_layers=spec.moe_layers, dense_layers=spec.dense_layers,
               expert_width=spec.moe_intermediate_size or spec.intermediate_size,
               num_params=spec.num_params, active_params=spec.active_params)
    return out


def _import(config: dict, name: str = "imported") -> tuple[dict, list[str]]:
    return config_to_entry(json.loads(json.dumps(config)), name, "config.json")


# Shipped entries written by hand from their config.json because `import-model` does not read
# that model_type (and why), so the round trip cannot check them.
NOT_IMPORTED = {"bloom_176b": "model_type bloom (n_layer/n_head keys, ALiBi, no intermediate_size)"}


def test_every_shipped_model_has_a_config_here():
    assert sorted([*HF_CONFIG_OF, *NOT_IMPORTED]) == sorted(p.stem for p in CATALOG.glob("*.yaml"))
    for name in NOT_IMPORTED:  # and the importer says so in one line
        with pytest.raises(ConfigError, match="model_type='bloom': allowed: "):
            config_to_entry({"model_type": "bloom", "n_layer": 70}, name, "config.json")


@pytest.mark.parametrize("name", sorted(HF_CONFIG_OF))
def test_round_trip_matches_the_shipped_entry(name):
    shipped = model_spec(OmegaConf.create(yaml.safe_load((CATALOG / f"{name}.yaml").read_text())))
    entry, _ = _import(HF_CONFIG_OF[name], name)
    assert _shape(model_spec(OmegaConf.create(entry))) == _shape(shipped)


def test_round_trip_notes_what_is_approximated():
    _, notes = _import(HF_CONFIG_OF["gpt_oss_120b"])
    assert any("sliding-window attention (128 tokens, 18 layers)" in n for n in notes)
    assert any("cluster.weight_dtype=mxfp4" in n and "modules_to_not_convert" in n for n in notes)
    _, notes = _import(HF_CONFIG_OF["llama4_scout"])
    assert any("attention_chunk_size 8192" in n for n in notes)
    _, notes = _import(HF_CONFIG_OF["deepseek_v3"])
    assert any("cluster.weight_dtype=fp8" in n for n in notes)
    _, notes = _import(HF_CONFIG_OF["qwen2_5_1_5b"])  # use_sliding_window false: no window
    assert notes == []


# Published total / active parameters (model cards), in billions; active counts exclude embeddings
# in some cards, so active is checked within 12 %.
PUBLISHED = {"minimax_m2_5": (229, 10), "kimi_k2_5": (1000, 32), "glm_5": (744, 40)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_2026_models_map_to_their_published_size(name):
    entry, _ = _import(json.loads((HF_CONFIGS / f"{name}.json").read_text()), name)
    spec = model_spec(OmegaConf.create(entry))
    total, active = PUBLISHED[name]
    assert spec.num_params / 1e9 == pytest.approx(total, rel=0.03)
    assert spec.active_params / 1e9 == pytest.approx(active, rel=0.12)


def test_2026_model_shapes():
    minimax, notes = _import(json.loads((HF_CONFIGS / "minimax_m2_5.json").read_text()))
    assert (minimax["attention"], minimax["num_heads"], minimax["num_kv_heads"], minimax["head_dim"]) == \
        ("gqa", 48, 8, 128)
    assert (minimax["num_experts"], minimax["experts_per_token"], minimax["num_moe_layers"]) == (256, 8, 62)
    assert any("cluster.weight_dtype=fp8" in n for n in notes)
    kimi, notes = _import(json.loads((HF_CONFIGS / "kimi_k2_5.json").read_text()))
    assert (kimi["attention"], kimi["num_experts"], kimi["num_moe_layers"], kimi["max_context_tokens"]) == \
        ("mla", 384, 60, 262144)
    assert any("cluster.weight_dtype=int4" in n for n in notes)
    glm, notes = _import(json.loads((HF_CONFIGS / "glm_5.json").read_text()))
    assert (glm["head_dim"], glm["v_head_dim"], glm["q_lora_rank"], glm["num_moe_layers"]) == (256, 256, 2048, 75)
    assert any("DeepSeek sparse attention" in n for n in notes)


def test_qwen3_5_hybrid_linear_attention_is_refused():
    with pytest.raises(ConfigError, match=r"text_config\.layer_types\[0\]='linear_attention': allowed: "
                                          r"full_attention, sliding_attention, chunked_attention"):
        _import(json.loads((HF_CONFIGS / "qwen3_5_397b_a17b.json").read_text()))


BASE = HF_CONFIG_OF["llama3_1_8b"]


@pytest.mark.parametrize("change, message", [
    ({"num_hidden_layers": None}, r"config\.json: num_hidden_layers=None: missing"),
    ({"vocab_size": 0}, r"vocab_size=0: must be a positive integer"),
    ({"hidden_size": -4096}, r"hidden_size=-4096: must be a positive integer"),
    ({"intermediate_size": 14336.5}, r"intermediate_size=14336.5: must be a positive integer"),
    ({"num_key_value_heads": 5}, r"num_key_value_heads=5: must divide num_attention_heads=32"),
    ({"hidden_size": 4100}, r"head_dim=None: missing and hidden_size=4100"),
    ({"model_type": "mamba", "state_size": 16}, r"state_size=16: state-space"),
    ({"model_type": "jamba", "layers_block_type": ["mamba", "attention"]}, r"layers_block_type="),
    ({"model_type": "falcon"}, r"model_type='falcon': allowed: llama, "),
    ({"layer_types": ["full_attention", "mamba"]}, r"layer_types\[1\]='mamba'"),
    ({"model_type": "minimax_m2", "attn_type_list": [0, 1]}, r"attn_type_list\[0\]=0: allowed: 1"),
    ({"quantization_config": {"quant_method": "bitsandbytes"}}, r"quant_method='bitsandbytes': allowed:"),
    ({"tie_word_embeddings": "yes"}, r"tie_word_embeddings='yes': must be true or false"),
    ({"model_type": "mixtral", "num_local_experts": 8, "num_experts_per_tok": 9},
     r"num_experts_per_tok=9: must be <= num_local_experts=8"),
])
def test_bad_inputs_are_one_error_naming_the_field(change, message):
    config = {**BASE, **change}
    with pytest.raises(ConfigError, match=message) as err:
        _import(config)
    assert "\n" not in str(err.value)


def test_missing_field_is_refused_when_absent_not_only_null():
    config = {k: v for k, v in BASE.items() if k != "max_position_embeddings"}
    with pytest.raises(ConfigError, match="max_position_embeddings=None: missing"):
        _import(config)
