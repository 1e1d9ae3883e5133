"""The step-time cost model interface.

A replica asks its cost model how long one engine step takes for a given batch shape. Decode-only
steps are also described as ``base_s + s_per_context_token * context_tokens`` so that a replica can
advance many identical-membership decode steps in closed form instead of one event per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sim.errors import ConfigError


@dataclass(frozen=True, slots=True)
class StepShape:
    """What one engine step computes, aggregated over the batch."""

    prefill_tokens: int = 0  # new prompt tokens computed this step (all prefilling requests)
    prefill_attention_pairs: float = 0.0  # sum over chunks of chunk * (context_before + (chunk + 1) / 2)
    prefill_context_tokens: int = 0  # sum over chunks of (context_before + chunk): KV read by prefill
    num_prefill_seqs: int = 0
    num_decode_seqs: int = 0
    decode_context_tokens: int = 0  # sum of decoding sequences' context lengths: KV read by decode

    @staticmethod
    def for_prefill_chunks(chunks: list[tuple[int, int]]) -> StepShape:
        """Shape of a prefill-only step from ``(context_before, chunk_tokens)`` pairs."""
        tokens = pairs = context = 0
        for before, chunk in chunks:
            tokens += chunk
            pairs += chunk * (before + (chunk + 1) / 2)
            context += before + chunk
        return StepShape(prefill_tokens=tokens, prefill_attention_pairs=pairs,
                         prefill_context_tokens=context, num_prefill_seqs=len(chunks))


@runtime_checkable
class StepCostModel(Protocol):
    """Time of one forward step of a replica (all its devices) for a batch shape."""

    def step_time_s(self, shape: StepShape) -> float: ...

    def decode_coefficients(self, num_seqs: int, context_tokens: int) -> tuple[float, float]:
        """``(base_s, s_per_context_token)`` such that a decode-only step of ``num_seqs`` sequences
        holding ``C`` context tokens in total takes ``base_s + s_per_context_token * C`` for ``C``
        near ``context_tokens`` (a local linearisation; exact for the roofline and table models).
        A replica advances a run of decode steps with one pair, so the pair must stay accurate
        while context grows by ``num_seqs`` per step over the run."""
        ...


class ConstantCostModel:
    """Every step takes the same time: the closed-form (M/D/1-style) reference."""

    def __init__(self, step_s: float) -> None:
        if not (isinstance(step_s, (int, float)) and 0 < step_s < float("inf")):
            raise ConfigError(f"cost_model.constant_step_s={step_s!r} (step_ms in YAML): "
                              "must be a finite number > 0")
        self.step_s = float(step_s)

    def step_time_s(self, shape: StepShape) -> float:
        return self.step_s

    def decode_coefficients(self, num_seqs: int, context_tokens: int) -> tuple[float, float]:
        return self.step_s, 0.0
