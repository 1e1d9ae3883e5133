"""Requests that can never be served are rejected with a reason — never silently dropped —
and the ones just inside each limit are served."""

from __future__ import annotations

import pytest

from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
    LengthKind,
    LengthSpec,
    TraceRecords,
    simulate,
)

BLOCKS, BLOCK = 50, 16  # KV capacity of the replica: 800 tokens


def trace_config(b, pool, rows):
    """Requests (prompt, output), one every 10 ms."""
    records = TraceRecords(arrival_s=tuple(0.01 * i for i in range(len(rows))),
                           prompt_tokens=tuple(p for p, _ in rows),
                           output_tokens=tuple(o for _, o in rows))
    trace_len = LengthSpec(kind=LengthKind.TRACE)
    return b.make_config(pool=pool, num_requests=len(rows),
                         arrival=ArrivalSpec(kind=ArrivalKind.TRACE), prompt=trace_len,
                         output=trace_len, trace=records)


def check_outcome(result, expected):
    """expected[i] is None (served) or the rejection reason of request i."""
    s = result.summary
    rows = result.requests
    assert [r["id"] for r in rows] == list(range(len(expected)))
    assert s["requests_completed"] + s["requests_rejected"] == len(expected)
    reasons = {}
    for row, want in zip(rows, expected):
        if want is None:
            assert row["status"] == "completed" and row["drop_reason"] is None, row
            assert row["finish_s"] >= row["first_token_s"] >= row["arrival_s"]
        else:
            assert row["status"] == "rejected" and row["drop_reason"] == want, row
            assert row["finish_s"] == row["arrival_s"]  # rejected on arrival, not after queueing
            assert row["ttft_ms"] is None and row["e2e_ms"] is None
            reasons[want] = reasons.get(want, 0) + 1
    assert s["rejection_reasons"] == dict(sorted(reasons.items()))
    assert s["requests_rejected"] == sum(reasons.values())


@pytest.mark.parametrize("policy", list(BatchPolicy), ids=lambda p: p.value)
def test_prompt_beyond_kv_capacity_is_rejected(sim_build, policy):
    pool = sim_build.make_pool(policy=policy, block_size_tokens=BLOCK,
                               gpu_memory_utilization=sim_build.utilization_for_blocks(BLOCKS))
    kv = "prompt_exceeds_kv_capacity"
    rows = [(100, 20),     # fine
            (900, 5),      # the prompt alone is longer than the whole cache
            (700, 101),    # longest context 800 tokens == capacity: served, filling every block
            (700, 102),    # 801 tokens: can never finish
            (1, 800),      # 800 tokens of context again, mostly generated
            (50, 30)]
    result = simulate(trace_config(sim_build, pool, rows), seed=0)
    check_outcome(result, [None, kv, None, kv, None, None])


@pytest.mark.parametrize("policy", list(BatchPolicy), ids=lambda p: p.value)
def test_context_beyond_model_limit_is_rejected(sim_build, policy):
    model = sim_build.llama_8b(max_context_tokens=4096)
    pool = sim_build.make_pool(policy=policy, model=model)
    ctx = "context_exceeds_model_max_context"
    rows = [(4000, 96), (4000, 97), (5000, 1), (10, 4086), (10, 4087)]
    result = simulate(trace_config(sim_build, pool, rows), seed=0)
    check_outcome(result, [None, ctx, ctx, None, ctx])


@pytest.mark.parametrize("policy,served", [(BatchPolicy.STATIC, False),
                                           (BatchPolicy.CONTINUOUS, False),
                                           (BatchPolicy.MIXED, False),
                                           (BatchPolicy.CHUNKED, True)],
                         ids=lambda v: v.value if isinstance(v, BatchPolicy) else None)
def test_prompt_beyond_batched_tokens(sim_build, policy, served):
    """Whole-prompt policies must fit a prompt in one step's token budget; chunked prefill splits
    it over steps and serves it."""
    pool = sim_build.make_pool(policy=policy, max_batched_tokens=2048, chunk_size_tokens=2048)
    budget = "prompt_exceeds_max_batched_tokens"
    rows = [(2048, 10), (2049, 10), (6000, 50), (100, 10)]
    result = simulate(trace_config(sim_build, pool, rows), seed=0)
    check_outcome(result, [None, None if served else budget, None if served else budget, None])


def test_rejections_under_load_are_counted_not_lost(sim_build):
    """A random workload with a long tail of prompts: every request ends completed or rejected,
    and the rejected ones are exactly those over the batch-token budget."""
    pool = sim_build.make_pool(num_replicas=2, max_batched_tokens=2048)
    cfg = sim_build.make_config(pool=pool, num_requests=500, arrival=sim_build.poisson(20.0),
                                prompt=LengthSpec(kind=LengthKind.LOGNORMAL, mean=900, std=900),
                                output=sim_build.uniform(1, 100))
    result = simulate(cfg, seed=4)
    s = result.summary
    too_long = [r["id"] for r in result.requests if r["prompt_tokens"] > 2048]
    assert too_long, "the workload should contain prompts over the budget"
    assert s["rejection_reasons"] == {"prompt_exceeds_max_batched_tokens": len(too_long)}
    assert s["requests_completed"] + s["requests_rejected"] == 500
    assert [r["id"] for r in result.requests if r["status"] == "rejected"] == too_long
