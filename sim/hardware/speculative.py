"""Speculative decoding of a pool: which drafter, how many draft tokens, how often they are kept.

A decode step with speculative decoding drafts ``k`` tokens per sequence (MTP heads, an EAGLE head
or a small draft model), then the target model verifies all of them in one forward pass over
``k + 1`` tokens per sequence and keeps the longest accepted prefix plus one token of its own.
With ``a_i`` the probability that draft position ``i`` is accepted given that positions ``1..i-1``
were, a step yields ``1 + a_1 + a_1 a_2 + ... + a_1...a_k`` tokens per sequence on average (the
*acceptance length*, what TensorRT-LLM's blogs call "acceptance rate").

The extra weights and KV each drafter keeps on a device are here too, since memory checks read
them: MTP and EAGLE keep one extra decoder layer (with its own KV cache) next to the target;
a draft model keeps its whole weights and KV cache.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from sim.errors import ConfigError, require
from sim.hardware.specs import DType, ModelSpec, check_parallelism
from sim.roles import LLM_ROLES

MAX_DRAFT_TOKENS = 16  # engines cap chains at a few tokens; acceptance of position 16 is ~0


class SpecMethod(enum.Enum):
    NONE = "none"
    MTP = "mtp"  # DeepSeek-V3-style multi-token-prediction module(s), run autoregressively
    EAGLE = "eagle"  # EAGLE / EAGLE-3: one decoder layer on the target's hidden states
    DRAFT_MODEL = "draft_model"  # a separate small model of the same vocabulary


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecDecodeSpec:
    """``method`` drafts ``draft_tokens`` tokens per step; ``acceptance_per_position`` holds the
    conditional acceptance of each draft position (at least ``draft_tokens`` entries; the first
    ``draft_tokens`` are used). ``draft_model`` only for ``draft_model``."""

    method: SpecMethod = SpecMethod.NONE
    draft_tokens: int = 0
    acceptance_per_position: tuple[float, ...] = ()
    draft_model: ModelSpec | None = None
    source: str = ""  # where the acceptance came from (records only)

    def __post_init__(self) -> None:
        f = "spec_decoding"
        if self.method is SpecMethod.NONE:
            return
        k = self.draft_tokens
        require(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= MAX_DRAFT_TOKENS,
                f"{f}.draft_tokens", k, f"must be an integer in 1..{MAX_DRAFT_TOKENS} with "
                f"method={self.method.value}")
        rates = self.acceptance_per_position
        if len(rates) < k:
            raise ConfigError(
                f"{f}.acceptance_per_position={list(rates)}: gives {len(rates)} position(s) but "
                f"draft_tokens={k}; give at least {k} rates in [0, 1] or one "
                f"{f}.acceptance_rate for every position")
        for i, rate in enumerate(rates):
            require(isinstance(rate, (int, float)) and not isinstance(rate, bool)
                    and 0.0 <= rate <= 1.0, f"{f}.acceptance_per_position[{i}]", rate,
                    "must be a probability in [0, 1]")
        if self.method is SpecMethod.DRAFT_MODEL:
            require(self.draft_model is not None, f"{f}.draft_model", None,
                    "method=draft_model needs a draft model (a model catalog name)")
        else:
            require(self.draft_model is None, f"{f}.draft_model", getattr(
                self.draft_model, "name", None), f"only for method=draft_model, not "
                f"{self.method.value}")

    @property
    def enabled(self) -> bool:
        return self.method is not SpecMethod.NONE

    @property
    def acceptance_length(self) -> float:
        """Tokens a sequence gains per verification step on average (1 without drafting)."""
        total, kept = 1.0, 1.0
        for rate in self.acceptance_per_position[:self.draft_tokens]:
            kept *= rate
            total += kept
        return total

    def check_pool(self, pool: Any, field: str) -> None:
        """``pool`` (a ``sim.config.PoolSpec``) must decode and be costed by the roofline (the
        draft and verification steps are costed from the model's shapes); a draft model shares
        the target's vocabulary and can be split over its ``tp`` devices (under attention-DP
        each rank holds a whole copy)."""
        if not self.enabled:
            return
        method = f"{field}.spec_decoding.method"
        require(pool.role in LLM_ROLES, method, self.method.value,
                f"speculative decoding drafts decode tokens; {pool.role.value} pools do not decode")
        kind = pool.cost_model.kind.value
        require(kind == "roofline", method, self.method.value,
                f"needs the roofline cost model, not {kind}")
        target, tp, attention_dp = pool.model, pool.tp, pool.attention_dp
        if self.method is not SpecMethod.DRAFT_MODEL:
            return
        draft = self.draft_model
        require(draft.vocab_size == target.vocab_size, f"{field}.spec_decoding.draft_model",
                draft.name, f"its vocab_size {draft.vocab_size} differs from {target.name}'s "
                f"{target.vocab_size}; a draft model must share the target's tokenizer")
        if attention_dp:
            return
        try:
            check_parallelism(draft, tp, 1)
        except ConfigError as err:
            raise ConfigError(f"{field}.spec_decoding.draft_model={draft.name!r}: runs on the "
                              f"target's tp={tp} devices, but {err}") from None

    def extra_weight_params(self, target: ModelSpec) -> float:
        """Parameters the drafter adds to a replica (whole model, unsharded)."""
        h = target.hidden_size
        if self.method is SpecMethod.MTP:
            # DeepSeek-V3 MTP module: one decoder layer shaped like the target's last (MoE) layer
            # plus the projection of [embedding; hidden] (2h -> h); embedding and head are shared
            ffn = ((target.num_experts + target.num_shared_experts) * target.expert_params
                   + target.router_params) if target.is_moe else target.dense_mlp_params
            return target.attn_params_per_layer + ffn + 2 * h * h
        if self.method is SpecMethod.EAGLE:
            # EAGLE-3 head: one dense decoder layer plus the fusion of three hidden states (3h -> h)
            return target.attn_params_per_layer + target.dense_mlp_params + 3 * h * h
        if self.method is SpecMethod.DRAFT_MODEL:
            return float(self.draft_model.num_params)
        return 0.0

    def extra_weight_bytes_per_device(self, target: ModelSpec, tp: int, dtype: DType, *,
                                      attention_dp: bool) -> float:
        """The drafter's weights on one device: MTP/EAGLE layers are sharded like the target's
        layers (experts over all ``tp`` devices; attention over ``tp`` or, under attention-DP,
        replicated); a draft model is split over the ``tp`` devices."""
        if not self.enabled:
            return 0.0
        if self.method is SpecMethod.DRAFT_MODEL:
            return self.draft_model.weight_bytes(dtype) / tp
        experts = 0.0
        if self.method is SpecMethod.MTP and target.is_moe:
            experts = target.num_experts * target.expert_params
        rest = self.extra_weight_params(target) - experts
        return (experts / tp + (rest if attention_dp else rest / tp)) * dtype.bytes_per_element

    def extra_kv_layers(self, target: ModelSpec) -> float:
        """KV cache of the drafter per token, in units of one target layer's cache: MTP and EAGLE
        keep one layer's cache (the chain re-runs the same layer)."""
        return 1.0 if self.method in (SpecMethod.MTP, SpecMethod.EAGLE) else 0.0
