"""Per-operator roofline step-time model.

Each operator of a transformer layer takes ``max(flops / (peak_flops * compute_eff),
bytes / (mem_bw * memory_eff))`` on one device of a tensor-parallel group; layers are summed, TP
all-reduces and pipeline hand-offs are added, plus a fixed per-step overhead (scheduling, kernel
launch, sampling). Efficiency factors are per device family defaults until a calibration profile
(``conf/calibration/*.yaml``, fitted by ``hermes-sim calibrate``) replaces them.

Calibration terms (all default to 0, which leaves the plain roofline unchanged):

* compute efficiency is a curve in tokens per step: ``eff * t / (t + compute_half_tokens)``, and
  near the ridge point compute and memory time blend (``roofline_sharpness``);
* fixed costs per layer (small kernels: norms, rope, activation, residual add), per sequence in a
  step (sampling, input preparation), per prefilling sequence (prompt setup) and per step that
  runs prompt tokens (the engine's prefill path; decode-only steps do not pay it);
* all-reduce latency grows with the ring size (``allreduce_latency_per_peer_s * (tp - 1)``) and
  its bandwidth is a curve in message size (large messages may run at a lower efficiency);
* decode attention has its own memory efficiency, which ramps with context per sequence as
  ``c / (c + attention_half_context_tokens)``. That ramp adds exactly
  ``attention_half_context_tokens`` tokens' worth of KV reads per sequence, so a decode step stays
  exactly ``base + slope * context`` (what the replica's closed-form decode runs need).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.cost.base import StepShape
from sim.cost.layer_work import MLA_PREFILL_MODES, AttentionWork, ExpertWork
from sim.errors import require, require_fraction, require_non_negative
from sim.hardware.memory import kv_bytes_per_token_per_device, weight_bytes_per_device
from sim.hardware.specs import DType, HardwareSpec, ModelKind, ModelSpec, check_parallelism

ACTIVATION_BYTES = 2.0  # activations and all-reduce payloads travel in bf16


@dataclass(frozen=True, slots=True, kw_only=True)
class RooflineParams:
    """Free parameters of the roofline model (what calibration fits)."""

    compute_efficiency: float = 0.6  # achieved / peak dense FLOP/s on large GEMMs
    memory_efficiency: float = 0.75  # achieved / peak HBM bandwidth on streaming reads
    attention_efficiency: float = 0.5  # prefill attention FLOP efficiency (softmax, masking)
    comm_efficiency: float = 0.7  # achieved / peak scale-up link bandwidth in all-reduce
    # Uncalibrated defaults for fixed latencies are generic, not fitted: ~20 us per NCCL
    # all-reduce call plus ~5 us per extra ring peer (order of the small-message all-reduce times
    # in Vidur's DGX A100/H100 microbenchmarks), and ~40 us of small kernels per layer (norms,
    # rope, activation, residual adds: ~8 launches of ~5 us in an eager-mode engine).
    allreduce_latency_s: float = 20e-6  # fixed cost per all-reduce call
    step_overhead_s: float = 2e-3  # per engine step: scheduler, launch, sampling
    # Small GEMMs under-use the device: efficiency ramps as tokens / (tokens + half_tokens).
    compute_half_tokens: float = 0.0
    # Real kernels blend the compute and memory limits near the ridge point: time is
    # (compute^k + memory^k)^(1/k) with k = roofline_sharpness (0 = the sharp max of the roofline).
    roofline_sharpness: float = 0.0
    layer_overhead_s: float = 40e-6  # per layer per step: small kernels' launch and latency
    seq_overhead_s: float = 0.0  # per sequence in a step (prefill or decode): sampling, inputs
    prefill_seq_overhead_s: float = 0.0  # extra per prefilling sequence: prompt setup
    allreduce_latency_per_peer_s: float = 5e-6  # ring all-reduce latency grows with tp - 1
    # All-reduce bandwidth is a curve in message size: messages well above comm_large_message_bytes
    # run at comm_large_message_efficiency instead of comm_efficiency (0 = no such change).
    comm_large_message_bytes: float = 0.0
    comm_large_message_efficiency: float = 0.0
    # Decode attention KV reads: achieved / peak HBM bandwidth (0 = same as memory_efficiency),
    # ramping with context per sequence as c / (c + attention_half_context_tokens).
    decode_attention_efficiency: float = 0.0
    attention_half_context_tokens: float = 0.0
    # Fixed cost of a step that runs any prompt tokens, paid once per step however many prompts it
    # holds: engines run prefill on a separate path (eager kernels, variable-length attention
    # metadata, no captured CUDA graph) that decode-only steps skip. 0 = none.
    prefill_step_overhead_s: float = 0.0
    # MoE expert-parallel load imbalance: the busiest EP group's share of routed tokens exceeds
    # the mean by this fraction beyond the multinomial spread of uniform routing (real routers
    # favour some experts; EPLB-style replication lowers it). 0 = uniform routing.
    expert_load_imbalance: float = 0.0
    # Routed-expert (grouped) GEMMs reach a lower share of the roofline than dense GEMMs at a few
    # tokens per expert: their time is divided by this factor (0 = same as dense GEMMs).
    moe_efficiency: float = 0.0
    # Decode-only steps of at most this many sequences replay a captured CUDA/HIP graph: one
    # launch for the whole step instead of per-kernel launches, so they pay graph_step_overhead_s
    # instead of step_overhead_s (0 = eager: no step is captured).
    cuda_graph_max_batch: int = 0
    graph_step_overhead_s: float = 0.0

    def __post_init__(self) -> None:
        for field in ("compute_efficiency", "memory_efficiency", "attention_efficiency",
                      "comm_efficiency"):
            require_fraction(f"cost_model.{field}", getattr(self, field))
        for field in ("decode_attention_efficiency", "comm_large_message_efficiency",
                      "moe_efficiency"):
            require_fraction(f"cost_model.{field}", getattr(self, field), allow_zero=True)
        require(self.roofline_sharpness == 0 or self.roofline_sharpness >= 1,
                "cost_model.roofline_sharpness", self.roofline_sharpness,
                "must be 0 (sharp max) or >= 1 (1 = compute + memory time)")
        for field in ("allreduce_latency_s", "step_overhead_s", "compute_half_tokens",
                      "layer_overhead_s", "seq_overhead_s", "prefill_seq_overhead_s",
                      "comm_large_message_bytes", "allreduce_latency_per_peer_s",
                      "attention_half_context_tokens", "prefill_step_overhead_s",
                      "expert_load_imbalance", "graph_step_overhead_s"):
            require_non_negative(f"cost_model.{field}", getattr(self, field))
        value = self.cuda_graph_max_batch
        require(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                "cost_model.cuda_graph_max_batch", value,
                "must be a whole number of sequences >= 0 (0 = eager, no captured graphs)")


def comm_slowdown(params: RooflineParams, num_bytes: float) -> float:
    """Transfer time of a message relative to one at ``comm_efficiency`` (1 for small messages)."""
    if not (params.comm_large_message_bytes and params.comm_large_message_efficiency):
        return 1.0
    x4 = (num_bytes / params.comm_large_message_bytes) ** 4
    ratio = params.comm_efficiency / params.comm_large_message_efficiency
    return 1.0 + (ratio - 1.0) * x4 / (1.0 + x4)


def allreduce_time_s(params: RooflineParams, hardware: HardwareSpec, num_workers: int,
                     num_bytes: float) -> float:
    """One ring all-reduce of ``num_bytes`` over ``num_workers`` devices of one node."""
    if num_workers <= 1:
        return 0.0
    link = hardware.group_bw_bytes_per_s(num_workers) * params.comm_efficiency
    return (params.allreduce_latency_s + params.allreduce_latency_per_peer_s * (num_workers - 1)
            + 2.0 * (num_workers - 1) / num_workers * num_bytes / link
            * comm_slowdown(params, num_bytes))


class RooflineCostModel:
    """Step time of one replica: ``model`` sharded over ``tp x pp`` devices of ``hardware``.

    ``ep`` splits MoE experts over ``ep`` groups of ``tp / ep`` devices; ``attention_dp`` runs
    attention (and dense MLPs, shared experts, the LM head) data-parallel over the ``tp`` devices,
    each on its share of the sequences, with an all-to-all in and out of every MoE layer (see
    ``sim.cost.moe``). ``mla_prefill`` chooses how MLA prefill attends: 'decompressed' (expand
    the cached latents to per-head K/V, then ordinary attention: what vLLM and SGLang do for
    prefill) or 'absorbed' (attend in the latent space, as decode always does)."""

    def __init__(self, model: ModelSpec, hardware: HardwareSpec, *, tp: int = 1, pp: int = 1,
                 weight_dtype: DType = DType.BF16, kv_dtype: DType = DType.BF16,
                 params: RooflineParams | None = None, ep: int = 1, attention_dp: bool = False,
                 mla_prefill: str = "decompressed") -> None:
        check_parallelism(model, tp, pp, ep, attention_dp, hardware)
        require(mla_prefill in MLA_PREFILL_MODES, "cost_model.mla_prefill", mla_prefill,
                f"allowed: {', '.join(MLA_PREFILL_MODES)}")
        self.model, self.hardware, self.tp, self.pp = model, hardware, tp, pp
        self.ep, self.attention_dp = ep, attention_dp
        self.params = p = params or RooflineParams()
        self.weight_dtype, self.kv_dtype = weight_dtype, kv_dtype
        w_bpe, kv_bpe = weight_dtype.bytes_per_element, kv_dtype.bytes_per_element
        self._flops = hardware.sustained_flops_per_s(weight_dtype) * p.compute_efficiency
        self._attn_flops = hardware.sustained_flops_per_s(kv_dtype) * p.attention_efficiency
        self._bw = hardware.mem_bw_bytes_per_s * p.memory_efficiency
        self._attn_bw = hardware.mem_bw_bytes_per_s * (p.decode_attention_efficiency
                                                       or p.memory_efficiency)
        self._layers = model.num_layers  # all stages run in sequence for one micro-batch
        # Attention-side work: tensor parallel splits the weights tp ways and every device sees
        # every token; data parallel keeps whole weights and gives each device 1/tp of the tokens.
        self._dp = tp if attention_dp else 1
        shard = 1 if attention_dp else tp
        shared_mlp = model.num_shared_experts * model.expert_params + model.router_params
        # Per-layer-kind GEMM work on one device: (layer count, params per device, has experts).
        kinds = [(model.dense_layers, (model.attn_params_per_layer + model.dense_mlp_params) / shard,
                  False), (model.moe_layers, (model.attn_params_per_layer + shared_mlp) / shard, True)]
        self._layer_kinds = tuple((n, params_dev, params_dev * w_bpe, moe)
                                  for n, params_dev, moe in kinds if n)
        self._experts = ExpertWork(model, tp=tp, ep=ep, imbalance=p.expert_load_imbalance)
        self._expert_bpe = w_bpe
        self._expert_slowdown = 1.0 / p.moe_efficiency if p.moe_efficiency else 1.0
        self._attention = AttentionWork(model, tp=tp, attention_dp=attention_dp, kv_bpe=kv_bpe,
                                        mla_prefill=mla_prefill)
        # TP all-reduce after attention and after MLP; ring moves 2 (tp-1)/tp of the payload.
        self._allreduces_per_layer = 2 if tp > 1 and not attention_dp else 0
        link = hardware.group_bw_bytes_per_s(tp) * p.comm_efficiency
        self._link = link
        # A stage wider than the scale-up domain reaches the other domains over the scale-out
        # network (NICs): its ring all-reduce runs at that speed and its all-to-all partly does.
        self._scaleout = hardware.scaleout_bw_bytes_per_s * p.comm_efficiency
        self._domain = hardware.scaleup_domain_devices
        ring = self._scaleout if hardware.spans_domains(tp) else link
        self._allreduce_s_per_token = (2.0 * (tp - 1) / tp * model.hidden_size * ACTIVATION_BYTES
                                       / ring) if tp > 1 else 0.0
        # a pipeline hand-off goes to one peer: on a point-to-point board, over that pair's links
        handoff = (self._scaleout if hardware.spans_domains(tp * pp)
                   else hardware.group_bw_bytes_per_s(2) * p.comm_efficiency)
        self._handoff_s_per_token = model.hidden_size * ACTIVATION_BYTES / handoff
        self._lm_head_params = (model.vocab_size * model.hidden_size / shard
                                if model.kind is ModelKind.DECODER else 0.0)
        self._decode_cache: dict[int, tuple[float, float]] = {}
        # step_time: the count-only terms per token count and per (logits, prefill sequences)
        self._token_cache: dict[int, tuple] = {}
        self._seq_cache: dict[tuple[int, int], tuple[float, float]] = {}
        attn = self._attention
        self._step_consts = (attn.prefill_flops_per_pair, self._attn_flops,
                             attn.prefill_expand_flops_per_token, self._flops,
                             attn.kv_read_bytes_per_token, self._bw,
                             self._decode_attention_s_per_token(),
                             self.params.attention_half_context_tokens)

    # --- operators ------------------------------------------------------------------
    def _kind_gemm_s(self, tokens: int, kind: int) -> float:
        _n, params_dev, weight_bytes, moe = self._layer_kinds[kind]
        dev_tokens = tokens / self._dp
        eff = 1.0
        if self.params.compute_half_tokens:
            eff = dev_tokens / (dev_tokens + self.params.compute_half_tokens)
        flops_rate = self._flops * eff
        time_s = self._roof(2.0 * params_dev * dev_tokens / flops_rate,
                            (weight_bytes
                             + 2 * dev_tokens * self.model.hidden_size * ACTIVATION_BYTES) / self._bw)
        if moe:
            flops, params_read = self._experts.per_device(tokens)
            time_s += self._expert_slowdown * max(flops / flops_rate,
                                                  params_read * self._expert_bpe / self._bw)
        return time_s

    def _roof(self, compute_s: float, memory_s: float) -> float:
        k = self.params.roofline_sharpness
        if not k:
            return max(compute_s, memory_s)
        hi = max(compute_s, memory_s)
        if hi <= 0:
            return 0.0
        return hi * ((compute_s / hi) ** k + (memory_s / hi) ** k) ** (1.0 / k)

    def _comm_s(self, tokens: int) -> float:
        p = self.params
        latency = p.allreduce_latency_s + p.allreduce_latency_per_peer_s * (self.tp - 1)
        message_bytes = tokens * self.model.hidden_size * ACTIVATION_BYTES
        per_layer = self._allreduces_per_layer * (
            latency + self._allreduce_s_per_token * tokens * comm_slowdown(p, message_bytes))
        handoffs = (self.pp - 1) * (p.allreduce_latency_s + self._handoff_s_per_token * tokens)
        total = per_layer * self._layers + handoffs
        if self.attention_dp:
            total += self.model.moe_layers * self._all_to_all_s(tokens)
        return total

    def _all_to_all_s(self, tokens: int) -> float:
        p = self.params
        return self._experts.all_to_all_s(
            tokens / self._dp, self._link, p.allreduce_latency_s, p.allreduce_latency_per_peer_s,
            devices=self.tp, domain_devices=self._domain, scaleout_bytes_per_s=self._scaleout)

    def _fixed_s(self, num_seqs: int, num_prefill_seqs: int) -> float:
        """Costs that do not scale with work: per step, per layer, per sequence, per prefill step.
        Under attention-DP each rank runs its own share of the sequences (its own host work and
        its own captured graphs), and the ranks run at the same time: the counts are per rank."""
        p = self.params
        if self._dp > 1:
            num_seqs = -(-num_seqs // self._dp)
            num_prefill_seqs = -(-num_prefill_seqs // self._dp)
        if not num_prefill_seqs and num_seqs <= p.cuda_graph_max_batch:
            # a captured graph replays the whole decode step with one launch: the host's per-step
            # cost shrinks; the kernels' own minimum times (layer_overhead_s) remain
            return (p.graph_step_overhead_s + self._layers * p.layer_overhead_s
                    + p.seq_overhead_s * num_seqs)
        return (p.step_overhead_s + self._layers * p.layer_overhead_s + p.seq_overhead_s * num_seqs
                + p.prefill_seq_overhead_s * num_prefill_seqs
                + (p.prefill_step_overhead_s if num_prefill_seqs else 0.0))

    def _gemm_s(self, tokens: int) -> float:
        """One layer's weight GEMMs on one device (mean over dense and MoE layers)."""
        if len(self._layer_kinds) == 1:
            return self._kind_gemm_s(tokens, 0)
        return self._layers_s(tokens) / self._layers

    def _layers_s(self, tokens: int, prefill_s: float = 0.0, decode_s: float = 0.0) -> float:
        """Every layer once: each kind's GEMMs plus the per-layer attention time."""
        return sum(kind[0] * (self._kind_gemm_s(tokens, i) + prefill_s + decode_s)
                   for i, kind in enumerate(self._layer_kinds))

    def layer_dense_s(self, tokens: int) -> float:
        """One layer's non-attention work on one device (GEMMs, norms, activation, adds) — what
        Vidur's per-operator profiles measure."""
        return self._gemm_s(tokens) + self.params.layer_overhead_s

    def _lm_head_s(self, tokens: int) -> float:
        if not tokens or not self._lm_head_params:
            return 0.0
        return max(2.0 * self._lm_head_params * (tokens / self._dp) / self._flops,
                   self._lm_head_params * self.weight_dtype.bytes_per_element / self._bw)

    # --- StepCostModel ----------------------------------------------------------------
    def step_time_s(self, shape: StepShape) -> float:
        return self.step_time(shape.prefill_tokens, shape.prefill_attention_pairs,
                              shape.prefill_context_tokens, shape.num_prefill_seqs,
                              shape.num_decode_seqs, shape.decode_context_tokens)

    def step_time(self, prefill_tokens: int, prefill_attention_pairs: float,
                  prefill_context_tokens: int, num_prefill_seqs: int, num_decode_seqs: int,
                  decode_context_tokens: int) -> float:
        """``step_time_s`` of the shape these fields describe, without building a ``StepShape``
        (the replica's hot path). The terms that depend only on the token and sequence counts
        are cached per count; the sum is formed in the same order, so the result is the same
        float as the uncached expression."""
        tokens = prefill_tokens + num_decode_seqs
        if tokens == 0:
            return 0.0
        logits_tokens = num_decode_seqs + num_prefill_seqs
        token_terms = self._token_cache.get(tokens)
        if token_terms is None:
            token_terms = self._token_cache[tokens] = (
                tuple((kind[0], self._kind_gemm_s(tokens, i))
                      for i, kind in enumerate(self._layer_kinds)), self._comm_s(tokens))
        gemms, comm_s = token_terms
        key = (logits_tokens, num_prefill_seqs)
        seq_terms = self._seq_cache.get(key)
        if seq_terms is None:
            seq_terms = self._seq_cache[key] = (self._lm_head_s(logits_tokens),
                                                self._fixed_s(logits_tokens, num_prefill_seqs))
        head_s, fixed_s = seq_terms
        a_pair, a_flops, expand, flops, kv_read, bw, decode_per_token, half = self._step_consts
        prefill_s = decode_s = 0.0
        if prefill_tokens:
            prefill_s = max(a_pair * prefill_attention_pairs / a_flops
                            + expand * (prefill_context_tokens - prefill_tokens) / flops,
                            kv_read * prefill_context_tokens / bw)
        if num_decode_seqs:
            decode_s = decode_per_token * (decode_context_tokens + num_decode_seqs * half)
        if len(gemms) == 1:
            n, gemm_s = gemms[0]
            layers_s = n * (gemm_s + prefill_s + decode_s)
        else:
            layers_s = sum(n * (gemm_s + prefill_s + decode_s) for n, gemm_s in gemms)
        return layers_s + comm_s + head_s + fixed_s

    def _decode_attention_s_per_token(self) -> float:
        # Decode attention reads each context token's K and V once; both terms are linear in
        # context, so the roofline max is exactly linear too.
        return max(self._attention.decode_flops_per_pair / self._attn_flops,
                   self._attention.kv_read_bytes_per_token / self._attn_bw)

    def decode_coefficients(self, num_seqs: int, context_tokens: int) -> tuple[float, float]:
        # Exact (not only local): every term is independent of context or linear in it.
        cached = self._decode_cache.get(num_seqs)
        if cached is None:
            per_token = self._layers * self._decode_attention_s_per_token()
            base = (self._layers_s(num_seqs) + self._comm_s(num_seqs)
                    + self._lm_head_s(num_seqs) + self._fixed_s(num_seqs, 0)
                    + per_token * num_seqs * self.params.attention_half_context_tokens)
            cached = (base, per_token)
            self._decode_cache[num_seqs] = cached
        return cached

    # --- speculative decoding (sim.cost.speculative) -------------------------------------
    def multi_query_decode_coefficients(self, num_seqs: int,
                                        queries: int) -> tuple[float, float]:
        """``decode_coefficients`` of a step in which every sequence runs ``queries`` tokens
        against its context (verification of ``queries - 1`` drafts): GEMMs, communication and
        the LM head see ``num_seqs * queries`` tokens and attention does ``queries``-fold FLOPs,
        but each context token's KV is still read once. ``queries=1`` is a plain decode step."""
        tokens = num_seqs * queries
        attn = self._attention
        per_token = self._layers * max(queries * attn.decode_flops_per_pair / self._attn_flops,
                                       attn.kv_read_bytes_per_token / self._attn_bw)
        base = (self._layers_s(tokens) + self._comm_s(tokens) + self._lm_head_s(tokens)
                + self._fixed_s(num_seqs, 0)
                + per_token * num_seqs * self.params.attention_half_context_tokens)
        return base, per_token

    def one_layer_decode_coefficients(self, num_seqs: int, *, moe: bool,
                                      extra_params: float) -> tuple[float, float]:
        """One draft pass of an MTP module or EAGLE head over ``num_seqs`` tokens: one decoder
        layer shaped like the target's (its MoE layer if ``moe``, else a dense one), a projection
        of ``extra_params``, the shared LM head, that layer's communication and kernel overhead.
        Sharded as the target's layers are (attention TP or DP, experts EP)."""
        p, m = self.params, self.model
        shard = 1 if self.attention_dp else self.tp
        if moe and m.moe_layers:
            gemm_s = self._kind_gemm_s(num_seqs, len(self._layer_kinds) - 1)
        else:
            gemm_s = self._params_gemm_s((m.attn_params_per_layer + m.dense_mlp_params) / shard,
                                         num_seqs)
        gemm_s += self._params_gemm_s(extra_params / shard, num_seqs)
        comm_s = self._allreduces_per_layer * (
            p.allreduce_latency_s + p.allreduce_latency_per_peer_s * (self.tp - 1)
            + self._allreduce_s_per_token * num_seqs)
        if self.attention_dp and moe and m.moe_layers:
            comm_s += self._all_to_all_s(num_seqs)
        base = (gemm_s + comm_s + self._lm_head_s(num_seqs) + p.layer_overhead_s
                + p.seq_overhead_s * num_seqs)
        return base, self._decode_attention_s_per_token()

    def _params_gemm_s(self, params_per_device: float, tokens: int) -> float:
        dev_tokens = tokens / self._dp
        return self._roof(2.0 * params_per_device * dev_tokens / self._flops,
                          (params_per_device * self.weight_dtype.bytes_per_element
                           + 2 * dev_tokens * self.model.hidden_size * ACTIVATION_BYTES) / self._bw)

    # --- memory -----------------------------------------------------------------------
    def weight_bytes_per_device(self) -> float:
        return weight_bytes_per_device(self.model, self.tp, self.pp, self.weight_dtype,
                                       attention_dp=self.attention_dp, ep=self.ep)

    def kv_bytes_per_token_per_device(self) -> float:
        return kv_bytes_per_token_per_device(self.model, self.tp, self.pp, self.kv_dtype,
                                             attention_dp=self.attention_dp)
