"""One model replica: a waiting queue, a running batch, a paged KV cache and a cost model.

Vocabulary (after vLLM v1): every admitted request's computed tokens catch up with its prefill
target under a token budget, a sequence budget and a KV-block budget; decoding requests then
advance one token per decode step.

Layout: this module keeps the queues, admission bookkeeping, explicit (prefill or mixed) steps
and activity; the replica's batching policy (``sim.scheduling.policies``, a stateless strategy
object) decides at each step boundary which step runs next; the decode set and closed-form decode
runs, KV growth and preemption live in ``sim.scheduling.decode_runs`` (a mixin of ``Replica``).
What a policy may read and call is ``sim.scheduling.policies.contract.ReplicaView``: those
members are public here (the rest is the replica's own, behind a leading underscore).

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

from collections import deque
from collections.abc import Callable

from sim.config import SchedulerSpec
from sim.cost.base import StepCostModel, StepShape
from sim.engine import PRIORITY_COMPLETION, PRIORITY_SCHEDULE, Engine
from sim.hardware.memory import KV_RESERVE_FULL
from sim.metrics.collector import ReplicaStats
from sim.request import Request
from sim.scheduling.decode_runs import DecodeRuns
from sim.scheduling.policies.registry import strategy_for

MODE_COLOCATED, MODE_PREFILL_ONLY, MODE_DECODE_ONLY = 0, 1, 2
# decode-only replicas: when a handed-off request's first token reaches the client
# (``sim.pipeline.specs.FirstToken``): at the prefill's end, at admission, or after the next step
FIRST_AT_PREFILL, FIRST_AT_ADMIT, FIRST_AT_STEP = 0, 1, 2


def _stamp_first(req: Request, at_s: float) -> None:
    """The request's first token (if not sent yet) and its round's, at ``at_s``."""
    if req.first_token_s < 0:
        req.first_token_s = at_s
    if req.rich and req.round_first_s < 0:
        req.round_first_s = at_s


def watermark_blocks(total_blocks: int, fraction: float) -> int:
    """Blocks an admission must leave free (vLLM V0: ``int(watermark * num_gpu_blocks)``)."""
    return int(fraction * total_blocks)


def _shape_step_time(cost: StepCostModel) -> Callable[..., float]:
    """``step_time(prefill_tokens, pairs, prefill_context, prefill_seqs, decode_seqs,
    decode_context)`` for a cost model that only offers ``step_time_s(StepShape)``."""
    def step_time(tokens, pairs, context, prefill_seqs, decoders, decode_context) -> float:
        return cost.step_time_s(StepShape(
            prefill_tokens=tokens, prefill_attention_pairs=pairs, prefill_context_tokens=context,
            num_prefill_seqs=prefill_seqs, num_decode_seqs=decoders,
            decode_context_tokens=decode_context))
    return step_time


class Replica(DecodeRuns):
    def __init__(self, engine: Engine, label: str, cost: StepCostModel, spec: SchedulerSpec,
                 num_blocks: int, on_finish: Callable[[Request], None],
                 stats: ReplicaStats, *, index: int = 0, mode: int = 0,
                 first_token: int = FIRST_AT_STEP) -> None:
        self.engine, self.label, self.cost, self.stats = engine, label, cost, stats
        self.index = index
        self.prefill_only = mode == MODE_PREFILL_ONLY
        self.decode_only = mode == MODE_DECODE_ONLY
        self.first_token = first_token
        # admitted decoders whose first token comes with the next step (FIRST_AT_STEP)
        self.first_pending: list[Request] = []
        self.policy = spec.policy
        self.strategy = strategy_for(spec.policy)  # decides each next step (``next_step``)
        self.interruptible = self.strategy.interruptible  # may an arrival cut a decode run short
        self.bs = spec.block_size_tokens
        self.max_seqs = spec.max_num_seqs
        self.token_budget = self.strategy.token_budget(spec)
        # the cost model's step time from the shape's fields (no StepShape on the hot path)
        self._step_time = getattr(cost, "step_time", None) or _shape_step_time(cost)
        self.total_blocks = num_blocks
        self.used_blocks = 0
        self.watermark = watermark_blocks(num_blocks, spec.kv_watermark_fraction)
        # TensorRT-LLM's GUARANTEED_NO_EVICT: admission reserves every request's final blocks
        # (``policies.admission``), summed here. Colocated only: a prefill-only replica holds a
        # prompt until its first token, a decode-only one admits by ``_admit_decoders``.
        self.reserve_full = spec.kv_reservation == KV_RESERVE_FULL and mode == MODE_COLOCATED
        self.reserved_full_blocks = 0
        self.on_finish = on_finish
        # called once a request with a shared prefix has computed its prompt (the prefix KV can
        # be stored and shared from then on, not only when the request finishes); None: no store
        self.on_prefilled: Callable[[Request], None] | None = None
        self.waiting: deque[Request] = deque()
        self.admitted: dict[int, Request] = {}  # admission order: the last one is preempted first
        self.prefilling: list[Request] = []  # admitted, prefill not finished (chunked keeps some)
        self.last_admit_seq = 0
        self._init_decode_set(self.bs)
        # activity
        self.busy = False
        self.pending_schedule = False
        self.version = 0
        # a stage colocated on this replica's GPUs (``time_share``): device time it took while this
        # replica was busy (owed by the next step), and when its batch on an idle device ends
        self.shared = False
        self.shared_owed_s = 0.0
        self.shared_until_s = 0.0
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
        elif self.in_run and self.interruptible and len(self.waiting) == 1 \
                and len(self.admitted) < self.max_seqs:
            self._interrupt_run()

    def time_share(self, duration_s: float) -> None:
        """A colocated stage (``sim.pipeline.colocation``) runs ``duration_s`` on this replica's
        devices from now. If the replica is busy, its next step starts that much later (a decode
        run is cut at its next step boundary so the stall lands there); if idle, a step starting
        before the stage's batch ends waits for it."""
        self.shared = True
        if self.busy:
            self.shared_owed_s += duration_s
            if self.in_run:
                self._interrupt_run()
        else:
            now = self.engine.now_s
            self.shared_until_s = max(self.shared_until_s, now) + duration_s

    def shared_stall_s(self) -> float:
        """The stall the step starting now owes to colocated stages (and clear it)."""
        stall = self.shared_owed_s + max(0.0, self.shared_until_s - self.engine.now_s)
        self.shared_owed_s = 0.0
        self.shared_until_s = 0.0
        return stall

    def stall_decoders(self, duration_s: float) -> None:
        """The decoders wait ``duration_s`` before their next token (a prefill-only step, a
        colocated stage's batch): one stall group per set of decoders that waited alike."""
        stalled = 0
        for group in self._stalls:
            group[0] += duration_s
            stalled += group[1]
        if self.num_decoding > stalled:  # joined since the last stall
            self._stalls.append([duration_s, self.num_decoding - stalled])

    @property
    def num_running(self) -> int:
        return len(self.admitted)

    def blocks_in_use_check(self) -> int:
        """Recount KV blocks from the requests (for invariant tests)."""
        total = 0
        for req in self.admitted.values():
            if req.computed >= req.prefill_target:
                total += self._held_blocks(req, self.context_of(req))
            else:  # the whole prompt's blocks are reserved at admission
                total += self._prompt_blocks(req)
        return total

    def _prompt_blocks(self, req: Request) -> int:
        """Blocks admission reserves: the whole prompt (with cached prefix) and the fork copies."""
        return -(-req.prefill_target // self.bs) + self.fork_blocks(req)

    def full_blocks(self, req: Request) -> int:
        """Blocks of ``req``'s prompt and all its output tokens, each sample its own copy (an
        upper bound of ``_held_blocks`` at the last token: what a no-evict scheduler reserves)."""
        return -(-(req.prompt_tokens + req.output_tokens) // self.bs) * req.samples

    def fork_blocks(self, req: Request) -> int:
        """Extra blocks N samples need when they fork: a copy of the partial last block each."""
        if req.samples == 1 or self.prefill_only or req.prefill_target % self.bs == 0:
            return 0
        return req.samples - 1

    # --- scheduling --------------------------------------------------------------------
    def _request_schedule(self) -> None:
        if not self.pending_schedule:
            self.pending_schedule = True
            engine = self.engine
            engine.push(engine.now_s, PRIORITY_SCHEDULE, self._schedule, ())

    def _schedule(self) -> None:
        self.pending_schedule = False
        if not self.busy:
            self.start_next_step()

    def start_next_step(self) -> None:
        """Plan the next step from scratch (``ReplicaView``): decode-only replicas first admit
        the requests whose KV arrived, then the strategy decides."""
        if self.decode_only and self.waiting:
            self._admit_decoders()
        self.strategy.next_step(self)

    def admit(self, req: Request) -> None:
        """Record ``req``, just popped from ``waiting``, as running (``ReplicaView``); the
        caller reserves its blocks."""
        self.last_admit_seq += 1
        req.admit_seq = self.last_admit_seq
        self.admitted[self.last_admit_seq] = req
        if self.reserve_full:
            self.reserved_full_blocks += self.full_blocks(req)
        if req.stage_start_s < 0:
            req.stage_start_s = self.engine.now_s
            if req.gen_start_s < 0:
                req.gen_start_s = req.stage_start_s

    def _admit_decoders(self) -> None:
        """Decode-only: admit requests whose prompt KV arrived straight into the decode set."""
        free = self.total_blocks - self.used_blocks - self.next_step_blocks() - self.watermark
        waiting = self.waiting
        while waiting and len(self.admitted) < self.max_seqs:
            req = waiting[0]
            if req.computed < req.prefill_target:
                break  # preempted here earlier: it is prefilled again like any request
            # the round's first token is the client's to receive from this worker (the run took
            # back the prefill's stamp: sim.pipeline.flow, hand-off)
            first = req.round_first_s < 0 if req.rich else req.first_token_s < 0
            # FIRST_AT_STEP: this worker recomputes the last prompt token and samples the first
            # token itself (the prefill's is not sent): it holds the prompt's KV but that token's,
            # and decodes every output token, the first at the end of its next step
            resample = first and self.first_token == FIRST_AT_STEP and req.generated == 1
            context = req.prefill_target - 1 if resample else req.prefill_target
            req.join_context = context
            need = self._held_blocks(req, context)
            if need > free:
                break
            waiting.popleft()
            free -= need
            self.used_blocks += need
            self.admit(req)
            req.context = context
            if req.generated >= req.output_tokens:
                self._finish(req, req.context)
                continue
            if resample:
                req.generated = 0
                self.first_pending.append(req)
            elif first and self.first_token == FIRST_AT_ADMIT:
                _stamp_first(req, self.engine.now_s)
            self._join_decode(req)

    def stamp_first_tokens(self, end_s: float) -> None:
        """The step ending at ``end_s`` gives the pending decoders their first token (those
        preempted meanwhile are prefilled again here and get it from that prefill)."""
        for req in self.first_pending:
            if self.admitted.get(req.admit_seq) is req:
                _stamp_first(req, end_s)
        self.first_pending.clear()

    # --- one explicit step (prefill, or prefill + decode) -------------------------------
    def start_step(self, chunks: list[tuple[Request, int]], *, with_decode: bool) -> None:
        """One explicit step: each ``(request, tokens)`` prefills that many tokens, plus one token
        per decoder if ``with_decode`` (``ReplicaView``)."""
        if not chunks:
            return
        if len(chunks) == 1:  # the common case, without the loop (0 + x is x: the same sums)
            req, tokens = chunks[0]
            computed = req.computed
            pairs = tokens * (computed + (tokens + 1) / 2)
            context = computed + tokens
        else:
            tokens = pairs = context = 0
            for req, chunk in chunks:
                tokens += chunk
                pairs += chunk * (req.computed + (chunk + 1) / 2)
                context += req.computed + chunk
        num_decoding = self.num_decoding
        stall = self.shared_stall_s() if self.shared else 0.0
        if with_decode and num_decoding:
            decode_context = self._ctx_sum + num_decoding * (self.decode_step - self._ctx_anchor)
            duration = self._step_time(tokens, pairs, context, len(chunks), num_decoding,
                                       decode_context) + stall
            if self.first_pending:
                self.stamp_first_tokens(self.engine.now_s + duration)
            self.used_blocks += self.phase_counts[-self.decode_step % self.bs]
            if self._stalls:
                self._record_itl(duration, 0.0, 1, num_decoding)
            else:
                self.stats.itl_runs.extend((duration, 0.0, 1, num_decoding))
            decoders = num_decoding
        else:
            decoders = 0
            duration = self._step_time(tokens, pairs, context, len(chunks), 0, 0) + stall
            if num_decoding:  # decoders wait through a prefill-only step
                self.stall_decoders(duration)
        stats = self.stats
        if stats.spans is None:  # ``_begin``, inlined
            self.busy = True
            self.version += 1
            stats.steps += 1
            stats.busy_s += duration
        else:
            self._begin(duration, "prefill" if not decoders else "mixed", len(chunks) + decoders)
        engine = self.engine
        engine.push(engine.now_s + duration, PRIORITY_COMPLETION, self._end_step,
                    (chunks, decoders > 0))

    def _continue(self) -> None:
        """Plan the next step now, unless more events are due at this same instant (arrivals,
        other completions): then plan after them, so a batch formed at t sees everything at t."""
        engine = self.engine
        if engine.next_time_s() <= engine.now_s:
            self._request_schedule()
        elif self.decode_only and self.waiting:
            self.start_next_step()
        else:
            self.strategy.next_step(self)  # ``start_next_step``, inlined

    def _end_step(self, chunks: list[tuple[Request, int]], with_decode: bool) -> None:
        self.busy = False
        if with_decode:
            self.decode_step += 1
            heap = self.finish_heap
            if heap and heap[0][0] <= self.decode_step:
                self._pop_finished()
        engine = self.engine
        now = engine.now_s
        for req, chunk in chunks:
            req.computed += chunk
            if req.computed < req.prefill_target:
                continue
            if self.prefilling:  # a chunked prefill is done (only chunked admits into it)
                self.prefilling.remove(req)
            if req.first_token_s < 0:
                req.first_token_s = now
                if self.on_prefilled is not None and (req.prefix_id >= 0 or req.store_id >= 0):
                    self.on_prefilled(req)
            elif req.preempted_token_s >= 0:  # the gap a preemption opened is one ITL sample
                self.stats.record_itl_run(now - req.preempted_token_s, 0.0, 1, req.samples)
                req.preempted_token_s = -1.0
            if req.rich and req.round_first_s < 0:  # a reasoning round's first token
                req.round_first_s = now
            req.generated += 1
            req.context = req.prefill_target
            req.join_context = req.context
            if self.prefill_only:  # hand off: the pipeline moves the KV to a decode pool
                self._finish(req, req.context)
            elif req.generated >= req.output_tokens:
                self._finish(req, req.context)
            else:
                self._join_decode(req)
        if engine.next_time_s() <= now:  # ``_continue``, inlined
            self._request_schedule()
        elif self.decode_only and self.waiting:
            self.start_next_step()
        else:
            self.strategy.next_step(self)

    def _finish(self, req: Request, context: int) -> None:
        del self.admitted[req.admit_seq]
        if self.reserve_full:
            self.reserved_full_blocks -= self.full_blocks(req)
        self.used_blocks -= (-(-context // self.bs) if req.samples == 1 or self.prefill_only
                             else self._held_blocks(req, context))
        req.finish_s = self.engine.now_s
        self.outstanding_requests -= 1
        self.outstanding_tokens -= req.prompt_tokens + req.output_tokens
        self.on_finish(req)

    # --- activity ----------------------------------------------------------------------------
    def _begin(self, duration: float, name: str, batch: int) -> None:
        self.busy = True
        self.version += 1
        self.stats.steps += 1
        if self.stats.spans is not None:  # trace recording on: counter tracks, then the span
            self.stats.add_counters(self.engine.now_s, self.used_blocks, self.total_blocks,
                                    len(self.waiting), batch)
            if duration:
                self.stats.add_span(self.label, name, self.engine.now_s, duration, batch)
        if duration:
            self.stats.busy_s += duration
