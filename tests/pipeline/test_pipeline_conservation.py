"""Named invariants of multi-stage runs: request conservation, stage order, causality, KV-block
conservation on every replica (cached prefixes, best-of-N, prefill-only / decode-only), KV bytes
conservation across tiers and links."""

from __future__ import annotations

import pytest

from sim import PoolRole, PoolSpec, RouterPolicy, simulate
from sim.kvstore.specs import Domain, KVLinkSpec, KVStoreSpec, KVTierSpec, TierKind
from sim.pipeline.specs import IndexKind, IndexSpec, PrefixSpec, ReasoningSpec
from sim.request import RouteMode, RouteTarget, Stage, StageKind
from sim.scheduling.replica import Replica
from sim.simulation import _Run


def mixed_config(b, *, n=300, rate=6.0, tiers=None, router=RouterPolicy.PREFIX_AFFINITY,
                 samples=2, gpu_util=0.9):
    from pipeline_builders import hw, model

    from sim import BatchPolicy, RequestTypeSpec, SchedulerSpec, SimConfig, WorkloadSpec
    sched = SchedulerSpec(policy=BatchPolicy.CHUNKED, chunk_size_tokens=1024,
                          gpu_memory_utilization=gpu_util)
    llm = b.llm_pool("llm", replicas=2, router=router, scheduler=sched)
    small = b.llm_pool("small", model_name="qwen2_5_1_5b", replicas=1)
    prefill = b.llm_pool("prefill", role=PoolRole.PREFILL)
    decode = b.llm_pool("decode", role=PoolRole.DECODE, scheduler=sched)
    cpu = b.cpu_pool()
    embed = PoolSpec(name="embed", model=model("bge_large_en"), hardware=hw("xeon_6980p"),
                     role=PoolRole.EMBED)
    search = PoolSpec(name="search", model=None, hardware=hw("xeon_6980p"), role=PoolRole.RETRIEVAL,
                      index=IndexSpec(kind=IndexKind.HNSW, num_vectors=1_000_000, dim=768),
                      workers_per_node=2)
    reward = PoolSpec(name="reward", model=model("reward_8b"), hardware=hw("h100_sxm"),
                      role=PoolRole.REWARD)
    tiers = tiers or (
        KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=2e9, bandwidth_bytes_per_s=3e12),
        KVTierSpec(name="dram", kind=TierKind.DRAM, capacity_bytes=6e9, bandwidth_bytes_per_s=40e9,
                   latency_s=5e-6, link=KVLinkSpec(bandwidth_bytes_per_s=40e9)),
        KVTierSpec(name="remote", kind=TierKind.REMOTE, capacity_bytes=20e9,
                   bandwidth_bytes_per_s=20e9, latency_s=5e-4, domain=Domain.CLUSTER,
                   link=KVLinkSpec(bandwidth_bytes_per_s=20e9, shared=True)))
    store = KVStoreSpec(pool="llm", tiers=tiers)
    S = b.stage
    route = Stage(kind=StageKind.ROUTE, pool="cpu", mode=RouteMode.CASCADE,
                  targets=(RouteTarget(model="qwen2_5_1_5b", pool="small", weight=0.3),
                           RouteTarget(model="llama3_1_8b", pool="llm")))
    lengths = dict(prompt_tokens=b.lognormal(300, 200), output_tokens=b.lognormal(60, 40, hi=400))
    types = (
        RequestTypeSpec(name="rag_kv", weight=2, plan=(
            S("preprocess", "cpu"), S("embed", "embed"), S("vector_search", "search", top_k=4),
            S("kv_retrieval", "llm"), S("generate", "llm"), S("postprocess", "cpu")),
            prefix=PrefixSpec(num_prefixes=40, zipf_s=1.0, prefix_tokens=b.lognormal(1500, 800)),
            **lengths),
        RequestTypeSpec(name="routed", weight=1, plan=(
            S("preprocess", "cpu"), route, Stage(kind=StageKind.GENERATE, pool="routed"),
            S("postprocess", "cpu")), **lengths),
        RequestTypeSpec(name="disagg", weight=1, plan=(S("prefill", "prefill"), S("decode", "decode")),
                        **lengths),
        RequestTypeSpec(name="reason", weight=1, plan=(S("generate", "llm"), S("reward", "reward")),
                        reasoning=ReasoningSpec(think_short=b.fixed(40), think_long=b.fixed(300),
                                                long_fraction=0.5, num_rounds=2, feedback_tokens=16,
                                                num_samples=samples), **lengths),
    )
    return SimConfig(pools=(llm, small, prefill, decode, cpu, embed, search, reward),
                     workload=WorkloadSpec(num_requests=n, arrival=b.poisson(rate), request_types=types),
                     kv_stores=(store,), record_requests=True)


def _check_blocks(run, final=False):
    engine = run.engine
    for pool in run.pools.values():
        for rep in pool.replicas:
            assert 0 <= rep.used_blocks <= rep.total_blocks, rep.label
            reserved = 0  # prompt (and fork) blocks are held from admission: in the recount
            for (_, _, _, cb, args) in engine._heap:
                if getattr(cb, "__func__", None) is Replica._end_step and cb.__self__ is rep:
                    _chunks, with_decode = args
                    if with_decode:
                        reserved += rep._decode_blocks_needed(1)
            assert rep.used_blocks == rep.blocks_in_use_check() + reserved, \
                f"{rep.label} t={engine.now_s}: used {rep.used_blocks} held {rep.blocks_in_use_check()} + {reserved}"
            if final:
                assert rep.used_blocks == 0 and not rep.admitted and not rep.waiting


@pytest.fixture(scope="module")
def mixed_run():
    import types

    from pipeline_builders import cpu_pool, fixed, llm_pool, lognormal, poisson, stage
    b = types.SimpleNamespace(llm_pool=llm_pool, cpu_pool=cpu_pool, stage=stage, fixed=fixed,
                              lognormal=lognormal, poisson=poisson)
    cfg = mixed_config(b)
    run = _Run(cfg, 3)
    run.start()
    checks = 0
    while run.engine._heap:
        run.engine.run(until_s=run.engine._heap[0][0])
        if checks % 7 == 0:
            _check_blocks(run)
        checks += 1
    _check_blocks(run, final=True)
    result = simulate(cfg, 3)
    return cfg, run, result


def test_every_request_completes_or_is_rejected_once(mixed_run):
    cfg, run, result = mixed_run
    ids = [r.id for r in run.collector.completed] + [r.id for r in run.collector.rejected]
    assert sorted(ids) == list(range(cfg.workload.num_requests))
    assert result.summary["requests_completed"] == len(run.collector.completed) > 0.9 * len(ids)


def test_completed_requests_visit_their_stages_in_plan_order(mixed_run):
    cfg, _, result = mixed_run
    plans = {rt.name: [s.kind.value for s in rt.plan] for rt in cfg.workload.request_types}
    for row in result.requests:
        if row["status"] != "completed":
            continue
        kinds = [cell.split("@")[0] for cell in row["stages"].split(";")]
        expected = plans[row["type"]]
        if row["type"] == "disagg":
            expected = ["prefill", "kv_transfer", "decode"]
        collapsed = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1] or k != "generate"]
        assert collapsed == expected, (row["id"], kinds)


def test_timestamps_are_causal(mixed_run):
    _, run, _ = mixed_run
    for req in run.collector.completed:
        assert req.arrival_s <= req.gen_start_s <= req.first_token_s <= req.last_token_s <= req.finish_s


def test_stage_visits_add_up_to_end_to_end_latency(mixed_run):
    """Stages run back to back: a request's visits (queue + service) sum to its e2e latency."""
    _, _, result = mixed_run
    for row in result.requests:
        if row["status"] != "completed":
            continue
        total = sum(float(q) + float(s) for q, s in (c.split(":")[1].split("/")
                                                      for c in row["stages"].split(";")))
        assert total == pytest.approx(row["e2e_ms"], abs=0.01 * len(row["stages"].split(";")))


def test_kv_bytes_are_conserved_across_tiers(mixed_run):
    cfg, run, result = mixed_run
    tiers = result.summary["kv_tiers"]
    lookups = result.summary["kv_lookups"]["llm"]
    assert tiers["llm/hbm"]["lookups"] == lookups["lookups"]
    hits = sum(t["hits"] for t in tiers.values())
    assert hits + lookups["misses"] == lookups["lookups"]
    assert hits > 0 and lookups["misses"] > 0
    stats = {t.tier: t for t in run.collector.kv_tiers}
    for name in ("dram", "remote"):
        s = stats[name]
        # every byte written into a tier is still resident there or was evicted/passed down
        assert s.bytes_written >= s.resident_bytes
        assert s.link.bytes_moved == pytest.approx(s.bytes_read + s.bytes_written)
    # the last tier: written = resident + evicted
    r = stats["remote"]
    assert r.bytes_written == pytest.approx(r.resident_bytes + r.evicted_bytes)
    # what the stages fetched equals what the tiers delivered
    fetched = sum(s.bytes_read for s in stats.values())
    kv_per_token = cfg.pool("llm").model.kv_bytes_per_token(cfg.pool("llm").kv_dtype)
    hit_tokens = sum(r.prefix_tokens for r in run.collector.completed + run.collector.rejected
                     if r.prefix_id >= 0 and r.cached_tokens)
    assert fetched <= hit_tokens * kv_per_token + 1e-6


def test_disaggregated_handoff_moves_each_prompt_kv_once(mixed_run):
    cfg, run, result = mixed_run
    link = result.summary["links"]["prefill->decode"]
    disagg = [r for r in run.collector.completed if r.type_name == "disagg" and r.output_tokens > 1]
    kv = cfg.pool("prefill").model.kv_bytes_per_token(cfg.pool("prefill").kv_dtype)
    assert link["transfers"] == len(disagg)
    assert link["bytes_moved"] == pytest.approx(sum(r.prompt_tokens for r in disagg) * kv)


def test_lru_evicts_under_pressure_and_demotes(b):
    cfg = mixed_config(b, n=200, tiers=(
        KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=0.5e9, bandwidth_bytes_per_s=3e12),
        KVTierSpec(name="dram", kind=TierKind.DRAM, capacity_bytes=1e9, bandwidth_bytes_per_s=40e9,
                   link=KVLinkSpec(bandwidth_bytes_per_s=40e9))))
    s = simulate(cfg, 1).summary["kv_tiers"]
    assert s["llm/hbm"]["evictions"] == 0 and s["llm/dram"]["demotions_in"] > 0
    assert s["llm/dram"]["evictions"] > 0
    assert s["llm/hbm"]["resident_bytes"] <= 2 * 0.5e9 and s["llm/dram"]["resident_bytes"] <= 2 * 1e9


def test_kv_blocks_conserved_under_pressure_with_samples_prefixes_and_handoffs(b):
    """KV-starved pools (preemption by recompute) with cached prefixes, best-of-4 and a
    decode-only pool: after every event, every replica's used blocks equal what its requests hold
    plus what the step in flight reserved; nothing leaks at the end."""
    cfg = mixed_config(b, n=160, rate=40.0, samples=4, gpu_util=0.293)  # ~21 GB of an H100's 85.5e9 bytes
    run = _Run(cfg, 5)
    run.start()
    while run.engine._heap:
        run.engine.run(until_s=run.engine._heap[0][0])
        _check_blocks(run)
    _check_blocks(run, final=True)
    preempted = sum(r.preemptions for r in run.collector.completed)
    assert preempted > 0, "the scenario must exercise preemption"
    assert len(run.collector.completed) + len(run.collector.rejected) == 160
