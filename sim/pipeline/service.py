"""Pools for non-LLM stages: ``num_servers`` servers behind one FCFS queue, batching on dispatch.

A free server takes up to ``max_batch`` waiting requests (and at most ``max_batch_tokens`` of
work, but always at least one request) and is busy for the cost model's batch time. Dispatch is
deferred to the end of the current instant so that requests arriving together batch together.
With ``batch_timeout_s`` > 0 a free server waits for a fuller batch: it starts when
``max_batch`` requests wait or when the oldest has waited the timeout (Triton's dynamic batcher's
``max_queue_delay``). A pool placed on an LLM pool's GPUs (``sim.pipeline.colocation``) charges
every batch's time to the replica its server runs on (``share``).
This is an M/G/c queue with batch service: CPU cores (c = hosts x cores, batch 1), encoder
replicas (batched forward passes), vector-search workers (batched queries).

Hot path: a pool of batch 1 (CPU cores) runs ``_dispatch_single``, which prices each job with the
cost's ``job_time_s`` and hands the one request to ``_done_single``; a cost whose every request is
one unit of work (``unit_work``) batches by count without asking per request. Both schedule
exactly the events the general loop schedules, in the same order, with the same times.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Protocol

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
                 on_done: Callable[[Request, bool], None],
                 server_label: Callable[[int], str], batch_timeout_s: float = 0.0) -> None:
        self.engine, self.name, self.cost = engine, name, cost
        self.batch_timeout_s = batch_timeout_s
        self._wake_s = -1.0  # when a waiting-for-a-batch timer fires (-1: none set)
        self.share: list | None = None  # colocated: server i time-shares host replica i
        self.max_batch, self.max_batch_tokens = max_batch, max_batch_tokens
        self.on_done = on_done  # on_done(req, last): ``last`` = nothing follows in this event
        self.queue: deque[Request] = deque()
        self.idle = list(range(num_servers))  # a heap: the lowest free index serves first
        self.stats = [collector.replica_stats(server_label(i), name) for i in range(num_servers)]
        self.pending = False
        self.num_servers = num_servers
        self.in_service = 0
        # batch 1 with a per-job time: every dispatch is one request, priced on its own
        job_time = getattr(cost, "job_time_s", None)
        self._single = max_batch <= 1 and job_time is not None and batch_timeout_s <= 0
        self._job_time = job_time
        # every request weighs one unit: a batch is the first min(max_batch, budget) waiting
        self._unit_cap = (max(1, min(max_batch, max_batch_tokens))
                          if getattr(cost, "unit_work", False) else 0)
        # sequences of one length per request (encoders): the batch's shape is summed while it
        # is formed, each request's job read once
        self._job = getattr(cost, "job", None) if max_batch > 1 else None
        self._dispatch_cb = (self._dispatch_single if self._single else
                             self._dispatch_encoder if self._job is not None else self._dispatch)

    def submit(self, req: Request, last: bool = False) -> None:
        """Queue ``req``; a free server takes it at the end of this instant. ``last``: the caller's
        event does nothing after this call returns.

        The dispatch runs at once (``Engine.run_now``) instead of as an event when that is the
        same run: ``last``, and no other event is pending at this instant. Then the dispatch
        event, at (now, PRIORITY_SCHEDULE, its sequence number), would be the very next event the
        engine pops, with nothing in between: every event already queued is later, and the
        calling event schedules nothing more. Running its body now does exactly what that event
        would do: the same queue (this request alone), the same free server, the same time and
        duration; ``run_now`` draws the sequence number and counts the event, so every later
        tie-break and ``num_events`` are unchanged."""
        engine = self.engine
        req.stage_enqueue_s = now = engine.now_s
        req.stage_start_s = -1.0
        self.queue.append(req)
        if self.idle and not self.pending:
            if last and engine.next_time_s() > now:
                engine.run_now(self._dispatch_cb)
                return
            self.pending = True
            engine.push(now, PRIORITY_SCHEDULE, self._dispatch_cb, ())

    def _dispatch_single(self) -> None:
        """``_dispatch`` for batch 1: the same servers, times and events, without a batch list."""
        self.pending = False
        engine = self.engine
        queue, idle, stats_of, job_time = self.queue, self.idle, self.stats, self._job_time
        push, now, done = engine.push, engine.now_s, self._done_single
        while idle and queue:
            req = queue.popleft()
            server = heappop(idle)
            req.stage_start_s = now
            duration = job_time(req)
            stats = stats_of[server]
            stats.busy_s += duration
            stats.steps += 1
            if stats.spans is not None:
                stats.add_span(stats.label, req.plan[req.stage_index].kind.value, now, duration, 1)
            self.in_service += 1
            push(now + duration, PRIORITY_COMPLETION, done, (server, req))

    def _dispatch_encoder(self) -> None:
        """``_dispatch`` for encoder pools: the same batches (token budget from ``_job``), priced
        by ``shape_time_s`` of the sums formed on the way (``batch_time_s``'s own sums)."""
        self.pending = False
        queue, now, job = self.queue, self.engine.now_s, self._job
        max_batch, max_tokens = self.max_batch, self.max_batch_tokens
        while self.idle and queue:
            if self.batch_timeout_s > 0 and self._wait_for_batch(now):
                return
            req = queue.popleft()
            batch = [req]
            length, count = job(req)
            tokens, seqs, pairs = length * count, count, count * (length * (length + 1) // 2)
            while queue and len(batch) < max_batch:
                length, count = job(queue[0])
                more = length * count
                if tokens + more > max_tokens:
                    break
                tokens += more
                seqs += count
                pairs += count * (length * (length + 1) // 2)
                batch.append(queue.popleft())
            self._start(batch, self.cost.shape_time_s(tokens, pairs, seqs), now)

    def _dispatch(self) -> None:
        self.pending = False
        queue, now = self.queue, self.engine.now_s
        cost, unit_cap = self.cost, self._unit_cap
        while self.idle and queue:
            if self.batch_timeout_s > 0 and self._wait_for_batch(now):
                return
            if unit_cap:
                batch = [queue.popleft() for _ in range(min(unit_cap, len(queue)))]
            else:
                batch = [queue.popleft()]
                if self.max_batch > 1:
                    tokens = cost.work_tokens(batch[0])
                    while queue and len(batch) < self.max_batch:
                        more = cost.work_tokens(queue[0])
                        if tokens + more > self.max_batch_tokens:
                            break
                        tokens += more
                        batch.append(queue.popleft())
            self._start(batch, cost.batch_time_s(batch), now)

    def _wait_for_batch(self, now: float) -> bool:
        """Hold the queue back (True) while it is shorter than a full batch and its oldest request
        has waited less than the timeout; a timer dispatches at that request's deadline."""
        queue = self.queue
        deadline = queue[0].stage_enqueue_s + self.batch_timeout_s
        if len(queue) >= self.max_batch or deadline <= now:
            return False
        if self._wake_s != deadline:
            self._wake_s = deadline
            self.engine.push(deadline, PRIORITY_SCHEDULE, self._wake, (deadline,))
        return True

    def _wake(self, deadline: float) -> None:
        if deadline == self._wake_s:  # not superseded by a later timer
            self._wake_s = -1.0
            if not self.pending:
                self._dispatch_cb()

    def _start(self, batch: list[Request], duration: float, now: float) -> None:
        """The lowest free server serves ``batch`` for ``duration`` from ``now``."""
        server = heappop(self.idle)
        if self.share is not None:  # the host replica pays for the device time
            self.share[server].time_share(duration)
        for req in batch:
            req.stage_start_s = now
        stats = self.stats[server]
        stats.busy_s += duration
        stats.steps += 1
        if stats.spans is not None:
            stats.add_span(stats.label, batch[0].stage.kind.value, now, duration, len(batch))
        self.in_service += len(batch)
        self.engine.push(now + duration, PRIORITY_COMPLETION, self._done, (server, batch))

    def _schedule_dispatch(self) -> None:
        """A freed server takes the queue at the end of this instant."""
        self.pending = True
        engine = self.engine
        engine.push(engine.now_s, PRIORITY_SCHEDULE, self._dispatch_cb, ())

    def _done_single(self, server: int, req: Request) -> None:
        heappush(self.idle, server)
        self.in_service -= 1
        if self.queue and not self.pending:
            self._schedule_dispatch()
        self.on_done(req, True)  # the last thing this event does

    def _done(self, server: int, batch: list[Request]) -> None:
        heappush(self.idle, server)
        self.in_service -= len(batch)
        if self.queue and not self.pending:
            self._schedule_dispatch()
        last = batch[-1]
        for req in batch:
            self.on_done(req, req is last)  # only the last call ends this event
