"""Named invariants over every batch policy x router, in a normal and a KV-starved regime.

request conservation · causal timestamps · KV-block conservation (mid-run and at the end) ·
preemption by recompute still delivers every output token.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import BatchPolicy, RouterPolicy, simulate

POLICIES = list(BatchPolicy)
ROUTERS = list(RouterPolicy)  # every router, including ones added later


def router_marks(router: RouterPolicy):
    return ()  # every router is built by sim.scheduling.router.make_router

STARVED_BLOCKS = 120  # per replica: 1920 tokens of KV for up to 64 sequences of ~1000 tokens


def scenario_config(b, scenario: str, policy: BatchPolicy, router: RouterPolicy):
    common = dict(num_replicas=2, policy=policy, router=router, max_num_seqs=64,
                  max_batched_tokens=4096, chunk_size_tokens=512)
    if scenario == "poisson":
        pool = b.make_pool(**common)
        return b.make_config(pool=pool, num_requests=300, arrival=b.poisson(12.0),
                             prompt=b.uniform(20, 1500), output=b.uniform(1, 300))
    assert scenario == "kv_starved"
    pool = b.make_pool(**common,
                       gpu_memory_utilization=b.utilization_for_blocks(STARVED_BLOCKS))
    return b.make_config(pool=pool, num_requests=160, arrival=b.max_load(),
                         prompt=b.uniform(16, 300), output=b.uniform(200, 1200))


CASES = [pytest.param(s, p, r, id=f"{s}-{p.value}-{r.value}", marks=router_marks(r))
         for s in ("poisson", "kv_starved") for p in POLICIES for r in ROUTERS]


@pytest.fixture(scope="module")
def results(sim_build):
    """One checked run per case, shared by the invariant tests below."""
    cache = {}

    def get(scenario, policy, router):
        key = (scenario, policy, router)
        if key not in cache:
            cfg = scenario_config(sim_build, scenario, policy, router)
            end_s = simulate(cfg, seed=7).summary["duration_s"]
            checkpoints = np.linspace(0.0, end_s, 42)[1:-1]
            run, result = sim_build.run_checked(cfg, seed=7, checkpoints_s=checkpoints)
            cache[key] = (cfg, run, result)
        return cache[key]

    return get


@pytest.mark.parametrize("scenario,policy,router", CASES)
def test_request_conservation(results, scenario, policy, router):
    cfg, run, result = results(scenario, policy, router)
    n = cfg.workload.num_requests
    s = result.summary
    assert s["requests_completed"] + s["requests_rejected"] == n
    assert sum(s["rejection_reasons"].values()) == s["requests_rejected"]
    ids = [row["id"] for row in result.requests]
    assert len(ids) == len(set(ids)) == n
    assert sorted(ids) == list(range(n))
    collected = [r.id for r in run.collector.completed + run.collector.rejected]
    assert len(collected) == len(set(collected)) == n, "a request finished twice or never"
    statuses = {row["status"] for row in result.requests}
    assert statuses <= {"completed", "rejected"}
    assert sum(row["status"] == "completed" for row in result.requests) == s["requests_completed"]


@pytest.mark.parametrize("scenario,policy,router", CASES)
def test_causal_timestamps(results, scenario, policy, router):
    _, _, result = results(scenario, policy, router)
    for row in result.requests:
        if row["status"] != "completed":
            continue
        assert row["arrival_s"] <= row["gen_start_s"] <= row["first_token_s"] <= row["finish_s"], row
        assert row["ttft_ms"] > 0 and row["e2e_ms"] >= row["ttft_ms"]
        if row["output_tokens"] > 1:
            # every token after the first needs at least one more step
            assert row["finish_s"] > row["first_token_s"], row


@pytest.mark.parametrize("scenario,policy,router", CASES)
def test_kv_blocks_conserved(results, scenario, policy, router):
    # run_checked asserted used_blocks == recount (+ in-flight reservation) at 40 times and
    # used_blocks == 0 at the end; here we make sure those checks actually saw a busy system.
    _, run, result = results(scenario, policy, router)
    assert run.num_checks == 41
    assert run.num_busy_checks >= 35, "the mid-run checks should see requests in flight"
    for pool in run.pools.values():
        for rep in pool.replicas:
            assert rep.used_blocks == 0 and rep.num_decoding == 0 and not rep.busy
            assert rep.total_blocks == pool.num_blocks
    if scenario == "kv_starved":
        assert run.pools["llm"].num_blocks == STARVED_BLOCKS


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.value)
@pytest.mark.parametrize("router", [pytest.param(r, id=r.value, marks=router_marks(r))
                                    for r in ROUTERS])
def test_kv_starved_preempts_and_still_delivers_every_token(results, policy, router):
    cfg, run, result = results("kv_starved", policy, router)
    s = result.summary
    assert s["preemptions"] > 0
    assert s["requests_rejected"] == 0
    assert sum(row["preemptions"] for row in result.requests) == s["preemptions"]
    drawn = run.drawn.output_tokens
    for req in run.collector.completed:
        assert req.output_tokens == int(drawn[req.id])  # not truncated by a preemption
        assert req.generated == req.output_tokens, (req.id, req.generated, req.output_tokens)
        assert req.finish_s >= req.first_token_s > 0
    assert s["output_tokens_per_s"] * s["duration_s"] == pytest.approx(float(drawn.sum()))
    assert any(row["preemptions"] > 0 for row in result.requests)


def test_checked_run_matches_simulate(sim_build):
    """The invariant harness drives the same simulation as the public entry point."""
    cfg = scenario_config(sim_build, "kv_starved", BatchPolicy.CHUNKED,
                          RouterPolicy.LEAST_OUTSTANDING_TOKENS)
    _, checked = sim_build.run_checked(cfg, seed=3, checkpoints_s=[1.0, 5.0, 20.0])
    plain = simulate(cfg, seed=3)
    assert checked.summary == plain.summary
    assert checked.requests == plain.requests


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.value)
def test_kv_conservation_after_every_event(sim_build, policy):
    """Exact KV accounting at every event time, tight memory, one replica, bursty arrivals."""
    pool = sim_build.make_pool(policy=policy, max_num_seqs=16, max_batched_tokens=1024,
                               chunk_size_tokens=128, block_size_tokens=8,
                               gpu_memory_utilization=sim_build.utilization_for_blocks(
                                   60, block_size_tokens=8))
    cfg = sim_build.make_config(pool=pool, num_requests=60, arrival=sim_build.poisson(40.0),
                                prompt=sim_build.uniform(1, 200), output=sim_build.uniform(1, 150))
    run, result = sim_build.run_checked(cfg, seed=11, every_event=True)
    assert run.num_checks > 100
    assert result.summary["requests_completed"] == 60
    assert result.summary["preemptions"] > 0


def test_rows_name_the_replica_that_served(sim_build):
    """``pool_replica`` should say which replica served a request, not just the pool."""
    pool = sim_build.make_pool(num_replicas=2)
    cfg = sim_build.make_config(pool=pool, num_requests=20, arrival=sim_build.poisson(5.0))
    rows = simulate(cfg, seed=0).requests
    labels = {row["pool_replica"] for row in rows}
    assert labels == {"llm/0", "llm/1"}, labels

