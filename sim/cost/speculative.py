"""Step time of a replica that decodes speculatively (MTP, EAGLE or a draft model).

One real decode step drafts ``k`` tokens per sequence (``k`` sequential draft passes), verifies
them with one target pass over ``k + 1`` tokens per sequence, and yields the acceptance length
``tau`` tokens per sequence on average (``SpecDecodeSpec.acceptance_length``). The replica's
scheduler counts one generated token per sequence per step, so this model charges each of its
steps ``1 / tau`` of a real step: TPOT and throughput follow the expected accepted tokens, and the
closed-form decode runs stay exact (``base + slope * context``, both divided by ``tau``). What it
does not show: tokens arrive ``tau`` at a time, so real inter-token gaps are burstier than the
evenly spread ITL recorded here (their mean is the same).

A step that also runs prompt tokens advances its prompts by their whole chunk but its decoders by
one token, not ``tau``: it pays the prompt part in full and ``1 / tau`` of what the decoders add to
the real mixed step (drafts and verification in place of the plain decode share). In such steps
decoders progress more slowly than in reality, where the extra accepted tokens ride along.
"""

from __future__ import annotations

import math

from sim.cost.base import StepShape
from sim.cost.roofline import RooflineCostModel
from sim.hardware.speculative import SpecDecodeSpec, SpecMethod


class SpeculativeCostModel:
    """``target`` verifying the drafts of ``spec``; ``draft`` costs a draft model's passes
    (``draft_ranks`` copies each drafting for its share of the sequences under attention-DP)."""

    def __init__(self, target: RooflineCostModel, spec: SpecDecodeSpec, *,
                 draft: RooflineCostModel | None = None, draft_ranks: int = 1) -> None:
        self.target, self.spec, self.draft, self.draft_ranks = target, spec, draft, draft_ranks
        self.draft_tokens = spec.draft_tokens
        self.acceptance_length = spec.acceptance_length
        self._cache: dict[int, tuple[float, float]] = {}

    def draft_pass_coefficients(self, num_seqs: int) -> tuple[float, float]:
        """``(base_s, s_per_context_token)`` of one draft pass over ``num_seqs`` sequences."""
        if self.draft is not None:
            ranks = self.draft_ranks
            base, slope = self.draft.decode_coefficients(math.ceil(num_seqs / ranks), 0)
            return base, slope / ranks  # each copy reads its own sequences' context
        # MTP: the target's MoE layer plus the 2h -> h projection of [embedding; hidden];
        # EAGLE-3: a dense layer plus the 3h -> h fusion of three hidden states
        mtp = self.spec.method is SpecMethod.MTP
        h = self.target.model.hidden_size
        return self.target.one_layer_decode_coefficients(
            num_seqs, moe=mtp, extra_params=(2 if mtp else 3) * h * h)

    def decode_coefficients(self, num_seqs: int, context_tokens: int) -> tuple[float, float]:
        cached = self._cache.get(num_seqs)
        if cached is None:
            k, tau = self.draft_tokens, self.acceptance_length
            verify_base, verify_slope = self.target.multi_query_decode_coefficients(num_seqs, k + 1)
            draft_base, draft_slope = self.draft_pass_coefficients(num_seqs)
            cached = ((verify_base + k * draft_base) / tau, (verify_slope + k * draft_slope) / tau)
            self._cache[num_seqs] = cached
        return cached

    def step_time(self, prefill_tokens: int, prefill_attention_pairs: float,
                  prefill_context_tokens: int, num_prefill_seqs: int, num_decode_seqs: int,
                  decode_context_tokens: int) -> float:
        target = self.target
        if not num_decode_seqs:
            return target.step_time(prefill_tokens, prefill_attention_pairs,
                                    prefill_context_tokens, num_prefill_seqs, 0, 0)
        base, slope = self.decode_coefficients(num_decode_seqs, decode_context_tokens)
        speculative_s = base + slope * decode_context_tokens
        if not prefill_tokens and not num_prefill_seqs:
            return speculative_s
        plain_base, plain_slope = target.decode_coefficients(num_decode_seqs, decode_context_tokens)
        mixed_s = target.step_time(prefill_tokens, prefill_attention_pairs, prefill_context_tokens,
                                   num_prefill_seqs, num_decode_seqs, decode_context_tokens)
        prompt_s = target.step_time(prefill_tokens, prefill_attention_pairs,
                                    prefill_context_tokens, num_prefill_seqs, 0, 0)
        tau = self.acceptance_length
        # the real mixed step: its plain decode share replaced by drafting and verification
        real_s = (mixed_s - (plain_base + plain_slope * decode_context_tokens)
                  + tau * speculative_s)
        return prompt_s + max(0.0, real_s - prompt_s) / tau

    def step_time_s(self, shape: StepShape) -> float:
        return self.step_time(shape.prefill_tokens, shape.prefill_attention_pairs,
                              shape.prefill_context_tokens, shape.num_prefill_seqs,
                              shape.num_decode_seqs, shape.decode_context_tokens)
