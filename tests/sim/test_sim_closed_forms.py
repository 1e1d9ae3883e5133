"""Queueing closed forms with the constant cost model (every step takes D seconds).

With max_num_seqs=1 and one output token, each request is exactly one prefill step of D: the
replica is an M/D/1 queue (Poisson arrivals) and a deterministic closed network (closed loop).
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import ArrivalKind, ArrivalSpec, BatchPolicy, simulate
from sim.workload.generator import draw

D = 0.01  # seconds per step


def md1_config(b, rho, num_requests, *, policy=BatchPolicy.CONTINUOUS, num_replicas=1,
               record_requests=False):
    pool = b.make_pool(policy=policy, num_replicas=num_replicas, max_num_seqs=1,
                       cost=b.constant_cost(D))
    return b.make_config(pool=pool, num_requests=num_requests,
                         arrival=b.poisson(rho * num_replicas / D), prompt=100, output=1,
                         record_requests=record_requests)


def md1_wq(rho):
    return rho * D / (2 * (1 - rho))


@pytest.mark.parametrize("rho,seeds,num_requests", [(0.5, (1,), 40_000),
                                                    (0.8, (1, 2, 3, 4), 50_000)])
def test_md1_mean_wait_matches_pollaczek_khinchine(sim_build, rho, seeds, num_requests):
    """Mean waiting time (TTFT - D) within 5% of Wq = rho D / (2 (1 - rho)). At rho=0.8 the
    sample mean is noisy (relative sd ~2.5% per 50k requests), so four seeds are pooled."""
    waits = []
    for seed in seeds:
        s = simulate(md1_config(sim_build, rho, num_requests), seed=seed).summary
        assert s["requests_completed"] == num_requests
        assert s["ttft_ms"]["p50"] >= D * 1e3 - 1e-9  # nobody is faster than one step
        waits.append(s["ttft_ms"]["mean"] / 1e3 - D)
    assert np.mean(waits) == pytest.approx(md1_wq(rho), rel=0.05)
    # utilisation of the server is rho (busy time over the run)
    assert s["pools"]["llm"]["utilization"] == pytest.approx(rho, rel=0.05)


@pytest.mark.parametrize("policy", list(BatchPolicy), ids=lambda p: p.value)
def test_md1_waits_follow_lindley_recursion_exactly(sim_build, policy):
    """Per request: start = max(arrival, previous finish), first token = finish = start + D."""
    cfg = md1_config(sim_build, 0.8, 3000, policy=policy, record_requests=True)
    rows = simulate(cfg, seed=9).requests
    arrivals = draw(cfg.workload, 9).arrival_s
    free_at = 0.0
    for row, arrival in zip(rows, arrivals):
        start = max(float(arrival), free_at)
        free_at = start + D
        assert row["arrival_s"] == float(arrival)
        assert row["gen_start_s"] == pytest.approx(start, abs=1e-12)
        assert row["first_token_s"] == row["finish_s"] == pytest.approx(free_at, abs=1e-12)


def test_md1_waits_grow_with_load(sim_build):
    means = [simulate(md1_config(sim_build, rho, 5000), seed=2).summary["ttft_ms"]["mean"]
             for rho in (0.2, 0.5, 0.8, 0.95)]
    assert means == sorted(means) and means[-1] > 3 * means[1]


def test_round_robin_over_c_replicas_splits_poisson_into_erlang_arrivals(sim_build):
    """Round robin sends every c-th request to a replica: each sees Erlang-c gaps (less bursty than
    Poisson), so the mean wait is below M/D/1's at the same per-replica load, yet positive."""
    cfg = md1_config(sim_build, 0.8, 20_000, num_replicas=4)
    s = simulate(cfg, seed=1).summary
    wait = s["ttft_ms"]["mean"] / 1e3 - D
    assert 0 < wait < 0.6 * md1_wq(0.8)


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_closed_loop_with_zero_think_time_is_exact(sim_build, concurrency):
    """N clients, one server of deterministic service D: throughput is exactly 1/D and, once
    every client has cycled once, each request waits for the N-1 ahead of it: e2e = N D."""
    pool = sim_build.make_pool(max_num_seqs=1, cost=sim_build.constant_cost(D))
    n = 200
    cfg = sim_build.make_config(pool=pool, num_requests=n, prompt=100, output=1,
                                arrival=ArrivalSpec(kind=ArrivalKind.CLOSED_LOOP,
                                                    concurrency=concurrency))
    result = simulate(cfg, seed=0)
    s = result.summary
    assert s["requests_completed"] == n
    assert s["duration_s"] == pytest.approx(n * D, rel=1e-9)
    assert s["requests_per_s"] == pytest.approx(1 / D, rel=1e-9)
    e2e = [r["e2e_ms"] / 1e3 for r in result.requests]
    assert e2e[:concurrency] == pytest.approx([(i + 1) * D for i in range(concurrency)])
    assert e2e[concurrency:] == pytest.approx([concurrency * D] * (n - concurrency))


def test_closed_loop_think_time_gives_the_interactive_response_time_law(sim_build):
    """Deterministic think Z >= (N-1) D: nobody ever queues, X = N / (D + Z)."""
    pool = sim_build.make_pool(max_num_seqs=1, cost=sim_build.constant_cost(D))
    cfg = sim_build.make_config(pool=pool, num_requests=300, prompt=100, output=1,
                                arrival=ArrivalSpec(kind=ArrivalKind.CLOSED_LOOP, concurrency=4,
                                                    think_time_s=5 * D))
    result = simulate(cfg, seed=0)
    e2e = np.array([r["e2e_ms"] for r in result.requests]) / 1e3
    assert e2e[4:] == pytest.approx(np.full(296, D))
    # requests per second over the run approaches N / (D + Z)
    assert result.summary["requests_per_s"] == pytest.approx(4 / (6 * D), rel=0.02)
