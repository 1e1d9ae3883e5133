"""A pool of identical LLM replicas behind a router (colocated, prefill-only or decode-only)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.config import PoolSpec
from sim.cost.factory import build_cost_model
from sim.engine import Engine
from sim.errors import ConfigError
from sim.hardware.memory import kv_bytes_per_token_per_device
from sim.metrics.collector import Collector
from sim.pipeline.specs import FirstToken
from sim.request import DropReason, Request
from sim.roles import PoolRole
from sim.scheduling.policies.registry import strategy_for
from sim.scheduling.replica import (
    FIRST_AT_ADMIT,
    FIRST_AT_PREFILL,
    FIRST_AT_STEP,
    MODE_COLOCATED,
    MODE_DECODE_ONLY,
    MODE_PREFILL_ONLY,
    Replica,
    watermark_blocks,
)
from sim.scheduling.router import make_router

_MODES = {PoolRole.COLOCATED: MODE_COLOCATED, PoolRole.PREFILL: MODE_PREFILL_ONLY,
          PoolRole.DECODE: MODE_DECODE_ONLY}
_FIRST = {FirstToken.PREFILL: FIRST_AT_PREFILL, FirstToken.DECODE_ADMIT: FIRST_AT_ADMIT,
          FirstToken.DECODE_STEP: FIRST_AT_STEP}


class LLMPool:
    def __init__(self, engine: Engine, spec: PoolSpec, collector: Collector,
                 on_done: Callable[[Request], None], on_reject: Callable[[Request], None], *,
                 rng: np.random.Generator | None = None, hbm_cache_bytes: float = 0.0,
                 holds: Callable[[int, int], int] | None = None) -> None:
        self.spec = spec
        sched = spec.scheduler
        self.num_blocks = spec.kv_capacity_blocks()
        if hbm_cache_bytes:
            # The HBM prefix tier is carved out of the replica's KV blocks (per device share).
            block = kv_bytes_per_token_per_device(spec.model, spec.tp, spec.pp, spec.kv_dtype,
                                                  attention_dp=spec.attention_dp) \
                * sched.block_size_tokens
            reserved = int(hbm_cache_bytes / (spec.tp * spec.pp) // block) + 1
            if reserved >= self.num_blocks:
                raise ConfigError(
                    f"kv_tiers: the hbm tier ({hbm_cache_bytes / 1e9:.1f} GB per replica) leaves no "
                    f"KV blocks for running requests on pool {spec.name!r} (room for "
                    f"{self.num_blocks * block * spec.tp * spec.pp / 1e9:.1f} GB)")
            self.num_blocks -= reserved
        self.cost = build_cost_model(spec)  # stateless per step, shared by the pool's replicas
        mode = _MODES[spec.role]
        self.replicas = [
            Replica(engine, f"{spec.name}/{i}", self.cost, sched, self.num_blocks, on_done,
                    collector.replica_stats(f"{spec.name}/{i}", spec.name), index=i, mode=mode,
                    first_token=_FIRST[spec.first_token])
            for i in range(spec.num_replicas)]
        self.router = make_router(spec.router, self.replicas, spec=spec, rng=rng, holds=holds)
        self.on_reject = on_reject
        self.service = None  # a ServiceRouter when other colocated pools serve the same model
        self._block = sched.block_size_tokens
        # Admission must leave the watermark free, so a request whose longest context (which a
        # preempted request must re-admit with) needs more than the rest can never be served
        # (vLLM V0's AllocStatus.NEVER).
        self._admittable_blocks = self.num_blocks - watermark_blocks(self.num_blocks,
                                                                     sched.kv_watermark_fraction)
        self._decode_only = mode == MODE_DECODE_ONLY
        # A policy admitting whole prompts can never serve one above its token budget.
        strategy = strategy_for(sched.policy)
        self._whole_prompt_budget = (strategy.token_budget(sched) if strategy.whole_prompts
                                     else None)

    def drop_reason(self, req: Request) -> DropReason | None:
        """Why this request can never be served here (checked before it queues)."""
        longest = req.prompt_tokens + req.output_tokens - 1
        if req.prompt_tokens + req.output_tokens > self.spec.model.max_context_tokens:
            return DropReason.CONTEXT_EXCEEDS_MODEL
        blocks = -(-longest // self._block)
        if req.samples > 1:  # full prompt blocks shared, the rest per sample
            shared = req.prompt_tokens // self._block
            blocks = shared + req.samples * (blocks - shared)
        if blocks > self._admittable_blocks:
            return DropReason.PROMPT_EXCEEDS_KV_CAPACITY
        if self._whole_prompt_budget is not None and not self._decode_only and \
                req.prompt_tokens - req.cached_tokens > self._whole_prompt_budget:
            return DropReason.PROMPT_EXCEEDS_BATCH_TOKENS
        return None

    def submit(self, req: Request) -> None:
        if self.service is not None and not req.pinned:
            self.service.submit(req)  # one of several pools serving this model: it picks
            return
        self.submit_here(req)

    def submit_here(self, req: Request) -> None:
        reason = self.drop_reason(req)
        if reason is not None:
            req.drop_reason = reason
            self.on_reject(req)
            return
        if req.pinned:  # its prefix KV was fetched to (or is cached on) this replica
            req.pinned = False
            replica = self.replicas[req.replica]
        else:
            replica = self.router.choose(req)
            req.replica = replica.index
        replica.enqueue(req)
