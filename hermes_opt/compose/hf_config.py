"""A Hugging Face ``config.json`` (already parsed) -> a model catalog entry (docs/CATALOG_SCHEMA.md).

Pure mapping, no I/O: ``hermes-sim import-model`` reads the file and writes the YAML. Whatever the
schema cannot express is refused with one ConfigError naming the file, the field and what is
allowed; what it expresses only approximately (sliding-window or chunked attention, a published
weight format) becomes a note for the entry's header comment, as in the shipped entries.
"""

from __future__ import annotations

from typing import Any

from sim.errors import ConfigError

# model_type values whose config fields this module maps (text decoders, MLA/MoE variants and the
# BERT-style encoders of the embedding/reranker entries). Others are refused rather than guessed.
SUPPORTED_MODEL_TYPES = (
    "llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "deepseek_v2",
    "deepseek_v3", "kimi_k2", "gpt_oss", "llama4_text", "minimax_m2", "glm4_moe", "glm_moe_dsa",
    "bert", "xlm-roberta")
_ENCODER_TYPES = ("bert", "xlm-roberta")
# Layer kinds that are softmax attention over (part of) the context; anything else in layer_types
# (linear_attention, mamba, ...) keeps a recurrent state the simulator has no model for.
_ATTENTION_LAYER_TYPES = ("full_attention", "sliding_attention", "chunked_attention")
# Keys only state-space / hybrid recurrent configs carry.
_SSM_KEYS = ("ssm_cfg", "state_size", "d_state", "mamba_d_state", "mamba_expand", "time_step_rank",
             "layers_block_type", "hybrid_override_pattern", "linear_num_value_heads")


# The schema's key order (docs/CATALOG_SCHEMA.md), so an imported entry reads like a shipped one.
ENTRY_ORDER = ("name", "hf_id", "kind", "attention", "num_layers", "hidden_size", "num_heads",
               "num_kv_heads", "head_dim", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
               "qk_rope_head_dim", "v_head_dim", "intermediate_size", "vocab_size", "num_experts",
               "experts_per_token", "num_shared_experts", "moe_intermediate_size", "num_moe_layers",
               "gated_mlp", "tie_word_embeddings", "max_context_tokens", "source")


class _Reader:
    """Field access that refuses with '<file>: <field>=<value>: <allowed>'."""

    def __init__(self, cfg: dict[str, Any], origin: str, prefix: str) -> None:
        self.cfg, self.origin, self.prefix = cfg, origin, prefix

    def refuse(self, key: str, value: object, allowed: str) -> ConfigError:
        return ConfigError(f"{self.origin}: {self.prefix}{key}={value!r}: {allowed}")

    def has(self, key: str) -> bool:
        return self.cfg.get(key) is not None

    def size(self, key: str, *, default: int | None = None, zero_ok: bool = False) -> int:
        """A positive integer size (``zero_ok``: >= 0); a missing one without default is refused."""
        value = self.cfg.get(key)
        if value is None:
            if default is None:
                raise self.refuse(key, None, "missing; a positive integer is required")
            return default
        ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if zero_ok else value > 0)
        if not ok:
            raise self.refuse(key, value, "must be an integer >= 0" if zero_ok else "must be a positive integer")
        return value


def config_to_entry(config: dict[str, Any], name: str, origin: str) -> tuple[dict[str, Any], list[str]]:
    """(catalog entry, notes). ``origin`` names the file in error messages."""
    if not isinstance(config, dict):
        raise ConfigError(f"{origin}: top level={type(config).__name__}: must be a JSON object")
    notes: list[str] = []
    text, prefix = config, ""
    if isinstance(config.get("text_config"), dict):  # multimodal wrapper: the language model is inside
        text, prefix = config["text_config"], "text_config."
        notes.append("shapes from text_config; the vision/audio encoders are not modelled")
    r = _Reader(text, origin, prefix)
    _refuse_recurrent_layers(r)
    model_type = text.get("model_type") or config.get("model_type")
    if model_type == "llama4":  # the text tower's own type when the wrapper's is read
        model_type = "llama4_text"
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise r.refuse("model_type", model_type, f"allowed: {', '.join(SUPPORTED_MODEL_TYPES)}")
    entry: dict[str, Any] = {"name": name, "kind": _kind(config, model_type)}
    entry.update(_attention(r, notes))
    entry.update(_mlp(r, model_type, entry["num_layers"], notes))
    entry["vocab_size"] = r.size("vocab_size")
    encoder = model_type in _ENCODER_TYPES
    entry["gated_mlp"] = not encoder  # BERT/XLM-R: 2-matrix GELU MLP; the decoders here are SwiGLU
    # Encoders have no LM head: the catalog counts their vocab table once (tie_word_embeddings true).
    tied = text.get("tie_word_embeddings", config.get("tie_word_embeddings", False))
    if not isinstance(tied, bool):
        raise r.refuse("tie_word_embeddings", tied, "must be true or false")
    entry["tie_word_embeddings"] = True if encoder else tied
    positions = r.size("max_position_embeddings")
    if model_type == "xlm-roberta":  # positions start after the padding index: 514 -> 512 usable
        positions -= 2
        notes.append("max_context_tokens = max_position_embeddings - 2 (XLM-R padding offset)")
    entry["max_context_tokens"] = positions
    quant = config.get("quantization_config") or text.get("quantization_config")
    fmt = weight_format(quant, origin)
    if fmt is not None:
        partly = " (except the modules its ignore/modules_to_not_convert list names)" if (
            quant.get("ignore") or quant.get("modules_to_not_convert")) else ""
        notes.append(f"weights published in {fmt}{partly}; the catalog has no weight-format field: run "
                     f"it with cluster.weight_dtype={fmt}")
    for key in ("num_nextn_predict_layers", "num_mtp_modules", "mtp_num_hidden_layers"):
        if text.get(key):
            notes.append(f"multi-token-prediction layers ({key} {text[key]}) are not counted: serving "
                         "without MTP speculation does not load them")
    return {key: entry[key] for key in ENTRY_ORDER if key in entry}, notes


def _kind(config: dict[str, Any], model_type: str) -> str:
    archs = config.get("architectures") or []
    arch = archs[0] if archs and isinstance(archs[0], str) else ""
    if model_type in _ENCODER_TYPES:
        return "reranker" if arch.endswith("ForSequenceClassification") else "embedding"
    return "decoder"  # a decoder with a score head (reward model) is still costed as a decoder


def _refuse_recurrent_layers(r: _Reader) -> None:
    for i, kind in enumerate(r.cfg.get("layer_types") or []):
        if kind not in _ATTENTION_LAYER_TYPES:
            raise r.refuse(f"layer_types[{i}]", kind, f"allowed: {', '.join(_ATTENTION_LAYER_TYPES)} "
                                                      "(linear-attention and state-space layers are not modelled)")
    for i, kind in enumerate(r.cfg.get("attn_type_list") or []):  # MiniMax: 0 = lightning (linear)
        if kind != 1:
            raise r.refuse(f"attn_type_list[{i}]", kind, "allowed: 1 (softmax attention); 0 is linear attention")
    for key in _SSM_KEYS:
        if r.has(key):
            raise r.refuse(key, r.cfg[key], "state-space / linear-attention layers are not modelled; "
                                            "allowed: transformer configs (softmax attention in every layer)")


def _attention(r: _Reader, notes: list[str]) -> dict[str, Any]:
    layers, hidden, heads = r.size("num_hidden_layers"), r.size("hidden_size"), r.size("num_attention_heads")
    out: dict[str, Any] = {"num_layers": layers, "hidden_size": hidden, "num_heads": heads}
    if r.has("kv_lora_rank"):  # DeepSeek multi-head latent attention
        nope, rope = r.size("qk_nope_head_dim"), r.size("qk_rope_head_dim")
        out.update(attention="mla", num_kv_heads=heads, head_dim=nope + rope,
                   q_lora_rank=r.size("q_lora_rank", default=0, zero_ok=True),
                   kv_lora_rank=r.size("kv_lora_rank"), qk_nope_head_dim=nope, qk_rope_head_dim=rope,
                   v_head_dim=r.size("v_head_dim"))
        if r.has("index_topk"):
            notes.append(f"DeepSeek sparse attention (index_topk {r.cfg['index_topk']}) is costed as full "
                         "MLA attention and its indexer is not modelled (conservative for attention time)")
        _window_notes(r, notes)
        return out
    kv_heads = r.size("num_key_value_heads", default=heads)
    if kv_heads > heads or heads % kv_heads:
        raise r.refuse("num_key_value_heads", kv_heads, f"must divide num_attention_heads={heads}")
    if r.has("head_dim"):
        head_dim = r.size("head_dim")
    elif hidden % heads:
        raise r.refuse("head_dim", None, f"missing and hidden_size={hidden} is not a multiple of "
                                         f"num_attention_heads={heads}; give head_dim")
    else:
        head_dim = hidden // heads
    out.update(attention="gqa", num_kv_heads=kv_heads, head_dim=head_dim)
    _window_notes(r, notes)
    return out


def _window_notes(r: _Reader, notes: list[str]) -> None:
    """The schema has no per-layer attention span: local layers are costed as full attention."""
    layer_types = r.cfg.get("layer_types") or []
    window = r.cfg.get("sliding_window")
    if r.cfg.get("use_sliding_window") is False:
        window = None
    if window is not None and (not layer_types or "sliding_attention" in layer_types):
        local = sum(t == "sliding_attention" for t in layer_types) if layer_types else "all"
        notes.append(f"sliding-window attention ({window} tokens, {local} layers) is costed as full "
                     "attention: conservative for KV memory and long-context attention time")
    if r.has("attention_chunk_size"):
        notes.append(f"chunked local attention (attention_chunk_size {r.cfg['attention_chunk_size']}) is "
                     "costed as full attention: conservative for KV memory and long-context attention time")


def _experts(r: _Reader) -> tuple[str | None, int]:
    for key in ("n_routed_experts", "num_local_experts", "num_experts"):
        if r.cfg.get(key) not in (None, 0):
            return key, r.size(key)
    return None, 1


def _mlp(r: _Reader, model_type: str, layers: int, notes: list[str]) -> dict[str, Any]:
    expert_key, experts = _experts(r)
    if expert_key is None or experts == 1:
        return {"intermediate_size": r.size("intermediate_size"), "num_experts": 1, "experts_per_token": 1}
    top_k = r.size("num_experts_per_tok")
    if top_k > experts:
        raise r.refuse("num_experts_per_tok", top_k, f"must be <= {expert_key}={experts}")
    out: dict[str, Any] = {"num_experts": experts, "experts_per_token": top_k}
    if model_type == "llama4_text":  # intermediate_size is the experts' width, _mlp the dense layers'
        out["intermediate_size"] = r.size("intermediate_size_mlp")
        expert_width = r.size("intermediate_size")
        shared = 1  # every Llama-4 MoE layer has one shared expert of the routed width
    else:
        expert_width = r.size("moe_intermediate_size", default=0, zero_ok=True) or None
        out["intermediate_size"] = r.size("intermediate_size", default=expert_width)
        expert_width = expert_width or out["intermediate_size"]
        shared = r.size("n_shared_experts", default=0, zero_ok=True)
        shared_width = r.size("shared_expert_intermediate_size", default=0, zero_ok=True) or \
            r.size("shared_intermediate_size", default=0, zero_ok=True)
        if shared_width:  # one shared expert that wide = that many experts of the routed width
            if shared_width % expert_width:
                raise r.refuse("shared_expert_intermediate_size", shared_width,
                               f"must be a multiple of the expert width {expert_width} (the catalog's "
                               "shared experts have the routed experts' width)")
            shared = shared_width // expert_width
            notes.append(f"shared expert of width {shared_width} = {shared} expert(s) of width {expert_width}")
    out["num_shared_experts"] = shared
    out["moe_intermediate_size"] = expert_width
    out["num_moe_layers"] = _moe_layer_count(r, model_type, layers)
    return out


def _moe_layer_count(r: _Reader, model_type: str, layers: int) -> int:
    """How many of the layers are MoE, from whichever layer-pattern fields the family uses."""
    if r.has("mlp_layer_types"):
        kinds = r.cfg["mlp_layer_types"]
        bad = [k for k in kinds if k not in ("dense", "sparse")]
        if len(kinds) != layers or bad:
            raise r.refuse("mlp_layer_types", kinds, f"{layers} entries, each 'dense' or 'sparse'")
        return sum(k == "sparse" for k in kinds)
    if model_type == "llama4_text":
        step = r.size("interleave_moe_layer_step", default=1)
        return sum((i + 1) % step == 0 for i in range(layers))
    first_dense = r.size("first_k_dense_replace", default=0, zero_ok=True)
    freq = r.size("moe_layer_freq", default=1) if not isinstance(r.cfg.get("moe_layer_freq"), list) else None
    if freq is None:
        raise r.refuse("moe_layer_freq", r.cfg["moe_layer_freq"], "must be a positive integer")
    step = r.size("decoder_sparse_step", default=1)
    dense_only = r.cfg.get("mlp_only_layers") or []
    if not isinstance(dense_only, list) or any(not isinstance(i, int) or not 0 <= i < layers for i in dense_only):
        raise r.refuse("mlp_only_layers", dense_only, f"a list of layer indices in [0, {layers})")
    if first_dense >= layers:
        raise r.refuse("first_k_dense_replace", first_dense, f"must be < num_hidden_layers={layers}")
    return sum(i >= first_dense and i % freq == 0 and (i + 1) % step == 0
               and i not in dense_only for i in range(layers))


def weight_format(quant: Any, origin: str) -> str | None:
    """The catalog weight dtype (``cluster.weight_dtype``) a quantization_config publishes; None
    for unquantized weights; anything else is refused."""
    if quant is None:
        return None
    allowed = ("allowed: quant_method fp8, mxfp4, modelopt (quant_algo FP8/NVFP4), gptq/awq "
               "(bits 4 or 8), compressed-tensors (4-bit int, 4-bit float, 8-bit float)")
    if not isinstance(quant, dict):
        raise ConfigError(f"{origin}: quantization_config={quant!r}: {allowed}")
    method = str(quant.get("quant_method", "")).lower()
    algo = str(quant.get("quant_algo", "")).upper()
    if method == "fp8" or algo == "FP8":
        return "fp8"
    if method == "mxfp4":
        return "mxfp4"
    if algo == "NVFP4":
        return "nvfp4"
    if method in ("gptq", "awq") and quant.get("bits") in (4, 8):
        return f"int{quant['bits']}"
    if method == "compressed-tensors":
        formats = set()
        for group in (quant.get("config_groups") or {}).values():
            weights = (group or {}).get("weights") or {}
            formats.add((weights.get("type"), weights.get("num_bits")))
        mapping = {("int", 4): "int4", ("int", 8): "int8", ("float", 4): "nvfp4", ("float", 8): "fp8"}
        if len(formats) == 1 and next(iter(formats)) in mapping:
            return mapping[next(iter(formats))]
        raise ConfigError(f"{origin}: quantization_config.config_groups weights={sorted(formats, key=str)}: "
                          f"one format of (int, 4), (int, 8), (float, 4), (float, 8)")
    raise ConfigError(f"{origin}: quantization_config.quant_method={quant.get('quant_method')!r}: {allowed}")
