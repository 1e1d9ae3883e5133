"""One model replica: a waiting queue, a running batch, a paged KV cache and a cost model.

Vocabulary (after vLLM v1): every admitted request's computed tokens catch up with its prefill
target under a token budget, a sequence budget and a KV-block budget; decoding requests then
advance one token per decode step.

Speed: when a step would contain only decodes and nothing can join, the batch membership cannot
change until the earliest of (a member finishes, the KV cache fills, a new request arrives). The
replica advances all those decode steps in closed form — step time is ``base + slope * context``
and context grows by the batch size each step — and schedules one event at the end of the run.
An arrival that could join interrupts the run at the next step boundary.

Decode state is kept lazily: a decoding request's generated count is
``gen_base + (decode_step - step_base)``, so advancing a run is O(1) in the batch size. KV blocks
are counted exactly with a histogram of block phases (see ``_new_blocks``).

Pipelines (``sim.pipeline``) add three things, none of which costs the single-stage path more
than an attribute check:
* cached prefix tokens: a request may arrive with ``computed = cached_tokens > 0`` (prefix KV
  fetched from a tier); those tokens take KV blocks at admission but no compute;
* roles: a prefill-only replica finishes a request at its first token (the pipeline hands the KV
  to a decode pool); a decode-only replica admits requests whose KV arrived
  (``computed == prefill_target``) straight into the decode batch;
* best-of-N: a request with ``samples = N`` decodes N sequences in lockstep. The prompt's full
  blocks are shared; each sample owns a copy of the partial last block and its own tokens, so a
  request holds ``floor(J/bs) + N * (ceil(c/bs) - floor(J/bs))`` blocks at context ``c`` after
  forking at context ``J`` (``_held_blocks``), and each of its decode steps is N sequences' work.

KV admission (after vLLM V0's ``BlockSpaceManager.can_allocate``, which V0 applies with chunked
prefill too): a waiting request is admitted only if *all* the blocks of its prompt (plus its
samples' fork blocks) fit in the free blocks left after the running decoders' next step, with
``watermark_blocks(total, kv_watermark_fraction)`` blocks still free afterwards. The blocks are
reserved at admission, so prompt chunks never allocate and a half-prefilled request never needs a
block. Only decode growth can then run the cache dry, and it does so by preempting the most
recently admitted request (LIFO, recompute), which waits at the head of the queue and comes back
only when its prompt plus its generated tokens fit above the watermark again. Without this rule a
chunked replica under KV pressure admits a first chunk, the decoders need the block, the newest
request is preempted and readmitted with another first chunk: preemption by the thousand.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Callable

from sim.config import BatchPolicy, SchedulerSpec
from sim.cost.base import StepCostModel, StepShape
from sim.engine import PRIORITY_COMPLETION, PRIORITY_SCHEDULE, Engine
from sim.metrics.collector import ReplicaStats
from sim.request import Request


MODE_COLOCATED, MODE_PREFILL_ONLY, MODE_DECODE_ONLY = 0, 1, 2


def watermark_blocks(total_blocks: int, fraction: float) -> int:
    """Blocks an admission must leave free (vLLM V0: ``int(watermark * num_gpu_blocks)``)."""
    return int(fraction * total_blocks)


class Replica:
    def __init__(self, engine: Engine, label: str, cost: StepCostModel, spec: SchedulerSpec,
                 num_blocks: int, on_finish: Callable[[Request], None],
                 stats: ReplicaStats, *, index: int = 0, mode: int = 0) -> None:
        self.engine, self.label, self.cost, self.stats = engine, label, cost, stats
        self.index = index
        self.prefill_only = mode == MODE_PREFILL_ONLY
        self.decode_only = mode == MODE_DECODE_ONLY
        self.policy = spec.policy
        self.bs = spec.block_size_tokens
        self.max_seqs = spec.max_num_seqs
        self.token_budget = (spec.chunk_size_tokens if spec.policy is BatchPolicy.CHUNKED
                             else spec.max_batched_tokens)
        self.total_blocks = num_blocks
        self.used_blocks = 0
        self.watermark = watermark_blocks(num_blocks, spec.kv_watermark_fraction)
        self.on_finish = on_finish
        self.waiting: deque[Request] = deque()
        self.admitted: dict[int, Request] = {}  # admission order: the last one is preempted first
        self.prefilling: list[Request] = []  # admitted, prefill not finished (chunked keeps some)
        # decode set, kept lazily (see module docstring)
        self.num_decoding = 0
        self.decode_step = 0
        self._ctx_sum = 0  # sum of decoders' context at decode step _ctx_anchor
        self._ctx_anchor = 0
        self.phase_counts = [0] * self.bs
        self.finish_heap: list[tuple[int, int, Request]] = []
        self._admit_seq = 0
        # activity
        self.busy = False
        self.pending_schedule = False
        self.version = 0
        self.in_run = False
        self.run_start_s = self.run_base_s = self.run_growth_s = 0.0
        self.run_steps = 0
        # Decoders that sat through prefill-only steps since their last token, grouped by how
        # long: [stall_s, count], oldest group first (continuous policy only).
        self._stalls: list[list] = []
        # router bookkeeping
        self.outstanding_requests = 0
        self.outstanding_tokens = 0

    # --- public ------------------------------------------------------------------------
    def enqueue(self, req: Request) -> None:
        req.gen_enqueue_s = self.engine.now_s
        self.waiting.append(req)
        self.outstanding_requests += 1
        self.outstanding_tokens += req.prompt_tokens + req.output_tokens
        if not self.busy:
            self._request_schedule()
        elif self.in_run and self.policy is not BatchPolicy.STATIC and len(self.waiting) == 1 \
                and len(self.admitted) < self.max_seqs:
            self._interrupt_run()

    @property
    def num_running(self) -> int:
        return len(self.admitted)

    def context_of(self, req: Request) -> int:
        """KV tokens a decoding request holds now."""
        return req.context + (self.decode_step - req.step_base)

    def blocks_in_use_check(self) -> int:
        """Recount KV blocks from the requests (for invariant tests)."""
        total = 0
        for req in self.admitted.values():
            if req.computed >= req.prefill_target:
                total += self._held_blocks(req, self.context_of(req))
            else:  # the whole prompt's blocks are reserved at admission
                total += self._prompt_blocks(req)
        return total

    def _held_blocks(self, req: Request, context: int) -> int:
        if req.samples == 1:
            return -(-context // self.bs)
        shared = req.join_context // self.bs
        return shared + req.samples * (-(-context // self.bs) - shared)

    def _prompt_blocks(self, req: Request) -> int:
        """Blocks admission reserves: the whole prompt (with cached prefix) and the fork copies."""
        return -(-req.prefill_target // self.bs) + self._fork_blocks(req)

    def _fork_blocks(self, req: Request) -> int:
        """Extra blocks N samples need when they fork: a copy of the partial last block each."""
        if req.samples == 1 or self.prefill_only or req.prefill_target % self.bs == 0:
            return 0
        return req.samples - 1

    # --- scheduling --------------------------------------------------------------------
    def _request_schedule(self) -> None:
        if not self.pending_schedule:
            self.pending_schedule = True
            self.engine.schedule(self.engine.now_s, self._schedule, priority=PRIORITY_SCHEDULE)

    def _schedule(self) -> None:
        self.pending_schedule = False
        if not self.busy:
            self._start_next_step()

    def _start_next_step(self) -> None:
        if self.decode_only and self.waiting:
            self._admit_decoders()
        policy = self.policy
        decoders = self.num_decoding
        if policy is BatchPolicy.STATIC:
            if self.admitted:
                self._start_decode_run()
            else:
                self._start_step(self._admit_whole(self.token_budget), with_decode=False)
            return
        if policy is BatchPolicy.CONTINUOUS:
            chunks = self._admit_whole(self.token_budget)
            if chunks:
                self._start_step(chunks, with_decode=False)
            elif decoders:
                self._start_decode_run()
            return
        # MIXED and CHUNKED put every decode in the step, then prompt tokens in what budget is left.
        if decoders and not self._reserve_decode_blocks(1):
            return self._start_next_step()  # a preemption changed the batch; plan again
        if policy is BatchPolicy.MIXED:
            chunks = self._admit_whole(self.token_budget - self.num_decoding)
        else:
            chunks = self._admit_chunks(self.token_budget - self.num_decoding)
        if chunks:
            self._start_step(chunks, with_decode=self.num_decoding > 0)
        elif self.num_decoding:
            self._start_decode_run()

    def _admit_whole(self, budget: int) -> list[tuple[Request, int]]:
        """FCFS admission of whole prompts; a prompt longer than the budget may run alone."""
        chunks: list[tuple[Request, int]] = []
        free = self.total_blocks - self.used_blocks - self._decode_blocks_needed(1) - self.watermark
        while self.waiting and len(self.admitted) < self.max_seqs:
            req = self.waiting[0]
            tokens = req.prefill_target - req.computed  # cached prefix tokens need no compute
            need = -(-req.prefill_target // self.bs)
            if req.samples > 1:
                need += self._fork_blocks(req)
            if need > free or (tokens > budget and chunks):
                break
            self.waiting.popleft()
            free -= need
            budget -= tokens
            self._admit(req)
            self.used_blocks += need
            chunks.append((req, tokens))
            if budget <= 0:
                break
        return chunks

    def _admit_chunks(self, budget: int) -> list[tuple[Request, int]]:
        """Chunked prefill: continue partial prefills first, then admit new prompts in chunks.
        Admission reserves the whole prompt's blocks (module docstring), so chunks allocate none."""
        chunks: list[tuple[Request, int]] = []
        for req in self.prefilling:
            if budget <= 0:
                break
            chunk = min(req.prefill_target - req.computed, budget)
            budget -= chunk
            chunks.append((req, chunk))
        free = self.total_blocks - self.used_blocks - self._decode_blocks_needed(1) - self.watermark
        while budget > 0 and self.waiting and len(self.admitted) < self.max_seqs:
            req = self.waiting[0]
            need = self._prompt_blocks(req)
            chunk = min(req.prefill_target - req.computed, budget)  # cached tokens: no compute
            if need > free or chunk <= 0:
                break
            self.waiting.popleft()
            self._admit(req)
            self.prefilling.append(req)
            free -= need
            budget -= chunk
            self.used_blocks += need
            chunks.append((req, chunk))
        return chunks

    def _admit(self, req: Request) -> None:
        self._admit_seq += 1
        req.admit_seq = self._admit_seq
        self.admitted[self._admit_seq] = req
        if req.stage_start_s < 0:
            req.stage_start_s = self.engine.now_s
            if req.gen_start_s < 0:
                req.gen_start_s = req.stage_start_s

    # --- one explicit step (prefill, or prefill + decode) -------------------------------
    def _start_step(self, chunks: list[tuple[Request, int]], *, with_decode: bool) -> None:
        if not chunks:
            return
        tokens = pairs = context = 0
        for req, chunk in chunks:
            tokens += chunk
            pairs += chunk * (req.computed + (chunk + 1) / 2)
            context += req.computed + chunk
        decoders = self.num_decoding if with_decode else 0
        shape = StepShape(prefill_tokens=tokens, prefill_attention_pairs=pairs,
                          prefill_context_tokens=context, num_prefill_seqs=len(chunks),
                          num_decode_seqs=decoders,
                          decode_context_tokens=self._context_sum() if decoders else 0)
        duration = self.cost.step_time_s(shape)
        if decoders:
            self.used_blocks += self._decode_blocks_needed(1)
            self._record_itl(duration, 0.0, 1, decoders)
        elif self.num_decoding:  # decoders wait through a prefill-only step
            stalled = 0
            for group in self._stalls:
                group[0] += duration
                stalled += group[1]
            if self.num_decoding > stalled:  # joined since the last prefill-only step
                self._stalls.append([duration, self.num_decoding - stalled])
        self._begin(duration, "prefill" if not decoders else "mixed", len(chunks) + decoders)
        self.engine.schedule(self.engine.now_s + duration, self._end_step, chunks,
                             decoders > 0, priority=PRIORITY_COMPLETION)

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

    def _continue(self) -> None:
        """Plan the next step now, unless more events are due at this same instant (arrivals,
        other completions): then plan after them, so a batch formed at t sees everything at t."""
        if self.engine.next_time_s() <= self.engine.now_s:
            self._request_schedule()
        else:
            self._start_next_step()

    def _end_step(self, chunks: list[tuple[Request, int]], with_decode: bool) -> None:
        self.busy = False
        if with_decode:
            self.decode_step += 1
            self._pop_finished()
        now = self.engine.now_s
        for req, chunk in chunks:
            req.computed += chunk
            if req.computed < req.prefill_target:
                continue
            if self.policy is BatchPolicy.CHUNKED:
                self.prefilling.remove(req)
            if req.first_token_s < 0:
                req.first_token_s = now
            elif req.preempted_token_s >= 0:  # the gap a preemption opened is one ITL sample
                self.stats.record_itl_run(now - req.preempted_token_s, 0.0, 1, req.samples)
                req.preempted_token_s = -1.0
            req.generated += 1
            req.context = req.prefill_target
            req.join_context = req.context
            if self.prefill_only:  # hand off: the pipeline moves the KV to a decode pool
                self._finish(req, req.context)
            elif req.generated >= req.output_tokens:
                self._finish(req, req.context)
            else:
                self._join_decode(req)
        self._continue()

    # --- decode runs in closed form ----------------------------------------------------
    def _start_decode_run(self) -> None:
        while True:
            kv_steps = self._steps_until_kv_full()
            if kv_steps > 0:
                break
            self._preempt_last()
            if not self.num_decoding:
                return self._start_next_step()
        self._drop_stale_finishes()
        steps = min(kv_steps, self.finish_heap[0][0] - self.decode_step)
        context = self._context_sum()
        base, slope = self.cost.decode_coefficients(self.num_decoding, context)
        self.run_base_s = base + slope * context
        self.run_growth_s = slope * self.num_decoding
        self.run_steps = steps
        self.run_start_s = self.engine.now_s
        self.in_run = True
        self._begin(0.0, "decode", self.num_decoding)
        self.engine.schedule(self._run_time(steps), self._end_run, self.version,
                             priority=PRIORITY_COMPLETION)

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
        m = max(1, min(self.run_steps, math.ceil(steps)))
        while m > 1 and self._run_time(m - 1) >= now:
            m -= 1
        while m < self.run_steps and self._run_time(m) < now:
            m += 1
        if m < self.run_steps:
            self.run_steps = m
            self.version += 1
            self.engine.schedule(self._run_time(m), self._end_run, self.version,
                                 priority=PRIORITY_COMPLETION)

    def _end_run(self, version: int) -> None:
        if version != self.version:
            return  # superseded by an interrupt
        steps = self.run_steps
        duration = self.engine.now_s - self.run_start_s
        self.stats.busy_s += duration
        self._record_itl(self.run_base_s, self.run_growth_s, steps, self.num_decoding)
        self.stats.decode_steps += steps
        if self.stats.spans is not None:
            self.stats.add_span(self.label, f"decode x{steps}", self.run_start_s, duration,
                                self.num_decoding)
        self.used_blocks += self._new_blocks(self.decode_step, steps)
        self.decode_step += steps
        self.busy = self.in_run = False
        self._pop_finished()
        self._continue()

    # --- decode-set bookkeeping ----------------------------------------------------------
    def _context_sum(self) -> int:
        return self._ctx_sum + self.num_decoding * (self.decode_step - self._ctx_anchor)

    def _reanchor(self) -> None:
        self._ctx_sum = self._context_sum()
        self._ctx_anchor = self.decode_step

    def _admit_decoders(self) -> None:
        """Decode-only: admit requests whose prompt KV arrived straight into the decode set."""
        free = self.total_blocks - self.used_blocks - self._decode_blocks_needed(1) - self.watermark
        waiting = self.waiting
        while waiting and len(self.admitted) < self.max_seqs:
            req = waiting[0]
            if req.computed < req.prefill_target:
                break  # preempted here earlier: it is prefilled again like any request
            req.join_context = req.prefill_target
            need = -(-req.prefill_target // self.bs) + self._fork_blocks(req)
            if need > free:
                break
            waiting.popleft()
            free -= need
            self.used_blocks += need
            self._admit(req)
            req.context = req.prefill_target
            if req.generated >= req.output_tokens:
                self._finish(req, req.context)
            else:
                self._join_decode(req)

    def _join_decode(self, req: Request) -> None:
        self._reanchor()
        req.step_base = self.decode_step
        req.gen_base = req.generated
        req.phase = (req.context - self.decode_step) % self.bs
        n = req.samples
        self.phase_counts[req.phase] += n
        self.num_decoding += n
        self._ctx_sum += req.context * n
        heapq.heappush(self.finish_heap, (self.decode_step + req.output_tokens - req.generated,
                                          req.admit_seq, req))

    def _leave_decode(self, req: Request) -> int:
        """Remove a decoding request; return its context (KV tokens held)."""
        self._reanchor()
        context = self.context_of(req)
        req.generated = req.gen_base + (self.decode_step - req.step_base)
        n = req.samples
        self.phase_counts[req.phase] -= n
        self.num_decoding -= n
        self._ctx_sum -= context * n
        return context

    def _pop_finished(self) -> None:
        heap = self.finish_heap
        while heap and heap[0][0] <= self.decode_step:
            _, seq, req = heapq.heappop(heap)
            if self.admitted.get(seq) is req:  # else a stale entry of a preempted request
                self._finish(req, self._leave_decode(req))

    def _drop_stale_finishes(self) -> None:
        heap = self.finish_heap
        while heap and self.admitted.get(heap[0][1]) is not heap[0][2]:
            heapq.heappop(heap)

    def _finish(self, req: Request, context: int) -> None:
        del self.admitted[req.admit_seq]
        self.used_blocks -= (-(-context // self.bs) if req.samples == 1 or self.prefill_only
                             else self._held_blocks(req, context))
        req.finish_s = self.engine.now_s
        self.outstanding_requests -= 1
        self.outstanding_tokens -= req.prompt_tokens + req.output_tokens
        self.on_finish(req)

    # --- KV blocks -------------------------------------------------------------------------
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
        return self._new_blocks(self.decode_step, steps) if self.num_decoding else 0

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

    def _reserve_decode_blocks(self, steps: int) -> bool:
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

    # --- activity ----------------------------------------------------------------------------
    def _begin(self, duration: float, name: str, batch: int) -> None:
        self.busy = True
        self.version += 1
        self.stats.steps += 1
        if duration:
            self.stats.busy_s += duration
            if self.stats.spans is not None:
                self.stats.add_span(self.label, name, self.engine.now_s, duration, batch)
