"""Reasoning requests: long thinking, multi-round context growth, best-of-N samples.

* Thinking length: a bimodal mixture (short with probability ``1 - long_fraction``, else long),
  drawn per request from the type's own stream; it is added to the answer's output tokens. A
  thinking budget (``budget_tokens``) cuts it there (budget forcing: the model is made to stop
  thinking and answer), after the draw, so a budget changes no other request's draws.
* Rounds: thinking is split evenly over ``num_rounds`` prefill/decode rounds. Round ``r + 1``'s
  prompt is round ``r``'s whole context plus ``feedback_tokens`` (tool output, critique); the
  previous context's KV stays in the replica's prefix cache (vLLM automatic prefix caching), so
  the request returns to the same replica and only the new tokens are prefilled.
* Best-of-N: ``num_samples`` decode sequences fork from the prompt's KV. The replica counts the
  prompt's full blocks once and each sample's own blocks (copy-on-write of the partial last
  block, then its own tokens); decode work scales with N. The samples are scored by a reward
  stage (``EncoderCost``: one forward pass over prompt + candidate per sample).
After the last round the request reports its first round's prompt and all its output tokens
(per sample) so throughput counts every generated token once per sample.
"""

from __future__ import annotations

import numpy as np

from sim.pipeline.specs import ReasoningSpec
from sim.request import Request


def draw_thinking(spec: ReasoningSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    short = spec.think_short.sample(rng, n)
    long = spec.think_long.sample(rng, n)
    is_long = rng.random(n) < spec.long_fraction
    thinking = np.where(is_long, long, short)
    return np.minimum(thinking, spec.budget_tokens) if spec.budget_tokens else thinking


def begin(req: Request, spec: ReasoningSpec, thinking: int) -> None:
    """Set up round 1 (called when the request is created)."""
    rounds = spec.num_rounds
    req.samples = spec.num_samples
    req.round_output = max(1, thinking // rounds)
    req.rounds_left = rounds - 1
    req.output_tokens = req.round_output + (req.answer_tokens if rounds == 1 else 0)


def next_round(req: Request, spec: ReasoningSpec) -> None:
    """Turn a finished round into the next one (same replica, previous context cached)."""
    context = req.prompt_tokens + req.output_tokens
    req.total_output += req.output_tokens
    req.prompt_tokens = context + spec.feedback_tokens
    req.rounds_left -= 1
    req.output_tokens = req.round_output + (req.answer_tokens if req.rounds_left == 0 else 0)
    req.cached_tokens = context - 1  # the last token's KV is written by the next prefill
    req.pinned = True
    req.round_first_s = -1.0


def finish(req: Request) -> None:
    """Report the first round's prompt and every output token (per sample), and when the answer
    began: the final round emits ``round_output`` thinking tokens, then the answer, so its first
    answer token is placed at that round's mean inter-token time (exact for uniform steps; the
    closed-form decode runs keep no per-token times)."""
    first, last, n = req.round_first_s, req.last_token_s, req.output_tokens
    thinking = req.round_output if req.rounds_left == 0 and req.round_output else 0
    if first < 0:
        first = req.first_token_s
    req.answer_token_s = first + thinking * (last - first) / (n - 1) if n > 1 else first
    if req.total_output:
        req.total_output += req.output_tokens
        req.output_tokens = req.total_output
        req.prompt_tokens = req.gen_prompt
