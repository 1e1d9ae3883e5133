"""Pools for non-LLM stages: ``num_servers`` servers behind one FCFS queue, batching on dispatch.

A free server takes up to ``max_batch`` waiting requests (and at most ``max_batch_tokens`` of
work, but always at least one request) and is busy for the cost model's batch time. Dispatch is
deferred to the end of the current instant so that requests arriving together batch together.
This is an M/G/c queue with batch service: CPU cores (c = hosts x cores, batch 1), encoder
replicas (batched forward passes), vector-search workers (batched queries).
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Callable, Protocol

from sim.engine import PRIORITY_COMPLETION, PRIORITY_SCHEDULE, Engine
from sim.metrics.collector import Collector
from sim.request import Request


class BatchCost(Protocol):
    def batch_time_s(self, batch: list[Request]) -> float: ...

    def work_tokens(self, req: Request) -> int:
        """Tokens (or other work units) ``req`` adds to a batch, for the token budget."""
        ...


class ServicePool:
    def __init__(self, engine: Engine, name: str, num_servers: int, cost: BatchCost, *,
                 max_batch: int, max_batch_tokens: int, collector: Collector,
                 on_done: Callable[[Request], None], server_label: Callable[[int], str]) -> None:
        self.engine, self.name, self.cost = engine, name, cost
        self.max_batch, self.max_batch_tokens = max_batch, max_batch_tokens
        self.on_done = on_done
        self.queue: deque[Request] = deque()
        self.idle = list(range(num_servers))  # a heap: the lowest free index serves first
        self.stats = [collector.replica_stats(server_label(i), name) for i in range(num_servers)]
        self.pending = False
        self.num_servers = num_servers
        self.in_service = 0

    def submit(self, req: Request) -> None:
        req.stage_enqueue_s = self.engine.now_s
        req.stage_start_s = -1.0
        self.queue.append(req)
        if self.idle and not self.pending:
            self.pending = True
            self.engine.schedule(self.engine.now_s, self._dispatch, priority=PRIORITY_SCHEDULE)

    def _dispatch(self) -> None:
        self.pending = False
        queue, now = self.queue, self.engine.now_s
        while self.idle and queue:
            batch = [queue.popleft()]
            if self.max_batch > 1:
                tokens = self.cost.work_tokens(batch[0])
                while queue and len(batch) < self.max_batch:
                    more = self.cost.work_tokens(queue[0])
                    if tokens + more > self.max_batch_tokens:
                        break
                    tokens += more
                    batch.append(queue.popleft())
            server = heapq.heappop(self.idle)
            for req in batch:
                req.stage_start_s = now
            duration = self.cost.batch_time_s(batch)
            stats = self.stats[server]
            stats.busy_s += duration
            stats.steps += 1
            if stats.spans is not None:
                stats.add_span(stats.label, batch[0].stage.kind.value, now, duration, len(batch))
            self.in_service += len(batch)
            self.engine.schedule(now + duration, self._done, server, batch,
                                 priority=PRIORITY_COMPLETION)

    def _done(self, server: int, batch: list[Request]) -> None:
        heapq.heappush(self.idle, server)
        self.in_service -= len(batch)
        if self.queue and not self.pending:
            self.pending = True
            self.engine.schedule(self.engine.now_s, self._dispatch, priority=PRIORITY_SCHEDULE)
        for req in batch:
            self.on_done(req)
