"""What a batching strategy may read and call on a replica: the ``ReplicaView`` protocol.

``sim.scheduling.replica.Replica`` (with its ``DecodeRuns`` mixin) provides every member under
the same name, as a plain attribute or method: a strategy calls the replica directly, with no
wrapper in between (``tests/layout`` checks that the replica has every member and that no policy
touches a private name of its replica). A strategy is called once per step boundary, on an idle
replica (``BatchingStrategy.next_step``); it

* may admit waiting requests: pop them from the head of ``waiting`` in order, then ``admit`` each
  and add its blocks to ``used_blocks`` (whole prompt + ``fork_blocks``; admission is vLLM V0's
  rule, ``sim.scheduling.replica``'s docstring). A strategy that inlines ``admit`` does exactly
  what it does (``chunked.admit_chunks``: ``last_admit_seq``, ``admitted``, the start times);
* must then start at most one thing: ``start_step`` (an explicit step), ``start_decode_run``,
  or, after ``reserve_decode_blocks`` preempted (the batch changed), ``start_next_step``; or
  nothing, leaving the replica idle (no work, or nothing fits);
* must not schedule events, touch the engine's queue or change the decode set itself: it sees
  only the clock (``engine.now_s``), and the primitives above do the rest.

The KV counters obey ``0 <= used_blocks <= total_blocks``; ``watermark`` blocks stay free after
an admission (decoders may use them). ``num_decoding`` counts sequences (a best-of-N request
counts N); ``admitted`` holds every running request, prefilling or decoding, keyed by its
admission number, in admission order (the last one is preempted first).
"""

from __future__ import annotations

from collections import deque
from typing import Protocol, runtime_checkable

from sim.request import Request


class Clock(Protocol):
    now_s: float  # the simulated time of the current event


@runtime_checkable
class ReplicaView(Protocol):
    # --- read only ---------------------------------------------------------------------------
    engine: Clock  # a strategy reads the time, never schedules
    max_seqs: int  # sequence budget: at most this many admitted requests
    token_budget: int  # this replica's strategy's ``token_budget(spec)``
    bs: int  # KV block size, tokens
    total_blocks: int  # KV blocks of the replica
    watermark: int  # blocks an admission must leave free
    reserve_full: bool  # admission reserves prompt + output blocks ('full_sequence' reservation)
    num_decoding: int  # decoding sequences (best-of-N samples each count)
    decode_step: int  # decode steps so far; with ``phase_counts``, the next step's new blocks
    phase_counts: list[int]  # decoders by (context - decode_step) mod bs: index -decode_step % bs
    # --- mutated by admission (in place, or += by the admitted blocks) ---------------------------
    waiting: deque[Request]  # FCFS queue; admission pops its head
    admitted: dict[int, Request]  # running requests by admission number, in admission order
    prefilling: list[Request]  # admitted, prompt not yet computed (only chunked leaves some)
    used_blocks: int  # KV blocks held or reserved; admission adds the prompt's
    last_admit_seq: int  # the admission number last handed out (``admit`` increments it)
    # 'full_sequence' reservation only: the final (prompt + output) blocks of every admitted
    # request; ``admit`` adds a request's ``full_blocks`` (an inlined admit adds them itself)
    reserved_full_blocks: int

    def admit(self, req: Request) -> None:
        """Record ``req`` (just popped from ``waiting``) as running: its admission number, its
        entry in ``admitted``, its start times. Blocks are the caller's (``used_blocks``)."""
        ...

    def full_blocks(self, req: Request) -> int:
        """Blocks ``req`` holds once every output token is generated (all its samples)."""
        ...

    def fork_blocks(self, req: Request) -> int:
        """Extra blocks ``req``'s best-of-N samples take when they fork (0 for one sample)."""
        ...

    def next_step_blocks(self) -> int:
        """New blocks the decoders' next step allocates (0 with no decoders)."""
        ...

    def reserve_decode_blocks(self, steps: int) -> bool:
        """Make room for the decoders' next ``steps`` steps, preempting the most recently
        admitted requests as needed; False if it preempted (then plan again)."""
        ...

    def start_step(self, chunks: list[tuple[Request, int]], *, with_decode: bool) -> None:
        """Start one explicit step: each ``(request, tokens)`` prefills that many tokens, and
        every decoder advances one token too if ``with_decode``. No-op if ``chunks`` is empty."""
        ...

    def start_decode_run(self) -> None:
        """Start decode-only steps in closed form until the batch changes (a finish, a full KV
        cache, or an arrival that may join). Needs ``num_decoding > 0``."""
        ...

    def start_next_step(self) -> None:
        """Plan again from scratch (decode-only replicas admit arrived KV first), ending in the
        strategy's ``next_step``: for a strategy whose batch changed under it (a preemption)."""
        ...
