"""Colocated pools of one model on different SKUs form one service (sim/scheduling/service_router.py):
load shared by expected drain time, requests that fit only one pool sent there, deterministic."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

from sim import SchedulerSpec, simulate
from sim.scheduling.service_router import ServiceRouter
from sim.simulation import _Run


def slow_sku(sim_build, factor: float = 3.0):
    """An H100 with a third of its bandwidth and compute: the 'cheap, slow' SKU."""
    fast = sim_build.h100()
    return dataclasses.replace(fast, name="slow_sku",
                               mem_bw_bytes_per_s=fast.mem_bw_bytes_per_s / factor,
                               bf16_flops_per_s=fast.bf16_flops_per_s / factor,
                               fp8_flops_per_s=fast.fp8_flops_per_s / factor)


def two_pool_config(b, *, n=120, rate=20.0, slow_replicas=1, prompt=256, output=64,
                    slow_scheduler=None, record_requests=False):
    fast = b.make_pool(name="fast")
    slow = b.make_pool(name="slow", hardware=slow_sku(b), num_replicas=slow_replicas)
    if slow_scheduler is not None:
        slow = dataclasses.replace(slow, scheduler=slow_scheduler)
    base = b.make_config(pool=fast, num_requests=n, arrival=b.poisson(rate), prompt=prompt,
                         output=output, record_requests=record_requests)
    return dataclasses.replace(base, pools=(fast, slow))


def served_by(config, seed=0):
    """Run ``config`` and return {pool: [request ids it queued]} (the pool whose replica actually
    took each request), plus the run itself."""
    run = _Run(config, seed)
    taken: dict[str, list[int]] = {name: [] for name in run.pools}
    for name, pool in run.pools.items():
        def wrapped(req, _inner=pool.submit_here, _name=name):
            taken[_name].append(req.id)
            _inner(req)
        pool.submit_here = wrapped
    run.start()
    run.engine.run()
    return taken, run


def test_two_pools_of_one_model_share_one_service_router(sim_build):
    run = _Run(two_pool_config(sim_build, n=5), 0)
    fast, slow = run.pools["fast"], run.pools["slow"]
    assert isinstance(fast.service, ServiceRouter) and fast.service is slow.service
    assert [p.spec.name for p in fast.service.pools] == ["fast", "slow"]
    # the reference-batch decode speed follows the SKU: a third of the bandwidth and compute
    # is 2-3x slower (fixed per-step overheads do not scale with the device)
    speeds = fast.service.speed_by_pool
    assert speeds == dict(zip(["fast", "slow"], fast.service.speeds))
    assert 2.0 < speeds["fast"] / speeds["slow"] <= 3.0


def test_a_single_pool_has_no_service(sim_build):
    run = _Run(sim_build.make_config(num_requests=5), 0)
    assert run.pools["llm"].service is None


def test_pools_of_different_models_are_separate(sim_build):
    cfg = two_pool_config(sim_build, n=5)
    other = dataclasses.replace(cfg.pools[1], model=sim_build.llama_70b(), tp=4)
    run = _Run(dataclasses.replace(cfg, pools=(cfg.pools[0], other)), 0)
    assert run.pools["fast"].service is None and run.pools["slow"].service is None


def test_the_faster_pool_serves_more_and_both_serve_some(sim_build):
    cfg = two_pool_config(sim_build, n=120, rate=20.0)
    taken, run = served_by(cfg)
    assert len(taken["fast"]) + len(taken["slow"]) == 120
    assert sorted(taken["fast"] + taken["slow"]) == list(range(120))  # each request once
    assert len(taken["slow"]) >= 10
    assert len(taken["fast"]) > 1.5 * len(taken["slow"])
    summary = simulate(cfg, seed=0).summary
    assert summary["requests_completed"] == 120 and summary["requests_rejected"] == 0
    fast, slow = summary["pools"]["fast"], summary["pools"]["slow"]
    assert slow["busy_s"] > 0 and slow["decode_steps"] > 0
    assert fast["decode_steps"] > slow["decode_steps"]


def test_an_idle_fast_pool_always_wins(sim_build):
    cfg = two_pool_config(sim_build, n=3, rate=0.01)  # ~100 s apart: every arrival finds idle pools
    taken, _ = served_by(cfg)
    assert taken == {"fast": [0, 1, 2], "slow": []}


def test_ties_go_to_the_first_pool_then_load_decides(sim_build):
    """Two identical pools: idle ones tie (first in config order wins); a request arriving while
    the first is busy goes to the second."""
    cfg = two_pool_config(sim_build, n=3, rate=0.01)
    twin = dataclasses.replace(cfg.pools[0], name="twin")
    assert served_by(dataclasses.replace(cfg, pools=(cfg.pools[0], twin)))[0] == {
        "fast": [0, 1, 2], "twin": []}
    assert served_by(dataclasses.replace(cfg, pools=(twin, cfg.pools[0])))[0] == {
        "twin": [0, 1, 2], "fast": []}
    burst = two_pool_config(sim_build, n=2, rate=1000.0)
    assert served_by(dataclasses.replace(burst, pools=(burst.pools[0], twin)))[0] == {
        "fast": [0], "twin": [1]}


def test_a_request_that_fits_only_the_bigger_pool_goes_there(sim_build):
    # the slow pool keeps ~200 KV blocks (3200 tokens): a 6000-token prompt cannot fit there
    blocks = sim_build.utilization_for_blocks(200)
    cfg = two_pool_config(sim_build, n=40, rate=200.0, prompt=6000, output=16,
                          slow_scheduler=SchedulerSpec(gpu_memory_utilization=blocks))
    taken, run = served_by(cfg)
    assert run.pools["slow"].drop_reason(run.collector.completed[0]) is not None
    assert taken["slow"] == [] and sorted(taken["fast"]) == list(range(40))
    assert len(run.collector.completed) == 40 and not run.collector.rejected


def test_a_request_no_pool_can_serve_is_rejected_once(sim_build):
    blocks = sim_build.utilization_for_blocks(200)
    cfg = two_pool_config(sim_build, n=4, rate=1.0, prompt=6000, output=16,
                          slow_scheduler=SchedulerSpec(gpu_memory_utilization=blocks))
    tiny = dataclasses.replace(cfg.pools[0], scheduler=SchedulerSpec(gpu_memory_utilization=blocks))
    cfg = dataclasses.replace(cfg, pools=(tiny, cfg.pools[1]))
    summary = simulate(cfg, seed=0).summary
    assert summary["requests_completed"] == 0 and summary["requests_rejected"] == 4
    assert summary["rejection_reasons"] == {"prompt_exceeds_kv_capacity": 4}


def test_same_seed_same_summary(sim_build):
    cfg = two_pool_config(sim_build, n=150, rate=25.0, slow_replicas=2)
    first = json.dumps(simulate(cfg, seed=7).summary, sort_keys=True)
    assert json.dumps(simulate(cfg, seed=7).summary, sort_keys=True) == first
    other = json.dumps(simulate(cfg, seed=8).summary, sort_keys=True)
    assert other != first


def test_request_rows_name_the_pool_that_served_each_request(sim_build):
    cfg = two_pool_config(sim_build, n=120, rate=20.0, record_requests=True)
    taken, _ = served_by(cfg)
    rows = simulate(cfg, seed=0).requests
    by_pool = Counter(row["pool_replica"].split("/")[0] for row in rows)
    assert by_pool == {"fast": len(taken["fast"]), "slow": len(taken["slow"])}


def test_reasoning_rounds_stay_on_the_pool_that_served_the_first(sim_build):
    from sim import (
        LengthKind,
        LengthSpec,
        RequestTypeSpec,
        SimConfig,
        Stage,
        StageKind,
        WorkloadSpec,
    )
    from sim.pipeline.specs import ReasoningSpec
    cfg = two_pool_config(sim_build, n=30, rate=20.0, slow_replicas=3)
    think = LengthSpec(kind=LengthKind.FIXED, mean=64)
    rt = RequestTypeSpec(name="think", plan=(Stage(kind=StageKind.GENERATE, pool="fast"),),
                         prompt_tokens=sim_build.fixed(256), output_tokens=sim_build.fixed(32),
                         reasoning=ReasoningSpec(think_short=think, think_long=think, num_rounds=2))
    cfg = SimConfig(pools=cfg.pools, workload=WorkloadSpec(
        num_requests=30, arrival=sim_build.poisson(20.0), request_types=(rt,)))
    summary = simulate(cfg, seed=0).summary
    assert summary["requests_completed"] == 30
    # both pools served requests, and every round of a request ran on the pool of its first
    assert summary["generated_tokens"]["fast"] > 0 and summary["generated_tokens"]["slow"] > 0
    assert summary["generated_tokens"]["fast"] + summary["generated_tokens"]["slow"] == 30 * (64 + 32)
