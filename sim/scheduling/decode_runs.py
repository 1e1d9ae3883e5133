"""The decode set of a replica, and decode runs in closed form (shared by every policy).

Speed: when a step would contain only decodes and nothing can join, the batch membership cannot
change until the earliest of (a member finishes, the KV cache fills, a new request arrives). The
replica advances all those decode steps in closed form — step time is ``base + slope * context``
and context grows by the batch size each step — and schedules one event at the end of the run.
An arrival that could join interrupts the run at the next step boundary.

Decode state is kept lazily: a decoding request's generated count is
``gen_base + (decode_step - step_base)``, so advancing a run is O(1) in the batch size. KV blocks
are counted exactly with a histogram of block phases (see ``_new_blocks``).

Only decode growth can run the KV cache dry (admission reserves every prompt block, see
``sim.scheduling.replica``); it does so by preempting the most recently admitted request (LIFO,
recompute), which waits at the head of the queue.

``DecodeRuns`` is a mixin of ``Replica``: it reads and writes the replica's attributes directly
(``engine``, ``cost``, ``stats``, ``bs``, ``admitted``, ``waiting``, ``prefilling``, block
counters) and calls back ``start_next_step``, ``_begin``, ``_continue``, ``_finish`` and the
block helpers, so nothing here costs an extra indirection on the hot path.
"""

from __future__ import annotations

import heapq
import math

from sim.engine import PRIORITY_COMPLETION
from sim.request import Request


class DecodeRuns:
    """Mixin of ``Replica``: the decode set, closed-form decode runs, KV growth, preemption."""

    def _init_decode_set(self, block_size: int) -> None:
        # decode set, kept lazily (see module docstring)
        self.num_decoding = 0
        self.decode_step = 0
        self._ctx_sum = 0  # sum of decoders' context at decode step _ctx_anchor
        self._ctx_anchor = 0
        self.phase_counts = [0] * block_size
        self.finish_heap: list[tuple[int, int, Request]] = []
        # the current closed-form run
        self.in_run = False
        self.run_start_s = self.run_base_s = self.run_growth_s = 0.0
        self.run_steps = 0
        # Decoders that sat through prefill-only steps since their last token, grouped by how
        # long: [stall_s, count], oldest group first (continuous policy only).
        self._stalls: list[list] = []

    def context_of(self, req: Request) -> int:
        """KV tokens a decoding request holds now."""
        return req.context + (self.decode_step - req.step_base)

    def _record_itl(self, first_step_s: float, growth_s: float, steps: int, batch: int) -> None:
        """Inter-token gaps of a decode run; stalled decoders' first gap includes their stall."""
        if not self._stalls:
            self.stats.record_itl_run(first_step_s, growth_s, steps, batch)
            return
        stalled = 0
        for stall_s, count in self._stalls:
            self.stats.record_itl_run(first_step_s + stall_s, 0.0, 1, count)
            stalled += count
        self._stalls.clear()
        self.stats.record_itl_run(first_step_s, 0.0, 1, batch - stalled)
        if steps > 1:
            self.stats.record_itl_run(first_step_s + growth_s, growth_s, steps - 1, batch)

    # --- decode runs in closed form ----------------------------------------------------
    def start_decode_run(self) -> None:
        """Decode-only steps in closed form until the batch changes (``ReplicaView``): one event
        at the run's end, cut short by the first finish, a full KV cache or an interrupt."""
        heap, admitted = self.finish_heap, self.admitted
        while heap and admitted.get(heap[0][1]) is not heap[0][2]:  # _drop_stale_finishes
            heapq.heappop(heap)
        steps = heap[0][0] - self.decode_step  # until the first member finishes
        n = self.num_decoding
        # Enough free blocks for every decoder to cross a block boundary each bs steps: the
        # KV cache cannot fill before the first finish (``_steps_until_kv_full`` >= steps).
        if self.total_blocks - self.used_blocks < n * (steps // self.bs + 1):
            while True:
                kv_steps = self._steps_until_kv_full()
                if kv_steps > 0:
                    break
                self._preempt_last()
                if not self.num_decoding:
                    return self.start_next_step()
            self._drop_stale_finishes()
            steps = min(kv_steps, heap[0][0] - self.decode_step)
            n = self.num_decoding
        context = self._ctx_sum + n * (self.decode_step - self._ctx_anchor)
        base, slope = self.cost.decode_coefficients(n, context)
        self.run_base_s = run_base = base + slope * context
        self.run_growth_s = growth = slope * n
        self.run_steps = steps
        engine = self.engine
        stats = self.stats
        start = engine.now_s
        if self.shared:  # a colocated stage's device time delays the run's first step
            stall = self.shared_stall_s()
            if stall:
                self.stall_decoders(stall)
                stats.busy_s += stall
                start += stall
        self.run_start_s = start
        self.in_run = True
        if self.first_pending:  # decoders admitted just now: their first token ends step one
            self.stamp_first_tokens(start + run_base)
        if stats.spans is None:  # ``_begin(0.0, ...)``, inlined
            self.busy = True
            self.version += 1
            stats.steps += 1
        else:
            self._begin(0.0, "decode", n)
        # the run's end (``_run_time(steps)``, inlined)
        engine.push(start + steps * run_base + growth * steps * (steps - 1) / 2,
                    PRIORITY_COMPLETION, self._end_run, (self.version,))

    def _run_time(self, steps: int) -> float:
        """End time of the ``steps``-th step of the current run."""
        return self.run_start_s + steps * self.run_base_s + self.run_growth_s * steps * (steps - 1) / 2

    def _interrupt_run(self) -> None:
        """Shorten the current run to end at the first step boundary at or after now."""
        now = self.engine.now_s
        a = self.run_growth_s / 2
        b = self.run_base_s - a
        c = self.run_start_s - now
        if a > 0:
            steps = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
        else:
            steps = -c / b
        run_steps = self.run_steps
        m = max(1, min(run_steps, math.ceil(steps)))
        # ``_run_time(k)``, inlined: the same expression, so the same float
        start, base, growth = self.run_start_s, self.run_base_s, self.run_growth_s
        while m > 1 and start + (m - 1) * base + growth * (m - 1) * (m - 2) / 2 >= now:
            m -= 1
        while m < run_steps and start + m * base + growth * m * (m - 1) / 2 < now:
            m += 1
        if m < run_steps:
            self.run_steps = m
            self.version = version = self.version + 1
            # the end is never before now (the loop above), so ``push`` needs no causality check
            self.engine.push(start + m * base + growth * m * (m - 1) / 2, PRIORITY_COMPLETION,
                             self._end_run, (version,))

    def _end_run(self, version: int) -> None:
        if version != self.version:
            return  # superseded by an interrupt
        steps = self.run_steps
        duration = self.engine.now_s - self.run_start_s
        stats = self.stats
        stats.busy_s += duration
        if self._stalls:
            self._record_itl(self.run_base_s, self.run_growth_s, steps, self.num_decoding)
        else:  # ``record_itl_run``, inlined (the batch is never empty here)
            stats.itl_runs.extend((self.run_base_s, self.run_growth_s, steps, self.num_decoding))
        stats.decode_steps += steps
        if stats.spans is not None:
            stats.add_span(self.label, f"decode x{steps}", self.run_start_s, duration,
                           self.num_decoding)
        step = self.decode_step
        if steps == 1:  # ``_new_blocks(step, 1)``, inlined
            self.used_blocks += self.phase_counts[-step % self.bs]
        else:
            self.used_blocks += self._new_blocks(step, steps)
        self.decode_step = step = step + steps
        self.busy = self.in_run = False
        heap = self.finish_heap
        if heap and heap[0][0] <= step:
            self._pop_finished()
        engine = self.engine  # ``_continue``, inlined
        if engine.next_time_s() <= engine.now_s:
            self._request_schedule()
        elif self.decode_only and self.waiting:
            self.start_next_step()
        else:
            self.strategy.next_step(self)

    # --- decode-set bookkeeping ----------------------------------------------------------
    def _context_sum(self) -> int:
        return self._ctx_sum + self.num_decoding * (self.decode_step - self._ctx_anchor)

    def _reanchor(self) -> None:
        self._ctx_sum = self._context_sum()
        self._ctx_anchor = self.decode_step

    def _join_decode(self, req: Request) -> None:
        step = self.decode_step
        if step != self._ctx_anchor:  # ``_reanchor``, inlined
            self._ctx_sum += self.num_decoding * (step - self._ctx_anchor)
            self._ctx_anchor = step
        req.step_base = step
        req.gen_base = generated = req.generated
        context = req.context
        req.phase = phase = (context - step) % self.bs
        n = req.samples
        self.phase_counts[phase] += n
        self.num_decoding += n
        self._ctx_sum += context * n
        heapq.heappush(self.finish_heap, (step + req.output_tokens - generated, req.admit_seq, req))

    def _leave_decode(self, req: Request) -> int:
        """Remove a decoding request; return its context (KV tokens held)."""
        step = self.decode_step
        if step != self._ctx_anchor:  # ``_reanchor``, inlined
            self._ctx_sum += self.num_decoding * (step - self._ctx_anchor)
            self._ctx_anchor = step
        steps = step - req.step_base
        context = req.context + steps  # ``context_of``, inlined
        req.generated = req.gen_base + steps
        n = req.samples
        self.phase_counts[req.phase] -= n
        self.num_decoding -= n
        self._ctx_sum -= context * n
        return context

    def _pop_finished(self) -> None:
        heap = self.finish_heap
        if not heap or heap[0][0] > self.decode_step:
            return
        while heap and heap[0][0] <= self.decode_step:
            _, seq, req = heapq.heappop(heap)
            if self.admitted.get(seq) is req:  # else a stale entry of a preempted request
                self._finish(req, self._leave_decode(req))

    def _drop_stale_finishes(self) -> None:
        heap = self.finish_heap
        while heap and self.admitted.get(heap[0][1]) is not heap[0][2]:
            heapq.heappop(heap)

    # --- KV blocks -------------------------------------------------------------------------
    def _held_blocks(self, req: Request, context: int) -> int:
        """Blocks a decoding request holds at ``context``: best-of-N samples share the prompt's
        full blocks (those below the fork context ``join_context``) and own the rest."""
        if req.samples == 1:
            return -(-context // self.bs)
        shared = req.join_context // self.bs
        return shared + req.samples * (-(-context // self.bs) - shared)

    def _new_blocks(self, step: int, steps: int) -> int:
        """Blocks the decode set allocates over decode steps [step, step + steps).

        A request whose context is a multiple of the block size before a step needs a new block;
        decoders advance in lockstep, so each one's (context - decode_step) mod block size is
        constant and a histogram of it answers in O(block size)."""
        bs, counts = self.bs, self.phase_counts
        cycles, rest = divmod(steps, bs)
        total = cycles * self.num_decoding
        for t in range(step + cycles * bs, step + steps):
            total += counts[-t % bs]
        return total

    def _decode_blocks_needed(self, steps: int) -> int:
        if steps == 1:
            return self.phase_counts[-self.decode_step % self.bs] if self.num_decoding else 0
        return self._new_blocks(self.decode_step, steps) if self.num_decoding else 0

    def next_step_blocks(self) -> int:
        """Blocks the decode set allocates in its next step (``_decode_blocks_needed(1)``)."""
        return self.phase_counts[-self.decode_step % self.bs] if self.num_decoding else 0

    def _steps_until_kv_full(self) -> int:
        """How many decode steps fit in the free blocks (exact)."""
        free = self.total_blocks - self.used_blocks
        bs, counts, n = self.bs, self.phase_counts, self.decode_step
        cycles = free // self.num_decoding
        free -= cycles * self.num_decoding
        steps = cycles * bs
        for t in range(n + steps, n + steps + bs):
            free -= counts[-t % bs]
            if free < 0:
                return steps
            steps += 1
        return steps

    def reserve_decode_blocks(self, steps: int) -> bool:
        """Make room for the decoders' next steps, preempting if needed; False if it preempted."""
        preempted = False
        while self.num_decoding and \
                self._decode_blocks_needed(steps) > self.total_blocks - self.used_blocks:
            self._preempt_last()
            preempted = True
        return not preempted

    def _preempt_last(self) -> None:
        """Preemption by recompute: the most recently admitted request gives back its KV."""
        _, req = self.admitted.popitem()
        if self.reserve_full:
            self.reserved_full_blocks -= self.full_blocks(req)
        if req.computed >= req.prefill_target:  # decoding
            stall_s = self._unstall_victim(req.samples)
            if req.preempted_token_s < 0:
                req.preempted_token_s = self.engine.now_s - stall_s
            context = self._leave_decode(req)
            self.used_blocks -= self._held_blocks(req, context)
            req.prefill_target = req.prompt_tokens + req.generated
        else:  # only chunked prefill leaves a request half-prefilled between steps
            self.used_blocks -= self._prompt_blocks(req)
            self.prefilling.remove(req)
        req.computed = 0
        req.admit_seq = 0
        req.preemptions += 1
        self.stats.preemptions += 1
        self.waiting.appendleft(req)

    def _unstall_victim(self, samples: int) -> float:
        """Take a preempted decoder out of the stall groups; return how long it had stalled.
        The victim is the most recently admitted, so it is among the decoders that joined last:
        not yet stalled if some decoders are ungrouped, else in the newest group."""
        stalled = sum(group[1] for group in self._stalls)
        if not self._stalls or self.num_decoding > stalled:
            return 0.0
        group = self._stalls[-1]
        group[1] -= samples
        if group[1] <= 0:
            self._stalls.pop()
        return group[0]
