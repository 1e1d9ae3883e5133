"""Load-aware routing across colocated pools of different SKUs that serve one model.

Static weights cannot follow load, and a plain least-outstanding-tokens router treats an L40S
replica like a B200 one. The service router sends each request to the replica with the smallest
*expected drain time*: ``(outstanding tokens + this request's tokens) / replica speed``, where the
speed is the replica's decode throughput at a reference batch (``REFERENCE_BATCH`` sequences of
``REFERENCE_CONTEXT_TOKENS`` each) from its own cost model. A twice-as-fast replica so takes
about twice the work before a slower one gets the next request (the "speed- and load-aware"
rule of heterogeneous schedulers such as Helix and Splitwise's mixed pools). Ties go to the
first pool in config order, then the lowest replica index, so routing is deterministic.

A request that a pool can never serve (longer than its KV capacity or context) is only sent to
pools that can; when none can, the first pool rejects it with its reason.
"""

from __future__ import annotations

from sim.cost.base import StepShape

REFERENCE_BATCH = 32
REFERENCE_CONTEXT_TOKENS = 1024


def decode_tokens_per_s(pool) -> float:
    """One replica's decode throughput at the reference batch (tokens/s)."""
    batch = max(1, min(REFERENCE_BATCH, pool.spec.scheduler.max_num_seqs))
    step_s = pool.cost.step_time_s(StepShape(num_decode_seqs=batch,
                                             decode_context_tokens=batch * REFERENCE_CONTEXT_TOKENS))
    return batch / step_s


class ServiceRouter:
    """Routes one model's requests across several colocated LLM pools (``LLMPool``)."""

    def __init__(self, pools: list) -> None:
        self.pools = list(pools)
        self.speeds = [decode_tokens_per_s(p) for p in self.pools]
        self.speed_by_pool = dict(zip((p.spec.name for p in self.pools), self.speeds))

    def submit(self, req) -> None:
        work = req.prompt_tokens + req.output_tokens
        best_pool, best_replica, best_score = None, None, 0.0
        for pool, speed in zip(self.pools, self.speeds):
            if pool.drop_reason(req) is not None:
                continue
            for replica in pool.replicas:
                score = (replica.outstanding_tokens + work) / speed
                if best_pool is None or score < best_score:
                    best_pool, best_replica, best_score = pool, replica, score
        if best_pool is None:
            self.pools[0].submit_here(req)  # nobody can serve it: the first pool rejects it
            return
        req.replica = best_replica.index
        req.pinned = True  # submit_here must not let the pool's own router choose again
        req.served_pool = best_pool.spec.name  # visits, tokens and later rounds follow it
        best_pool.submit_here(req)
