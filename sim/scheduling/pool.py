"""A pool of identical replicas behind a router, serving one stage kind."""

from __future__ import annotations

from typing import Callable

from sim.config import BatchPolicy, PoolSpec
from sim.cost.factory import build_cost_model
from sim.engine import Engine
from sim.hardware.memory import kv_capacity_blocks
from sim.metrics.collector import Collector
from sim.request import DropReason, Request
from sim.scheduling.replica import Replica
from sim.scheduling.router import make_router


class LLMPool:
    def __init__(self, engine: Engine, spec: PoolSpec, collector: Collector,
                 on_done: Callable[[Request], None], on_reject: Callable[[Request], None]) -> None:
        self.spec = spec
        sched = spec.scheduler
        self.num_blocks = kv_capacity_blocks(
            spec.model, spec.hardware, tp=spec.tp, pp=spec.pp, weight_dtype=spec.weight_dtype,
            kv_dtype=spec.kv_dtype, block_size_tokens=sched.block_size_tokens,
            gpu_memory_utilization=sched.gpu_memory_utilization,
            activation_reserve_fraction=sched.activation_reserve_fraction, pool_name=spec.field_path)
        self.cost = build_cost_model(spec)  # stateless per step, shared by the pool's replicas
        self.replicas = [
            Replica(engine, f"{spec.name}/{i}", self.cost, sched, self.num_blocks, on_done,
                    collector.replica_stats(f"{spec.name}/{i}", spec.name))
            for i in range(spec.num_replicas)]
        self.router = make_router(spec.router, self.replicas)
        self.on_reject = on_reject
        self._block = sched.block_size_tokens
        self._whole_prompt_budget = (sched.max_batched_tokens
                                     if sched.policy is not BatchPolicy.CHUNKED else None)

    def drop_reason(self, req: Request) -> DropReason | None:
        """Why this request can never be served here (checked before it queues)."""
        longest = req.prompt_tokens + req.output_tokens - 1
        if req.prompt_tokens + req.output_tokens > self.spec.model.max_context_tokens:
            return DropReason.CONTEXT_EXCEEDS_MODEL
        if -(-longest // self._block) > self.num_blocks:
            return DropReason.PROMPT_EXCEEDS_KV_CAPACITY
        if self._whole_prompt_budget is not None and req.prompt_tokens > self._whole_prompt_budget:
            return DropReason.PROMPT_EXCEEDS_BATCH_TOKENS
        return None

    def submit(self, req: Request) -> None:
        reason = self.drop_reason(req)
        if reason is not None:
            req.drop_reason = reason
            self.on_reject(req)
            return
        self.router.choose(req).enqueue(req)
