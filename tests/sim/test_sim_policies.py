"""Batch-policy behaviour, the ITL accounting identity, and event-tie semantics."""

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

SEED = 3


def run_policy(b, policy, *, arrival, prompt, output, num_requests=300, max_num_seqs=64,
               record_trace=False, seed=SEED):
    pool = b.make_pool(policy=policy, max_num_seqs=max_num_seqs, max_batched_tokens=8192,
                       chunk_size_tokens=512)
    cfg = b.make_config(pool=pool, num_requests=num_requests, arrival=arrival, prompt=prompt,
                        output=output, record_trace=record_trace)
    return simulate(cfg, seed=seed)


def test_chunked_prefill_cuts_p99_itl_vs_continuous(sim_build):
    """Long prompts arriving while others decode: continuous runs each prompt in a prefill-only
    step that stalls every decoder; chunked caps each step at 512 tokens."""
    kw = dict(arrival=sim_build.poisson(3.0), prompt=sim_build.uniform(2000, 6000),
              output=sim_build.uniform(100, 300))
    cont = run_policy(sim_build, BatchPolicy.CONTINUOUS, **kw).summary
    chunked = run_policy(sim_build, BatchPolicy.CHUNKED, **kw).summary
    assert cont["preemptions"] == chunked["preemptions"] == 0
    assert chunked["itl_ms"]["p99"] < 0.3 * cont["itl_ms"]["p99"], (chunked["itl_ms"], cont["itl_ms"])
    # and the usual price: time to first token is not better under chunking
    assert chunked["ttft_ms"]["mean"] > cont["ttft_ms"]["mean"]


def test_static_batching_has_higher_ttft_than_continuous(sim_build):
    kw = dict(arrival=sim_build.poisson(4.0), prompt=sim_build.uniform(50, 1000),
              output=sim_build.uniform(20, 300))
    static = run_policy(sim_build, BatchPolicy.STATIC, **kw).summary
    cont = run_policy(sim_build, BatchPolicy.CONTINUOUS, **kw).summary
    assert static["requests_completed"] == cont["requests_completed"] == 300
    assert static["ttft_ms"]["mean"] > 5 * cont["ttft_ms"]["mean"], (static["ttft_ms"], cont["ttft_ms"])


def _prefill_only_spans_with_decoders(result):
    """Prefill-only steps that started while some request was between its first token and its
    finish (i.e. decoding) on the single replica."""
    decoding = [(r["first_token_s"], r["finish_s"]) for r in result.requests
                if r["status"] == "completed" and r["output_tokens"] > 1]
    stalls = []
    for track, name, start, duration, _batch in result.spans:
        if name == "prefill" and any(first <= start < finish for first, finish in decoding):
            stalls.append((track, start, duration))
    return stalls


@pytest.mark.parametrize("policy,stalls_expected", [
    (BatchPolicy.CONTINUOUS, True), (BatchPolicy.MIXED, False), (BatchPolicy.CHUNKED, False),
    (BatchPolicy.PREFILL_FIRST, True)],
    ids=lambda v: v.value if isinstance(v, BatchPolicy) else str(v))
def test_prefill_only_steps_never_stall_decoders_under_mixed(sim_build, policy, stalls_expected):
    result = run_policy(sim_build, policy, arrival=sim_build.poisson(4.0),
                        prompt=sim_build.uniform(50, 3000), output=sim_build.uniform(20, 300),
                        num_requests=200, record_trace=True)
    spans = result.spans
    assert spans and any(name == "prefill" for _, name, *_ in spans)
    prefill_only = policy in (BatchPolicy.CONTINUOUS, BatchPolicy.PREFILL_FIRST)
    assert any(name == "mixed" for _, name, *_ in spans) is not prefill_only
    stalls = _prefill_only_spans_with_decoders(result)
    assert bool(stalls) is stalls_expected, stalls[:3]


def test_prefill_first_chunks_long_prompts_in_prefill_only_steps(sim_build):
    """SGLang's default schedule: prompts longer than the 512-token chunk are served (in chunks,
    where continuous would need them whole), every prefill step is prefill-only, and a new
    prompt never waits behind decode steps, so TTFT beats chunked's while TPOT pays for it."""
    kw = dict(arrival=sim_build.poisson(3.0), prompt=sim_build.uniform(2000, 6000),
              output=sim_build.uniform(100, 300), num_requests=150)
    first = run_policy(sim_build, BatchPolicy.PREFILL_FIRST, record_trace=True, **kw)
    chunked = run_policy(sim_build, BatchPolicy.CHUNKED, **kw).summary
    done = [r for r in first.requests if r["status"] == "completed"]
    assert len(done) == 150 and first.summary["requests_rejected"] == 0
    names = [name for _, name, *_ in first.spans]
    assert "mixed" not in names
    # at most 512 prompt tokens per step (a step may end one prompt and start the next)
    assert names.count("prefill") >= sum(r["prompt_tokens"] for r in done) / 512
    assert first.summary["ttft_ms"]["mean"] < chunked["ttft_ms"]["mean"]
    assert first.summary["tpot_ms"]["mean"] > chunked["tpot_ms"]["mean"]


def test_mixed_itl_tail_is_bounded_by_its_steps(sim_build):
    """Under mixed with short prompts every inter-token gap is one step that carries the decodes,
    so the ITL tail stays close to the per-request TPOT; continuous shows the prefill stalls."""
    kw = dict(arrival=sim_build.poisson(6.0), prompt=sim_build.uniform(20, 300),
              output=sim_build.uniform(50, 300))
    mixed = run_policy(sim_build, BatchPolicy.MIXED, **kw).summary
    cont = run_policy(sim_build, BatchPolicy.CONTINUOUS, **kw).summary
    assert mixed["itl_ms"]["p99"] < 1.5 * mixed["tpot_ms"]["p99"], (mixed["itl_ms"], mixed["tpot_ms"])
    assert mixed["itl_ms"]["p99"] < cont["itl_ms"]["p99"]


def test_max_load_throughput_rises_with_max_num_seqs(sim_build):
    throughput = []
    for seqs in (1, 4, 16, 64, 256):
        s = run_policy(sim_build, BatchPolicy.CONTINUOUS, arrival=sim_build.max_load(),
                       prompt=sim_build.uniform(100, 500), output=sim_build.uniform(100, 300),
                       num_requests=400, max_num_seqs=seqs).summary
        assert s["requests_completed"] == 400 and s["preemptions"] == 0
        throughput.append(s["output_tokens_per_s"])
    for lower, higher in zip(throughput, throughput[1:]):
        assert higher > 1.5 * lower, throughput


# --- inter-token latency accounting ---------------------------------------------------------


ITL_CASES = [pytest.param(p, id=p.value) for p in BatchPolicy]


@pytest.mark.parametrize("policy", ITL_CASES)
def test_itl_samples_account_for_every_decode_gap(sim_build, policy):
    """Without preemption, every token after the first is one ITL sample, and the samples add up
    to the time between first and last token: mean ITL == sum(finish - first) / sum(output - 1)."""
    result = run_policy(sim_build, policy, arrival=sim_build.poisson(12.0),
                        prompt=sim_build.uniform(20, 3000), output=sim_build.uniform(2, 300))
    assert result.summary["preemptions"] == 0
    rows = [r for r in result.requests if r["status"] == "completed"]
    gaps_s = sum(r["finish_s"] - r["first_token_s"] for r in rows)
    tokens = sum(r["output_tokens"] - 1 for r in rows)
    assert result.summary["itl_ms"]["mean"] == pytest.approx(gaps_s / tokens * 1e3, rel=1e-9)


def test_itl_counts_the_gap_a_preemption_causes(sim_build):
    """Same identity as above under KV pressure (mixed: no prefill-only stalls involved)."""
    pool = sim_build.make_pool(policy=BatchPolicy.MIXED, max_num_seqs=64,
                               gpu_memory_utilization=sim_build.utilization_for_blocks(120))
    cfg = sim_build.make_config(pool=pool, num_requests=80, arrival=sim_build.max_load(),
                                prompt=sim_build.uniform(16, 300), output=sim_build.uniform(200, 1200))
    result = simulate(cfg, seed=7)
    assert result.summary["preemptions"] > 0
    rows = result.requests
    gaps_s = sum(r["finish_s"] - r["first_token_s"] for r in rows)
    tokens = sum(r["output_tokens"] - 1 for r in rows)
    assert result.summary["itl_ms"]["mean"] == pytest.approx(gaps_s / tokens * 1e3, rel=1e-6)


def _trace_config(b, pool, rows):
    records = TraceRecords(arrival_s=tuple(r[0] for r in rows),
                           prompt_tokens=tuple(r[1] for r in rows),
                           output_tokens=tuple(r[2] for r in rows))
    trace_len = LengthSpec(kind=LengthKind.TRACE)
    return b.make_config(pool=pool, num_requests=len(rows),
                         arrival=ArrivalSpec(kind=ArrivalKind.TRACE), prompt=trace_len,
                         output=trace_len, trace=records)


def test_itl_stall_is_charged_only_to_decoders_that_waited(sim_build):
    """Constant 1 s steps. A: t=0 prefill, tokens at 1, 2 and 5. B (arrives 1.5): prefill [2,3],
    tokens at 3 and 5. C (arrives 2.5, one token): prefill [3,4]. True gaps: A 1 and 3, B 2,
    so mean ITL is 2 s. B did not wait through B's own prefill step [2,3]."""
    pool = sim_build.make_pool(policy=BatchPolicy.CONTINUOUS, cost=sim_build.constant_cost(1.0))
    cfg = _trace_config(sim_build, pool, [(0.0, 100, 3), (1.5, 100, 2), (2.5, 100, 1)])
    result = simulate(cfg)
    times = [(r["first_token_s"], r["finish_s"]) for r in result.requests]
    assert times == [(1.0, 5.0), (3.0, 5.0), (4.0, 4.0)]  # the schedule itself is right
    assert result.summary["itl_ms"]["mean"] == pytest.approx(2000.0)
    assert result.summary["itl_ms"]["p50"] == pytest.approx(2000.0)


# --- ties: a batch formed at time t sees every arrival at t (sim/engine.py) ------------------


def test_arrival_at_a_step_end_is_seen_by_the_batch_formed_then(sim_build):
    """The replica is idle when B arrives at the end of A's prefill: B starts at once."""
    pool = sim_build.make_pool(policy=BatchPolicy.CONTINUOUS, cost=sim_build.constant_cost(0.25))
    cfg = _trace_config(sim_build, pool, [(0.0, 100, 1), (0.25, 100, 1)])
    rows = simulate(cfg).requests
    assert [r["gen_start_s"] for r in rows] == [0.0, 0.25]


@pytest.mark.parametrize("policy", [BatchPolicy.CONTINUOUS, BatchPolicy.MIXED, BatchPolicy.CHUNKED],
                         ids=lambda p: p.value)
def test_arrival_at_a_step_end_joins_the_next_step_of_a_busy_replica(sim_build, policy):
    """A (4 tokens) keeps the replica busy; B arrives exactly when A's prefill ends (t=0.25).
    engine.py promises completions, then arrivals, then batch formation at equal times, so B is
    admitted at 0.25, not one decode step later."""
    pool = sim_build.make_pool(policy=policy, cost=sim_build.constant_cost(0.25))
    cfg = _trace_config(sim_build, pool, [(0.0, 100, 4), (0.25, 100, 1)])
    rows = simulate(cfg).requests
    assert rows[1]["gen_start_s"] == 0.25


def test_closed_loop_replacement_joins_the_batch_formed_at_its_arrival(sim_build):
    pool = sim_build.make_pool(policy=BatchPolicy.CONTINUOUS, cost=sim_build.constant_cost(0.25),
                               max_num_seqs=8)
    cfg = sim_build.make_config(pool=pool, num_requests=12,
                                arrival=ArrivalSpec(kind=ArrivalKind.CLOSED_LOOP, concurrency=2),
                                prompt=100, output=sim_build.uniform(2, 6))
    rows = simulate(cfg).requests
    assert all(r["gen_start_s"] == r["arrival_s"] for r in rows), \
        [(r["id"], r["arrival_s"], r["gen_start_s"]) for r in rows]
