"""Device memory budget of a replica: weights first, the rest becomes paged KV blocks."""

from __future__ import annotations

import math

from sim.errors import ConfigError
from sim.hardware.specs import AttentionKind, DType, HardwareSpec, ModelSpec

GB = 1e9
TOTAL_FRACTION = "total_fraction"  # KV = memory x fraction - reserve - weights (vLLM, SGLang)
FREE_FRACTION = "free_fraction"  # KV = (memory - reserve - weights) x fraction (TensorRT-LLM)
KV_MEMORY_RULES = (TOTAL_FRACTION, FREE_FRACTION)


def weight_bytes_per_device(model: ModelSpec, tp: int, pp: int, weight_dtype: DType, *,
                            attention_dp: bool = False) -> float:
    """Weights on one device. Routed experts are always spread over all ``tp`` devices of a stage
    (``ep`` groups x ``tp / ep`` shards). Everything else (attention, dense MLPs, shared experts,
    embeddings) is split ``tp`` ways under tensor parallelism and replicated under attention-DP."""
    if not attention_dp:
        return model.weight_bytes(weight_dtype) / (tp * pp)
    experts = model.moe_layers * model.num_experts * model.expert_params
    replicated = model.num_params - experts
    return (replicated + experts / tp) * weight_dtype.bytes_per_element / pp


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


def kv_capacity_blocks(model: ModelSpec, hardware: HardwareSpec, *, tp: int, pp: int,
                       weight_dtype: DType, kv_dtype: DType, block_size_tokens: int,
                       gpu_memory_utilization: float, activation_reserve_fraction: float,
                       pool_name: str = "pool", attention_dp: bool = False,
                       kv_memory_rule: str = TOTAL_FRACTION, reserved_bytes: float = 0.0) -> int:
    """Number of KV blocks a replica holds; ConfigError (saying by how much) if the model won't fit.

    Engines size the KV cache differently (``kv_memory_rule``): vLLM and SGLang take a fraction of
    the device's *total* memory for weights, activations and KV together (``total_fraction``:
    KV = memory x fraction - reserve - weights); TensorRT-LLM gives the KV cache a fraction of the
    memory *left free* after the weights and activations (``free_fraction``: KV = (memory -
    reserve - weights) x fraction)."""
    # ``reserved_bytes``: what a stage colocated on these GPUs holds per device (its weights or
    # index, ``sim.pipeline.colocation``); counted like weights, so it comes out of the KV cache
    weights = weight_bytes_per_device(model, tp, pp, weight_dtype, attention_dp=attention_dp)
    weights += reserved_bytes
    reserve = hardware.memory_bytes * activation_reserve_fraction
    if kv_memory_rule == FREE_FRACTION:
        usable = weights + (hardware.memory_bytes - reserve - weights) * gpu_memory_utilization
    else:
        usable = hardware.memory_bytes * gpu_memory_utilization - reserve
    per_token = kv_bytes_per_token_per_device(model, tp, pp, kv_dtype, attention_dp=attention_dp)
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
    return int(math.floor((usable - weights) / block))
