"""The interface every batching policy implements.

A policy is a stateless strategy object shared by every replica that runs it: the replica owns
the queues, the KV blocks and the decode set (``sim.scheduling.replica``), and asks its policy
once per step boundary which step to run next (``next_step``). That keeps the decision apart
from the bookkeeping, the way vLLM keeps its scheduler apart from the engine.

Policies see the ``SchedulerSpec`` duck-typed and the replica through the ``ReplicaView``
protocol (``contract.py``), and import neither ``sim.config`` nor ``sim.scheduling.replica``, so
the registry (``sim.scheduling.policies``) can be imported by ``sim.config`` without an import
cycle.

What a replica offers a policy (``ReplicaView``: all public names on the replica itself, so a
policy adds no indirection; ``contract.py`` says what a policy may and must not do with them):
  state     ``waiting``, ``admitted``, ``prefilling``, ``num_decoding``, ``max_seqs``,
            ``token_budget`` (this policy's ``token_budget(spec)``), ``engine.now_s``; KV:
            ``bs``, ``total_blocks``, ``used_blocks``, ``watermark``, ``decode_step``,
            ``phase_counts``
  admission ``sim.scheduling.policies.admission.admit_whole`` (whole prompts) or the policy's
            own (``chunked.admit_chunks``); both call ``replica.admit`` (chunked inlines it,
            with ``last_admit_seq``) and reserve ``next_step_blocks()``, ``fork_blocks(req)``
  steps     ``start_step(chunks, with_decode=...)``: one explicit prefill (+ decode) step;
            ``start_decode_run()``: decode steps in closed form until the batch changes;
            ``reserve_decode_blocks(1)``: room for one decode step, preempting if needed
            (False if it preempted); ``start_next_step()``: plan again from scratch
"""

from __future__ import annotations

import abc
from typing import ClassVar

from sim.scheduling.policies.contract import ReplicaView


class BatchingStrategy(abc.ABC):
    """How a replica forms its next step from the waiting queue and the running batch."""

    __slots__ = ()

    name: ClassVar[str]  # the config value (``scheduler.policy``) and the BatchPolicy member
    # The SchedulerSpec field that is the per-step token budget.
    budget_field: ClassVar[str] = "max_batched_tokens"
    # May an arrival cut a closed-form decode run short at the next step boundary (so it can
    # join)? A policy whose batch, once formed, admits nobody until it drains says False.
    interruptible: ClassVar[bool] = True
    # Is a prompt admitted whole, in one step? Then a prompt longer than the token budget is
    # never served: the pool rejects it up front (DropReason.PROMPT_EXCEEDS_BATCH_TOKENS).
    whole_prompts: ClassVar[bool] = True

    def token_budget(self, spec) -> int:
        """Tokens one step may carry (prefill tokens, plus one per decode if they share it)."""
        return getattr(spec, self.budget_field)

    def validate(self, spec, prefix: str) -> None:  # noqa: B027  a hook, optional to override
        """The policy's own checks of a ``SchedulerSpec`` (``prefix`` names it in errors); called
        last by ``SchedulerSpec.validate``. Raise ``sim.errors.ConfigError``; none by default."""

    @abc.abstractmethod
    def next_step(self, replica: ReplicaView) -> None:
        """Start the replica's next step (idle replica, at a step boundary), or leave it idle.

        Called once per step boundary, after a decode-only replica has admitted the requests
        whose KV arrived. Admits waiting requests under the budgets, then starts one explicit
        step or a closed-form decode run; starts nothing if there is no work."""
