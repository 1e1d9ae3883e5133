"""Per-device work of one transformer layer that depends on the architecture, not the device:
attention (GQA or MLA) and MoE experts under tensor, expert and attention-data parallelism.

The roofline (``sim.cost.roofline``) turns these FLOP and byte counts into time.
"""

from __future__ import annotations

import math

from sim.hardware.specs import AttentionKind, ModelSpec

MLA_PREFILL_MODES = ("decompressed", "absorbed")


class AttentionWork:
    """FLOPs per (query, key) pair and KV bytes per context token, per layer, on one device.

    GQA: QK^T and PV are ``2 * head_dim`` FLOPs each per pair and head; each context token's K and
    V are read once per KV head a device holds (``tp > num_kv_heads`` replicates one KV head).

    MLA (DeepSeek-V2/V3) caches one latent of ``kv_lora_rank + qk_rope_head_dim`` elements per
    token, shared by all heads, so tensor parallelism cannot split it: every device reads all of
    it. *Absorbed* attention folds the K/V up-projection into the query and output, and attends in
    the latent space: ``2 (kv_lora + rope)`` FLOPs for QK^T and ``2 kv_lora`` for PV per pair and
    head (4x GQA's work at head_dim 128, on 1/14th of the bytes). *Decompressed* attention first
    expands every cached context token to per-head K and V (``2 * kv_up_params`` FLOPs per token:
    the GEMM the absorbed form avoids), then attends at ``2 (nope + rope) + 2 v`` per pair and
    head. Decode is always absorbed; prefill is decompressed by default.

    Under attention-DP a device attends only its own sequences (1/tp of the pairs and of the
    context) with all heads, which for the per-replica totals the roofline passes in is the same
    as dividing by ``tp``."""

    def __init__(self, model: ModelSpec, *, tp: int, attention_dp: bool, kv_bpe: float,
                 mla_prefill: str = "decompressed") -> None:
        heads_per_dev = model.num_heads / tp  # TP: a tp-th of the heads; DP: all heads, 1/tp of pairs
        if model.attention is AttentionKind.MLA:
            latent = model.kv_lora_rank + model.qk_rope_head_dim
            absorbed = 2.0 * latent + 2.0 * model.kv_lora_rank
            decompressed = (2.0 * (model.qk_nope_head_dim + model.qk_rope_head_dim)
                            + 2.0 * model.v_head_dim)
            self.decode_flops_per_pair = absorbed * heads_per_dev
            if mla_prefill == "absorbed":
                self.prefill_flops_per_pair = self.decode_flops_per_pair
                self.prefill_expand_flops_per_token = 0.0
            else:
                self.prefill_flops_per_pair = decompressed * heads_per_dev
                # cached context tokens are expanded; new tokens' expansion is in the layer GEMMs
                self.prefill_expand_flops_per_token = 2.0 * model.kv_up_params_per_layer / tp
            self.kv_read_bytes_per_token = latent * kv_bpe / (tp if attention_dp else 1)
        else:
            self.decode_flops_per_pair = 4.0 * model.head_dim * heads_per_dev
            self.prefill_flops_per_pair = self.decode_flops_per_pair
            self.prefill_expand_flops_per_token = 0.0
            if attention_dp:
                self.kv_read_bytes_per_token = 2.0 * model.head_dim * model.num_kv_heads * kv_bpe / tp
            else:
                kv_heads_per_dev = max(1.0, model.num_kv_heads / tp)
                self.kv_read_bytes_per_token = 2.0 * model.head_dim * kv_heads_per_dev * kv_bpe


class ExpertWork:
    """Routed-expert GEMMs of one MoE layer on the busiest device, and EP's all-to-all.

    Each token picks ``k`` of ``E`` experts. With ``ep`` expert-parallel groups a group holds
    ``E / ep`` experts, each split over its ``tp / ep`` devices. The step waits for the busiest
    group: with ``A = tokens * k`` assignments spread uniformly, a group receives ``A / ep`` on
    average and the largest of ``ep`` multinomial counts is about ``A/ep + sqrt(2 ln(ep) A/ep)``
    (the Gaussian extreme-value approximation); ``imbalance`` adds real routers' skew on top, as
    a fraction of the mean. A group reads the weights of each of its experts that at least one
    token picked: ``E/ep * (1 - (1 - k/E)^tokens)`` in expectation."""

    def __init__(self, model: ModelSpec, *, tp: int, ep: int, imbalance: float = 0.0) -> None:
        self.model, self.ep, self.imbalance = model, ep, imbalance
        self.params_per_device = model.expert_params / (tp / ep) if model.is_moe else 0.0

    def busiest_group_assignments(self, tokens: float) -> float:
        assignments = tokens * self.model.experts_per_token
        if self.ep == 1:
            return assignments
        mean = assignments / self.ep
        return mean * (1.0 + self.imbalance) + math.sqrt(2.0 * math.log(self.ep) * mean)

    def per_device(self, tokens: float) -> tuple[float, float]:
        """(FLOPs, parameters read) of the busiest device's routed experts for ``tokens``."""
        m = self.model
        touched = (m.num_experts / self.ep) * (1.0 - (1.0 - m.experts_per_token / m.num_experts) ** tokens)
        return (2.0 * self.params_per_device * self.busiest_group_assignments(tokens),
                touched * self.params_per_device)

    def all_to_all_s(self, tokens_per_device: float, link_bytes_per_s: float, latency_s: float,
                     latency_per_peer_s: float, *, devices: int, domain_devices: int = 0,
                     scaleout_bytes_per_s: float = 0.0) -> float:
        """Dispatch and combine of one MoE layer under attention-DP over ``devices`` ranks: each
        rank sends each of its tokens' hidden state (bf16) once to each of the ``devices / ep``
        devices of every expert group its ``k`` experts fall in, as DeepEP dispatches (one copy
        per destination rank, not per expert): ``ep (1 - (1 - 1/ep)^k)`` groups on average for
        uniform routing; and gets the results back. The ``(devices-1) / devices`` share that
        leaves the rank crosses the links. Peers in the rank's own scale-up domain
        (``domain_devices``; 0 = all) are reached over the scale-up link, the rest over the
        scale-out network at the same time, so the slower side sets the time."""
        m = self.model
        shards = devices // self.ep
        groups = self.ep * (1.0 - (1.0 - 1.0 / self.ep) ** m.experts_per_token)
        remote_bytes = (tokens_per_device * groups * shards
                        * m.hidden_size * 2.0 * (devices - 1) / devices)
        if domain_devices and devices > domain_devices:
            inside = remote_bytes * (domain_devices - 1) / (devices - 1)
            transfer_s = max(inside / link_bytes_per_s,
                             (remote_bytes - inside) / scaleout_bytes_per_s)
        else:
            transfer_s = remote_bytes / link_bytes_per_s
        return 2.0 * (latency_s + latency_per_peer_s * (devices - 1) + transfer_s)
