"""Device memory budget of a replica: weights first, the rest becomes paged KV blocks."""

from __future__ import annotations

import math

from sim.errors import ConfigError
from sim.hardware.specs import AttentionKind, DType, HardwareSpec, ModelSpec
from sim.hardware.speculative import SpecDecodeSpec, SpecMethod

GB = 1e9
TOTAL_FRACTION = "total_fraction"  # KV = memory x fraction - reserve - weights (vLLM, SGLang)
FREE_FRACTION = "free_fraction"  # KV = (memory - reserve - weights) x fraction (TensorRT-LLM)
KV_MEMORY_RULES = (TOTAL_FRACTION, FREE_FRACTION)
# What KV admission reserves (SchedulerSpec.kv_reservation; sim.scheduling.policies.admission):
# the prompt's blocks (vLLM, SGLang: decode growth allocates and may preempt) or the blocks of the
# prompt and every output token (TensorRT-LLM GUARANTEED_NO_EVICT: nothing is ever evicted).
KV_RESERVE_PROMPT = "prompt"
KV_RESERVE_FULL = "full_sequence"
KV_RESERVATIONS = (KV_RESERVE_PROMPT, KV_RESERVE_FULL)


def weight_bytes_per_device(model: ModelSpec, tp: int, pp: int, weight_dtype: DType, *,
                            attention_dp: bool = False, ep: int = 0) -> float:
    """Weights on one device. Routed experts are always spread over all ``tp`` devices of a stage
    (``ep`` groups x ``tp / ep`` shards). Everything else (attention, dense MLPs, shared experts,
    embeddings) is split ``tp`` ways under tensor parallelism and replicated under attention-DP.
    An ``ep`` that does not divide the experts (wide EP under attention-DP) gives every group
    ``ceil(num_experts / ep)`` expert slots, the spare ones holding redundant copies."""
    if not attention_dp:
        return model.weight_bytes(weight_dtype) / (tp * pp)
    experts = model.moe_layers * model.num_experts * model.expert_params
    replicated = model.num_params - experts
    per_device = experts / tp
    if ep and model.num_experts % ep:
        per_device = (model.moe_layers * math.ceil(model.num_experts / ep) * model.expert_params
                      / (tp / ep))
    return (replicated + per_device) * weight_dtype.bytes_per_element / pp


def kv_bytes_per_token_per_device(model: ModelSpec, tp: int, pp: int, kv_dtype: DType, *,
                                  attention_dp: bool = False) -> float:
    """KV bytes one token occupies on one device: its layers' share, its KV heads' share.

    With ``tp > num_kv_heads`` each device keeps a replica of one KV head (as vLLM does). MLA's
    latent has no heads to split, so every tensor-parallel device keeps all of it. Under
    attention-DP each device holds whole tokens of its own sequences: the replica's capacity is
    that of ``tp`` devices, which is what ``per-token bytes / tp`` per device expresses."""
    per_layer = model.kv_bytes_per_layer_per_token(kv_dtype)
    layers = model.num_layers / pp
    if attention_dp:
        return layers * per_layer / tp
    if model.attention is AttentionKind.MLA:
        return layers * per_layer
    kv_heads_per_device = max(1.0, model.num_kv_heads / tp)
    return (2.0 * layers * kv_heads_per_device * model.head_dim
            * kv_dtype.bytes_per_element)


# A fitted KV capacity factor past this claims more memory than the device holds beside the
# weights under any documented engine rule (SchedulerSpec.kv_capacity_factor).
MAX_KV_FACTOR = 1.5


def kv_capacity_blocks(model: ModelSpec, hardware: HardwareSpec, *, tp: int, pp: int,
                       weight_dtype: DType, kv_dtype: DType, block_size_tokens: int,
                       gpu_memory_utilization: float, activation_reserve_fraction: float,
                       pool_name: str = "pool", attention_dp: bool = False,
                       kv_memory_rule: str = TOTAL_FRACTION, kv_capacity_factor: float = 1.0,
                       spec: SpecDecodeSpec | None = None, ep: int = 0,
                       reserved_bytes: float = 0.0) -> int:
    """Number of KV blocks a replica holds; ConfigError (saying by how much) if the model won't fit.

    Engines size the KV cache differently (``kv_memory_rule``): vLLM and SGLang take a fraction of
    the device's *total* memory for weights, activations and KV together (``total_fraction``:
    KV = memory x fraction - reserve - weights); TensorRT-LLM gives the KV cache a fraction of the
    memory *left free* after the weights and activations (``free_fraction``: KV = (memory -
    reserve - weights) x fraction). A speculative drafter (``spec``) adds its weights and its
    own KV per token (``drafter_bytes``). ``reserved_bytes``: what a stage colocated on these GPUs
    holds per device (its weights or index, ``sim.pipeline.colocation``), counted like weights."""
    weights = weight_bytes_per_device(model, tp, pp, weight_dtype, attention_dp=attention_dp, ep=ep)
    draft_weights, draft_kv = drafter_bytes(spec, model, tp, pp, weight_dtype, kv_dtype,
                                            attention_dp)
    weights += draft_weights + reserved_bytes
    reserve = hardware.memory_bytes * activation_reserve_fraction
    if kv_memory_rule == FREE_FRACTION:
        usable = weights + (hardware.memory_bytes - reserve - weights) * gpu_memory_utilization
    else:
        usable = hardware.memory_bytes * gpu_memory_utilization - reserve
    per_token = kv_bytes_per_token_per_device(model, tp, pp, kv_dtype, attention_dp=attention_dp)
    per_token += draft_kv
    block = per_token * block_size_tokens
    if per_token == 0:  # encoder-only models keep no KV cache between steps
        return 1 << 30
    if weights <= usable < weights + block:  # the weights fit; one KV block does not
        raise ConfigError(
            f"{pool_name}: scheduler.block_size_tokens={block_size_tokens}: one KV block "
            f"({block / GB:.2f} GB per device) is larger than the {(usable - weights) / GB:.2f} GB of "
            f"KV memory per device left after {weights / GB:.1f} GB of {model.name} weights on "
            f"{hardware.name} (tp={tp} pp={pp}); use a smaller block (vLLM uses 16)")
    if weights + block > usable:
        raise ConfigError(
            f"{pool_name}: model {model.name} does not fit on {hardware.name} with "
            f"tp={tp} pp={pp} ({weight_dtype.value} weights): needs {weights / GB:.1f} GB of weights "
            f"per device but only {usable / GB:.1f} GB is usable "
            f"(memory {hardware.memory_bytes / GB:.0f} GB x (gpu_memory_utilization "
            f"{gpu_memory_utilization}, activation reserve {activation_reserve_fraction}, rule "
            f"{kv_memory_rule})); short by "
            f"{(weights + block - usable) / GB:.1f} GB. Raise tp/pp, use fp8 weights or a larger device.")
    blocks = int(math.floor((usable - weights) / block))
    # kv_capacity_factor: the share of these blocks a measured cluster really has (a calibration
    # profile fitted by `hermes-sim calibrate --from-benchmark`; the engine kept more memory back
    # than its documented rule says: fragmentation, graph pools, a lower memory fraction).
    return blocks if kv_capacity_factor == 1.0 else max(1, int(blocks * kv_capacity_factor))


def drafter_bytes(spec: SpecDecodeSpec | None, model: ModelSpec, tp: int, pp: int,
                  weight_dtype: DType, kv_dtype: DType, attention_dp: bool) -> tuple[float, float]:
    """(weight bytes, KV bytes per token) a speculative drafter adds on one device. MTP and EAGLE
    keep one more layer's cache, sharded as the target's; a draft model keeps its own cache over
    the same devices (under attention-DP each rank drafts for its own sequences with a whole
    copy of the draft model)."""
    if spec is None or not spec.enabled:
        return 0.0, 0.0
    if spec.method is SpecMethod.DRAFT_MODEL:
        draft = spec.draft_model
        weights = draft.weight_bytes(weight_dtype) / (1 if attention_dp else tp)
        return weights, kv_bytes_per_token_per_device(draft, tp, 1, kv_dtype,
                                                      attention_dp=attention_dp)
    weights = spec.extra_weight_bytes_per_device(model, tp, weight_dtype, attention_dp=attention_dp)
    per_layer = (kv_bytes_per_token_per_device(model, tp, pp, kv_dtype, attention_dp=attention_dp)
                 / (model.num_layers / pp))
    return weights, per_layer * spec.extra_kv_layers(model)
