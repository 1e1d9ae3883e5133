"""Conservation properties of the tiered prefix-KV store inside whole simulations.

Seeded random configurations (replicas, tier layouts with replica / node / cluster domains, small
capacities so every tier evicts, shared / private / sessions prefixes, client affinity) run for
every eviction x admission x dedup_inflight x write_through, and after the run (and at checkpoints
during it) check:

* requests: every issued request completes or is rejected, exactly once;
* lookups: one per request that reached its kv_retrieval stage; misses + hits over the tiers ==
  lookups; tier ``t`` is reached by exactly the lookups that missed every faster tier;
  inflight_waits <= lookups (0 without dedup_inflight);
* bytes per tier: bytes_written == resident_bytes + victim_bytes; resident_bytes <= capacity
  (all copies); the tier's device and link moved exactly bytes_read + bytes_written;
* each copy: policy.used_bytes == the sum of its entries' sizes <= the tier's capacity, and the
  tier's resident_bytes == the sum over its copies;
* nothing left in flight (store.fetching, store.computing, fabric flows) once every request ended;
* KV blocks: used == what admitted requests hold (+ the step in flight) mid-run, 0 at the end.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hermes_opt.compose import catalog, to_sim
from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
    LengthKind,
    LengthSpec,
    PoolSpec,
    RequestTypeSpec,
    SchedulerSpec,
    SimConfig,
    Stage,
    StageKind,
    WorkloadSpec,
)
from sim.kvstore.policies import Admission, Eviction
from sim.kvstore.specs import ClientAffinity, Domain, KVLinkSpec, KVStoreSpec, KVTierSpec, TierKind
from sim.pipeline.specs import PrefixSpec
from sim.scheduling.replica import Replica
from sim.simulation import _Run

GB = 1e9
SEEDS = (0, 1, 2)
N_REQUESTS = 160
H100 = to_sim.hardware_spec(catalog.entry("hardware", "h100_sxm"))
LLAMA_8B = to_sim.model_spec(catalog.entry("model", "llama3_1_8b"))  # 128 KiB of KV per token


def lengths(kind: str, mean: float, std: float = 0.0, lo: int = 4, hi: int = 4096) -> LengthSpec:
    return LengthSpec(kind=LengthKind(kind), mean=mean, std=std, min_tokens=lo, max_tokens=hi)


def dram(name="dram", cap_gb=0.8, domain=Domain.REPLICA, **link):
    return KVTierSpec(name=name, kind=TierKind.DRAM, capacity_bytes=cap_gb * GB,
                      bandwidth_bytes_per_s=60 * GB, latency_s=1e-6, domain=domain,
                      link=KVLinkSpec(bandwidth_bytes_per_s=link.pop("bw", 25) * GB, **link))


def remote_tier(cap_gb: float) -> KVTierSpec:
    return KVTierSpec(name="remote", kind=TierKind.REMOTE, capacity_bytes=cap_gb * GB,
                      bandwidth_bytes_per_s=20 * GB, latency_s=1e-4, domain=Domain.CLUSTER,
                      link=KVLinkSpec(bandwidth_bytes_per_s=10 * GB, latency_s=5e-5, shared=True))


def layouts(rng):
    """A few tier layouts (fastest first) with small capacities; domains replica/node/cluster."""
    hbm = KVTierSpec(name="hbm", kind=TierKind.HBM,
                     capacity_bytes=float(rng.uniform(0.3, 0.6)) * GB,
                     bandwidth_bytes_per_s=3000 * GB)
    remote = remote_tier(float(rng.uniform(1.0, 2.0)))
    ssd = KVTierSpec(name="ssd", kind=TierKind.SSD,
                     capacity_bytes=float(rng.uniform(1.0, 2.0)) * GB,
                     bandwidth_bytes_per_s=8 * GB, latency_s=1e-4, domain=Domain.REPLICA,
                     link=KVLinkSpec(bandwidth_bytes_per_s=12 * GB))
    cap = float(rng.uniform(0.5, 1.0))
    return [
        (hbm, dram(cap_gb=cap), remote),  # replica, replica, cluster
        (hbm, dram(cap_gb=cap, domain=Domain.NODE, per_device=True), ssd),  # replica, node, replica
        (dram(cap_gb=cap, domain=Domain.NODE, shared=True), remote),  # no HBM: node, cluster
    ][int(rng.integers(0, 3))]


def random_config(seed: int, eviction: Eviction, admission: Admission, dedup: bool,
                  write_through: bool, *, n: int = N_REQUESTS,
                  prefix_max_tokens: int = 4000) -> SimConfig:
    """One seeded scenario (replicas, tier layout, prefix pattern, clients, affinity, rate)."""
    rng = np.random.default_rng([seed, 7919])
    replicas = int(rng.choice([2, 4]))
    tiers = layouts(rng)
    pattern = str(rng.choice(["shared", "private", "sessions"]))
    clients = int(rng.choice([0, 4, 6])) if pattern != "private" else int(rng.choice([3, 4]))
    affinity = ClientAffinity(str(rng.choice(["none", "prefer", "pin"])))
    store = KVStoreSpec(pool="llm", tiers=tuple(tiers), eviction=eviction, admission=admission,
                        dedup_inflight=dedup, write_through=write_through, node_replicas=2,
                        client_affinity=affinity)
    prefix = PrefixSpec(num_prefixes=int(rng.integers(6, 40)), zipf_s=float(rng.uniform(0.5, 1.2)),
                        prefix_tokens=lengths("lognormal", 1500, 1000, 16, prefix_max_tokens),
                        pattern=pattern, clients=clients, turns=int(rng.integers(2, 6)))
    pool = PoolSpec(name="llm", model=LLAMA_8B, hardware=H100, num_replicas=replicas,
                    scheduler=SchedulerSpec(policy=BatchPolicy.CHUNKED, chunk_size_tokens=2048))
    rt = RequestTypeSpec(name="ctx", plan=(Stage(kind=StageKind.KV_RETRIEVAL, pool="llm"),
                                           Stage(kind=StageKind.GENERATE, pool="llm")),
                         prompt_tokens=lengths("lognormal", 120, 60),
                         output_tokens=lengths("lognormal", 24, 12, hi=200), prefix=prefix)
    arrival = ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=float(rng.uniform(8, 80)))
    return SimConfig(pools=(pool,), workload=WorkloadSpec(num_requests=n, arrival=arrival,
                                                          request_types=(rt,)),
                     kv_stores=(store,))


# --- checks -----------------------------------------------------------------------------------
def check_blocks(run: _Run, final: bool) -> None:
    for pool in run.pools.values():
        for rep in pool.replicas:
            assert 0 <= rep.used_blocks <= rep.total_blocks == pool.num_blocks, rep.label
            reserved = sum(rep._decode_blocks_needed(1)
                           for (_, _, _, cb, args) in run.engine._heap
                           if getattr(cb, "__func__", None) is Replica._end_step
                           and cb.__self__ is rep and args[1])
            assert rep.used_blocks == rep.blocks_in_use_check() + reserved, rep.label
            if final:
                assert rep.used_blocks == 0 and not rep.admitted and not rep.waiting, rep.label


def check_copies(store) -> None:
    for t, tier in enumerate(store.tiers):
        stats = store.stats[t]
        assert len(store.copies[t]) == stats.copies
        total = 0.0
        for c, copy in enumerate(store.copies[t]):
            policy = copy.policy
            keys = policy.keys()
            assert len(keys) == len(set(keys)) == len(policy), (tier.name, c)
            summed = sum(policy.size_of(k) for k in keys)
            assert math.isclose(policy.used_bytes, summed, rel_tol=1e-9, abs_tol=1.0), \
                (tier.name, c)
            assert policy.used_bytes <= tier.capacity_bytes * (1 + 1e-12), (tier.name, c)
            total += summed
        assert math.isclose(stats.resident_bytes, total, rel_tol=1e-9, abs_tol=1.0), tier.name
        assert stats.resident_bytes <= stats.capacity_bytes * (1 + 1e-12), tier.name


def check_final(cfg: SimConfig, run: _Run) -> None:
    n = cfg.workload.num_requests
    done = run.collector.completed + run.collector.rejected
    assert sorted(r.id for r in done) == list(range(n)), "requests lost or finished twice"
    store = run.stores["llm"]
    assert not store.fetching and not store.computing, (store.fetching, store.computing)
    assert store.fabric.active() == 0 and not run.engine._heap
    lookups, misses, waits, looked_up_tokens, hit_tokens = store.counts
    # tokens: every hit serves its prefix, so hit tokens are part of the looked-up tokens, and
    # none without a hit
    assert 0 <= hit_tokens <= looked_up_tokens and (hit_tokens > 0) == (misses < lookups)
    assert hit_tokens == sum(r.prefix_tokens for r in done if r.cached_tokens)
    # every request's first stage is its kv_retrieval, and each lookup is counted once
    assert lookups == n
    hits = [s.hits for s in store.stats]
    assert misses + sum(hits) == lookups
    assert 0 <= waits <= lookups
    if not store.spec.dedup_inflight:
        assert waits == 0
    reached = lookups
    for s in store.stats:
        assert s.lookups == reached, (s.tier, s.lookups, reached)  # missed every faster tier
        assert 0 <= s.hits <= s.lookups
        reached -= s.hits
    assert reached == misses
    for s in store.stats:
        assert math.isclose(s.bytes_written, s.resident_bytes + s.victim_bytes,
                            rel_tol=1e-9, abs_tol=1.0), s.tier
        assert s.victim_bytes >= 0 and s.resident_bytes >= -1.0
        if s.kind == "hbm":
            assert s.bytes_read == 0 and s.device is None
        else:  # a read and a write both cross the copy's device and the reader's link
            moved = s.bytes_read + s.bytes_written
            assert math.isclose(s.device.bytes_moved, moved, rel_tol=1e-9, abs_tol=1.0), s.tier
            assert math.isclose(s.link.bytes_moved, moved, rel_tol=1e-9, abs_tol=1.0), s.tier
    # what was read was the prefix KV of requests that hit
    kv = LLAMA_8B.kv_bytes_per_token(cfg.pools[0].kv_dtype)
    hit_bytes = sum(r.prefix_tokens for r in done if r.cached_tokens) * kv
    assert sum(s.bytes_read for s in store.stats) <= hit_bytes + 1.0
    check_copies(store)
    check_blocks(run, final=True)


def run_checked(cfg: SimConfig, seed: int, checkpoints: int = 12) -> _Run:
    run = _Run(cfg, seed)
    run.start()
    horizon = float(run.drawn.arrival_s[-1]) * 1.5 + 1.0
    for t in np.linspace(0.0, horizon, checkpoints)[1:]:
        run.engine.run(until_s=float(t))
        check_copies(run.stores["llm"])
        check_blocks(run, final=False)
    run.engine.run()
    return run


def _combo_id(e, a, d, w):
    return f"{e.value}-{a.value}-{'dedup' if d else 'nodedup'}-{'wt' if w else 'top'}"


COMBOS = list(itertools.product(Eviction, Admission, (False, True), (False, True)))


def scenarios(eviction, admission, dedup, write_through):
    """(config, seed): a burst on three prefixes too big for the HBM tier (many lookups wait for
    one computation, then resolve to a lower tier together), then the random scenarios."""
    hbm = KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=0.1 * GB,
                     bandwidth_bytes_per_s=3000 * GB)
    yield burst_config(replicas=2, tiers=(hbm, dram(cap_gb=0.3), remote_tier(0.5)),
                       write_through=write_through, eviction=eviction, admission=admission,
                       dedup=dedup, n=40, num_prefixes=3), 0
    for seed in SEEDS:
        yield random_config(seed, eviction, admission, dedup, write_through), seed


@pytest.mark.parametrize("eviction,admission,dedup,write_through", [
    pytest.param(*c, id=_combo_id(*c)) for c in COMBOS])
def test_store_conserves_requests_lookups_bytes_and_blocks(eviction, admission, dedup,
                                                           write_through):
    exercised = np.zeros(4)  # misses, hits, victim bytes, lower-tier hits
    for cfg, seed in scenarios(eviction, admission, dedup, write_through):
        run = run_checked(cfg, seed)
        check_final(cfg, run)
        store = run.stores["llm"]
        exercised += (store.counts[1], sum(s.hits for s in store.stats),
                      sum(s.victim_bytes for s in store.stats),
                      sum(s.hits for s in store.stats if s.kind != "hbm"))
    # the scenarios must exercise the store: misses, hits (also below HBM) and evictions
    assert (exercised > 0).all(), exercised


@pytest.mark.parametrize("admission", list(Admission), ids=lambda a: a.value)
@pytest.mark.parametrize("write_through", (False, True), ids=("top", "wt"))
def test_dedup_conservation_where_woken_waiters_hit_the_top_tier(admission, write_through):
    """dedup_inflight on with LRU, every prefix fitting the HBM tier: lookups must actually wait
    for in-flight prefixes, and everything is still conserved."""
    waits = 0
    for seed in SEEDS:
        cfg = random_config(seed, Eviction.LRU, admission, True, write_through,
                            prefix_max_tokens=2000)
        run = run_checked(cfg, seed)
        check_final(cfg, run)
        waits += run.stores["llm"].counts[2]
    assert waits > 0, "no lookup ever waited for an in-flight prefix"


# --- regression: waiters woken onto a lower tier (once a KeyError in KVStore._fetched) ----------
def burst_config(*, replicas: int, tiers, write_through: bool, n: int = 24,
                 eviction: Eviction = Eviction.LRU, admission: Admission = Admission.ALWAYS,
                 dedup: bool = True, prefix_tokens: int = 1000, num_prefixes: int = 1,
                 rate_per_s: float = 20_000.0) -> SimConfig:
    """``n`` requests for ``num_prefixes`` prefixes (uniform) arriving at ``rate_per_s``: with
    the default, all within ~1 ms, so they look a prefix up while its first request computes it."""
    store = KVStoreSpec(pool="llm", tiers=tuple(tiers), eviction=eviction, admission=admission,
                        dedup_inflight=dedup, write_through=write_through)
    pool = PoolSpec(name="llm", model=LLAMA_8B, hardware=H100, num_replicas=replicas,
                    scheduler=SchedulerSpec(policy=BatchPolicy.CHUNKED, chunk_size_tokens=2048))
    rt = RequestTypeSpec(name="ctx", plan=(Stage(kind=StageKind.KV_RETRIEVAL, pool="llm"),
                                           Stage(kind=StageKind.GENERATE, pool="llm")),
                         prompt_tokens=lengths("fixed", 50), output_tokens=lengths("fixed", 8),
                         prefix=PrefixSpec(num_prefixes=num_prefixes, zipf_s=0.0,
                                           prefix_tokens=lengths("fixed", prefix_tokens)))
    return SimConfig(pools=(pool,), workload=WorkloadSpec(
        num_requests=n, arrival=ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=rate_per_s),
        request_types=(rt,)), kv_stores=(store,))


def _finish(cfg: SimConfig) -> _Run:
    run = _Run(cfg, 0)
    run.start()
    run.engine.run()
    check_final(cfg, run)
    return run


def test_burst_on_one_prefix_that_fits_hbm_dedups_cleanly():
    """Control for the reproducers below: the same burst with a prefix that fits HBM."""
    hbm = KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=1 * GB,
                     bandwidth_bytes_per_s=3000 * GB)
    run = _finish(burst_config(replicas=1, tiers=(hbm, dram(cap_gb=2)), write_through=False))
    lookups, misses, waits = run.stores["llm"].counts[:3]
    assert misses == 1 and waits == lookups - 1 == 23


def test_waiters_for_a_prefix_too_big_for_hbm_each_read_it_from_dram():
    """1 replica; the prefix (1000 tokens = 131 MB) is larger than the HBM tier (0.1 GB), so its
    computed KV lands in DRAM and the 23 requests that waited for the computation all resolve to
    a DRAM hit at once. Every request finishes, and each of the 23 reads the prefix from DRAM
    (it can never be promoted)."""
    hbm = KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=0.1 * GB,
                     bandwidth_bytes_per_s=3000 * GB)
    run = _finish(burst_config(replicas=1, tiers=(hbm, dram(cap_gb=2)), write_through=False))
    store = run.stores["llm"]
    prefix_bytes = 1000 * LLAMA_8B.kv_bytes_per_token(run.config.pools[0].kv_dtype)
    assert store.counts[:2] == [24, 1] and store.counts[2] >= 23
    assert store.stats[0].hits == 0 and store.stats[0].bytes_written == 0
    assert store.stats[1].hits == 23
    assert store.stats[1].bytes_read == pytest.approx(23 * prefix_bytes)


def test_write_through_waiters_on_another_replica_share_one_fetch():
    """2 replicas (round robin) sharing a cluster tier with write_through: the requests on
    replica 1 wait for the computation on replica 0 (they share its store target, the cluster
    copy), then resolve to a cluster-tier hit together: one fetch into replica 1's HBM serves
    them all (the others wait for it and hit HBM), and replica 0's waiters hit its HBM copy."""
    hbm = KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=1 * GB,
                     bandwidth_bytes_per_s=3000 * GB)
    shared = dram(name="shared", cap_gb=4, domain=Domain.CLUSTER, shared=True)
    run = _finish(burst_config(replicas=2, tiers=(hbm, shared), write_through=True))
    store = run.stores["llm"]
    prefix_bytes = 1000 * LLAMA_8B.kv_bytes_per_token(run.config.pools[0].kv_dtype)
    assert store.counts[:3] == [24, 1, 23]
    assert store.stats[1].hits == 1 and store.stats[0].hits == 22
    assert store.stats[1].bytes_read == pytest.approx(prefix_bytes)
    assert {r.replica for r in run.collector.completed} == {0, 1}


def test_lfu_burst_on_two_prefixes_that_do_not_fit_hbm_together():
    """LFU, 1 replica, two 0.39 GB prefixes and a 0.5 GB HBM tier (only one fits): 60 requests
    within 30 ms. Each prefix is computed once, every other lookup waits for it, and every
    request finishes whichever copy (HBM or DRAM) its waiters end up reading."""
    hbm = KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=0.5 * GB,
                     bandwidth_bytes_per_s=3000 * GB)
    run = _finish(burst_config(replicas=1, tiers=(hbm, dram(cap_gb=4)), write_through=False,
                               n=60, eviction=Eviction.LFU, prefix_tokens=3000, num_prefixes=2,
                               rate_per_s=2_000.0))
    assert run.stores["llm"].counts[:3] == [60, 2, 58]
