"""Behaviour of the tiered prefix-KV store that tells its knobs apart: in-flight deduplication,
sharing domains, contention on a tier's device and links, client affinity, admission, eviction
policies, the prefix access patterns, and a kv_retrieval stage without a store."""

from __future__ import annotations

from collections import Counter, defaultdict

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
    simulate,
)
from sim.engine import PRIORITY_ARRIVAL, Engine
from sim.kvstore.policies import Admission, Eviction
from sim.kvstore.specs import ClientAffinity, Domain, KVLinkSpec, KVStoreSpec, KVTierSpec, TierKind
from sim.kvstore.store import KVStore
from sim.pipeline.specs import PrefixSpec
from sim.pipeline.workload import draw_pipeline
from sim.random_streams import stable_hash
from sim.request import Request
from sim.simulation import _Run

GB = 1e9
H100 = to_sim.hardware_spec(catalog.entry("hardware", "h100_sxm"))
LLAMA_8B = to_sim.model_spec(catalog.entry("model", "llama3_1_8b"))
KV_PER_TOKEN = LLAMA_8B.kv_bytes_per_token(
    PoolSpec(name="x", model=LLAMA_8B, hardware=H100).kv_dtype)
PLAN = (Stage(kind=StageKind.KV_RETRIEVAL, pool="llm"), Stage(kind=StageKind.GENERATE, pool="llm"))


def fixed(n: int) -> LengthSpec:
    return LengthSpec(kind=LengthKind.FIXED, mean=n)


def hbm(cap_gb: float) -> KVTierSpec:
    return KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=cap_gb * GB,
                      bandwidth_bytes_per_s=3000 * GB)


def dram(cap_gb: float = 8, domain: Domain = Domain.REPLICA, name: str = "dram",
         device_gb_s: float = 60, link_gb_s: float = 25, shared: bool = False,
         latency_s: float = 0.0) -> KVTierSpec:
    return KVTierSpec(name=name, kind=TierKind.DRAM, capacity_bytes=cap_gb * GB,
                      bandwidth_bytes_per_s=device_gb_s * GB, latency_s=latency_s, domain=domain,
                      link=KVLinkSpec(bandwidth_bytes_per_s=link_gb_s * GB, shared=shared))


def config(tiers, *, types=None, prefix: PrefixSpec | None = None, replicas: int = 1,
           n: int = 200, rate: float = 5.0, record: bool = False, **store_kw) -> SimConfig:
    pool = PoolSpec(name="llm", model=LLAMA_8B, hardware=H100, num_replicas=replicas,
                    scheduler=SchedulerSpec(policy=BatchPolicy.CHUNKED, chunk_size_tokens=2048))
    if types is None:
        types = (RequestTypeSpec(name="ctx", plan=PLAN, prompt_tokens=fixed(64),
                                 output_tokens=fixed(16), prefix=prefix),)
    stores = (KVStoreSpec(pool="llm", tiers=tuple(tiers), **store_kw),) if tiers else ()
    return SimConfig(pools=(pool,), workload=WorkloadSpec(
        num_requests=n, arrival=ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=rate),
        request_types=tuple(types)), kv_stores=stores, record_requests=record)


def finished(cfg: SimConfig, seed: int = 0) -> _Run:
    run = _Run(cfg, seed)
    run.start()
    run.engine.run()
    done = run.collector.completed + run.collector.rejected
    assert sorted(r.id for r in done) == list(range(cfg.workload.num_requests))
    return run


# --- in-flight deduplication -----------------------------------------------------------------
def test_inflight_dedup_raises_the_hit_rate_of_a_hot_burst():
    """8 shared prefixes, 200 requests at 200/s on 2 replicas (many look a prefix up while its
    first request is still computing it). With dedup_inflight they wait and hit; without, they
    miss and recompute it too."""
    prefix = PrefixSpec(num_prefixes=8, zipf_s=0.5, prefix_tokens=fixed(2000))
    rates, waits = {}, {}
    for dedup in (False, True):
        s = simulate(config((hbm(4), dram(8)), prefix=prefix, replicas=2, rate=200.0,
                            dedup_inflight=dedup), 0).summary
        assert s["requests_completed"] == 200
        rates[dedup] = s["kv_lookups"]["llm"]["hit_rate"]
        waits[dedup] = s["kv_lookups"]["llm"]["inflight_waits"]
    print(f"\nhot burst hit rate: dedup_inflight=False {rates[False]:.3f}, "
          f"True {rates[True]:.3f} (inflight_waits {waits[False]} / {waits[True]})")
    assert rates[True] > rates[False] + 0.1
    assert waits[False] == 0 < waits[True]
    # with dedup each prefix is computed at most once per replica (HBM copy): <= 16 misses
    assert (1 - rates[True]) * 200 <= 16 + 1e-9


# --- sharing domains -------------------------------------------------------------------------
def _hits_on_other_replicas(run: _Run) -> int:
    """Hits on a replica that never computed that prefix itself (before the hit)."""
    computed_on: dict[int, set[int]] = defaultdict(set)
    other = 0
    for req in sorted(run.collector.completed, key=lambda r: r.id):
        if req.cached_tokens == 0:
            computed_on[req.prefix_id].add(req.replica)
        elif req.replica not in computed_on[req.prefix_id]:
            other += 1
    return other


@pytest.mark.parametrize("kind", ["hbm_plus_shared", "shared_only"])
def test_a_cluster_domain_tier_shares_a_prefix_between_replicas(kind):
    """Pattern shared, 10 prefixes, 4 replicas (round robin), 2 requests/s (no overlap): with a
    cluster-domain tier a prefix computed on one replica is hit on the others; with the same tier
    in the replica domain each replica computes it itself."""
    prefix = PrefixSpec(num_prefixes=10, zipf_s=0.0, prefix_tokens=fixed(1500))
    result = {}
    for domain in (Domain.CLUSTER, Domain.REPLICA):
        tier = dram(16, domain=domain, name="shared", shared=domain is Domain.CLUSTER)
        tiers = (hbm(4), tier) if kind == "hbm_plus_shared" else (tier,)
        run = finished(config(tiers, prefix=prefix, replicas=4, rate=2.0, n=160,
                              write_through=True))
        store = run.stores["llm"]
        result[domain] = (store.counts[1], store.stats[-1].hits, _hits_on_other_replicas(run))
    miss_c, hits_c, other_c = result[Domain.CLUSTER]
    miss_r, hits_r, other_r = result[Domain.REPLICA]
    assert miss_c <= 10 < miss_r  # each prefix computed once in the cluster, up to 4x per replica
    assert hits_c > hits_r and other_c > 0 and other_r == 0


# --- contention on a tier's device and links --------------------------------------------------
def _store(tier: KVTierSpec, replicas: int = 2, **kw):
    engine = Engine()
    spec = KVStoreSpec(pool="llm", tiers=(tier,), node_replicas=replicas, **kw)
    return engine, KVStore(engine, spec, replicas, 1.0, np.random.default_rng(0), None, 0)


def _fetch_times(tier: KVTierSpec, readers: list[int], num_bytes: float = 1e9) -> list[float]:
    """Store one prefix per reader (tier 0 of a node-domain store), let the writes finish, then
    fetch them all at t=10 s from the given replicas; return each fetch's duration."""
    engine, store = _store(tier)
    reqs = []
    for i, replica in enumerate(readers):
        req = Request(i, 0.0, 10, 1, PLAN)
        req.prefix_id, req.prefix_tokens = 100 + i, int(num_bytes)
        store.store(req, replica)
        reqs.append(req)
    engine.run()
    assert all(store.holds(r.prefix_id, rep) == 0 for r, rep in zip(reqs, readers))
    done: dict[int, float] = {}
    for req, replica in zip(reqs, readers):
        engine.schedule(10.0, store.fetch, req, replica,
                        lambda r: done.setdefault(r.id, engine.now_s), priority=PRIORITY_ARRIVAL)
    engine.run()
    assert all(r.cached_tokens == r.prefix_tokens for r in reqs)
    return [done[r.id] - 10.0 for r in reqs]


def test_two_readers_of_a_node_tier_share_its_device():
    """Node-domain DRAM, device 10 GB/s, per-client links of 8 GB/s (sum 16 > 10): one 1 GB
    fetch takes 1/8 s; two at once from two replicas get 5 GB/s each (1/5 s)."""
    tier = dram(4, domain=Domain.NODE, device_gb_s=10, link_gb_s=8)
    (solo,) = _fetch_times(tier, [0])
    both = _fetch_times(tier, [0, 1])
    assert solo == pytest.approx(1 / 8, rel=1e-9)
    assert both == pytest.approx([1 / 5, 1 / 5], rel=1e-9)
    assert min(both) > solo


def test_a_shared_link_is_slower_than_per_client_links():
    """Device 100 GB/s, link 8 GB/s: per client, two concurrent fetches each get 8 GB/s (as
    alone); over one shared link they get 4 GB/s each."""
    per_client = _fetch_times(dram(4, domain=Domain.NODE, device_gb_s=100, link_gb_s=8), [0, 1])
    shared = _fetch_times(dram(4, domain=Domain.NODE, device_gb_s=100, link_gb_s=8, shared=True),
                          [0, 1])
    assert per_client == pytest.approx([1 / 8, 1 / 8], rel=1e-9)
    assert shared == pytest.approx([1 / 4, 1 / 4], rel=1e-9)


def test_latencies_of_device_and_link_add_up():
    tier = dram(4, domain=Domain.NODE, device_gb_s=10, link_gb_s=8, latency_s=1e-3)
    tier = KVTierSpec(name=tier.name, kind=tier.kind, capacity_bytes=tier.capacity_bytes,
                      bandwidth_bytes_per_s=tier.bandwidth_bytes_per_s, latency_s=1e-3,
                      domain=tier.domain,
                      link=KVLinkSpec(bandwidth_bytes_per_s=8 * GB, latency_s=2e-3))
    (solo,) = _fetch_times(tier, [1])
    assert solo == pytest.approx(3e-3 + 1 / 8, rel=1e-9)


# --- client affinity -------------------------------------------------------------------------
def _rows_and_clients(cfg: SimConfig, seed: int = 0):
    result = simulate(cfg, seed)
    clients = draw_pipeline(cfg.workload, seed).client
    return result.requests, clients


def test_pin_serves_every_request_of_client_c_on_replica_c_mod_r():
    prefix = PrefixSpec(num_prefixes=20, prefix_tokens=fixed(500), clients=6)
    cfg = config((hbm(2), dram(4)), prefix=prefix, replicas=4, rate=20.0, n=150, record=True,
                 client_affinity=ClientAffinity.PIN)
    rows, clients = _rows_and_clients(cfg)
    assert len(rows) == 150 and set(clients.tolist()) == set(range(6))
    for row in rows:
        assert row["status"] == "completed"
        assert row["pool_replica"] == f"llm/{clients[row['id']] % 4}", row


def test_prefer_keeps_requests_in_the_home_replicas_widest_domain():
    """node_replicas=2 (a node DRAM tier): client c's requests run on replica c % 4 or its node
    neighbour, never on the other node; without affinity (round robin) they do."""
    prefix = PrefixSpec(num_prefixes=20, prefix_tokens=fixed(500), clients=6)
    tiers = (hbm(2), dram(4, domain=Domain.NODE))
    for affinity in (ClientAffinity.PREFER, ClientAffinity.NONE):
        cfg = config(tiers, prefix=prefix, replicas=4, rate=20.0, n=150, record=True,
                     client_affinity=affinity, node_replicas=2)
        rows, clients = _rows_and_clients(cfg)
        away = sum(int(row["pool_replica"].split("/")[1]) // 2 != clients[row["id"]] % 4 // 2
                   for row in rows)
        if affinity is ClientAffinity.PREFER:
            assert away == 0
        else:
            assert away > 0


# --- admission ---------------------------------------------------------------------------------
def test_second_access_stores_nothing_when_every_prefix_is_used_once():
    """Sessions of one turn: every request has a new prefix. ``second_access`` stores none of
    them; ``always`` writes every computed prefix into the top tier."""
    prefix = PrefixSpec(num_prefixes=4, pattern="sessions", turns=1, prefix_tokens=fixed(800))
    written = {}
    for admission in Admission:
        s = simulate(config((hbm(2), dram(4)), prefix=prefix, n=120, rate=10.0,
                            admission=admission), 0).summary
        assert s["kv_lookups"]["llm"]["misses"] == 120
        written[admission] = (s["kv_tiers"]["llm/hbm"]["bytes_written"],
                              s["kv_tiers"]["llm/dram"]["bytes_written"])
    assert written[Admission.SECOND_ACCESS] == (0.0, 0.0)
    assert written[Admission.ALWAYS][0] == pytest.approx(120 * 800 * KV_PER_TOKEN)


def test_second_access_stores_a_prefix_from_its_second_lookup():
    prefix = PrefixSpec(num_prefixes=3, zipf_s=0.0, prefix_tokens=fixed(800))
    s = simulate(config((hbm(2),), prefix=prefix, n=60, rate=2.0,
                        admission=Admission.SECOND_ACCESS), 0).summary
    # each prefix: the 1st lookup misses and is not stored, the 2nd misses and is, then hits
    assert s["kv_lookups"]["llm"]["misses"] == 6
    assert s["kv_tiers"]["llm/hbm"]["bytes_written"] == pytest.approx(3 * 800 * KV_PER_TOKEN)


# --- eviction policies ---------------------------------------------------------------------------
def _scan_run(eviction: Eviction, seed: int) -> tuple[float, float, int]:
    """3 hot prefixes (30% of requests) among one-hit wonders (sessions of one turn), one
    replica, an HBM-only store that holds 4 prefixes. Returns (hit rate, hot hit rate, hot
    prefixes resident at the end)."""
    pt = 1000
    kw = dict(plan=PLAN, prompt_tokens=fixed(32), output_tokens=fixed(4))
    types = (RequestTypeSpec(name="hot", weight=0.3, prefix=PrefixSpec(
                num_prefixes=3, zipf_s=0.0, prefix_tokens=fixed(pt)), **kw),
             RequestTypeSpec(name="scan", weight=0.7, prefix=PrefixSpec(
                 num_prefixes=1, pattern="sessions", turns=1, prefix_tokens=fixed(pt)), **kw))
    tier = KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=4 * pt * KV_PER_TOKEN + 1,
                      bandwidth_bytes_per_s=3000 * GB)
    run = finished(config((tier,), types=types, n=400, rate=5.0, eviction=eviction,
                          dedup_inflight=False), seed)
    store = run.stores["llm"]
    hot = [r for r in run.collector.completed if r.type_name == "hot"]
    resident = set(store.copies[0][0].policy.keys())
    hot_hit_rate = sum(bool(r.cached_tokens) for r in hot) / len(hot)
    return (1 - store.counts[1] / store.counts[0], hot_hit_rate,
            len({r.prefix_id for r in hot} & resident))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scan_resistant_policies_keep_the_hot_prefixes(seed):
    runs = {e: _scan_run(e, seed) for e in Eviction}
    print(f"\nscan workload seed {seed}: " + ", ".join(
        f"{e.value} hit rate {r[0]:.3f} (hot {r[1]:.3f})" for e, r in runs.items()))
    lru, lfu, s3 = runs[Eviction.LRU], runs[Eviction.LFU], runs[Eviction.S3FIFO]
    assert s3[0] >= lru[0] + 0.05  # one-hit wonders flush LRU's hot prefixes, not S3-FIFO's
    assert lfu[2] == 3 and lfu[1] > 0.8  # LFU keeps all three hot prefixes resident
    assert s3[1] > 0.8 and lru[1] < 0.6


def _hbm_store(eviction: Eviction, capacity_items: int = 3):
    engine = Engine()
    spec = KVStoreSpec(pool="llm", tiers=(KVTierSpec(
        name="hbm", kind=TierKind.HBM, capacity_bytes=capacity_items * 1e6,
        bandwidth_bytes_per_s=3000 * GB),), eviction=eviction, dedup_inflight=False)
    return KVStore(engine, spec, 1, 1.0, np.random.default_rng(0), None, 0)


def _req(i: int, prefix: int) -> Request:
    req = Request(i, 0.0, 10, 1, PLAN)
    req.prefix_id, req.prefix_tokens = prefix, 1_000_000  # 1 MB at 1 byte per token
    return req


@pytest.mark.parametrize("eviction", [
    Eviction.LRU,
    Eviction.LFU,
    Eviction.S3FIFO,
], ids=lambda e: e.value)
def test_a_newly_computed_prefix_enters_a_full_top_tier(eviction):
    """A full HBM tier of 3 prefixes, each hit once; a 4th prefix is computed and stored: it is
    in HBM afterwards (one of the older ones made room), whatever the eviction policy."""
    store = _hbm_store(eviction)
    for i in range(3):
        store.store(_req(i, i), 0)
    for i in range(3):
        req = _req(10 + i, i)
        store.fetch(req, 0, lambda r: None)
        assert req.cached_tokens == req.prefix_tokens
    store.store(_req(20, 3), 0)
    resident = set(store.copies[0][0].policy.keys())
    assert len(resident) == 3 and 3 in resident, resident


# --- prefix access patterns ---------------------------------------------------------------------
def _draws(prefix: PrefixSpec, n: int = 600, seed: int = 4):
    cfg = config((hbm(2),), prefix=prefix, n=n)
    d = draw_pipeline(cfg.workload, seed)
    return d.prefix_id, d.prefix_tokens, d.client


def test_sessions_ids_repeat_turns_times_then_change():
    turns, open_sessions, clients = 5, 7, 4
    ids, tokens, client = _draws(PrefixSpec(num_prefixes=open_sessions, pattern="sessions",
                                            turns=turns, clients=clients,
                                            prefix_tokens=LengthSpec(kind=LengthKind.LOGNORMAL,
                                                                     mean=900, std=400)))
    counts = Counter(ids.tolist())
    last_seen = {pid: i for i, pid in enumerate(ids.tolist())}
    closed = [pid for pid, c in counts.items() if c == turns]
    assert all(c <= turns for c in counts.values())
    assert len(counts) - len(closed) <= open_sessions  # only sessions still open are short
    # a session that is not among the last open ones was used exactly `turns` times
    for pid, c in counts.items():
        if c < turns:
            assert last_seen[pid] >= len(ids) - open_sessions * turns
    # open_sessions ids from the start, and each closed session opens exactly one new id
    raw = ids - (stable_hash("ctx") << 30)
    assert len(closed) >= 50 and set(raw.tolist()) <= set(range(open_sessions + len(closed)))
    assert len(counts) >= len(closed)
    # at most open_sessions sessions interleave at any time
    live = set()
    for i, pid in enumerate(ids.tolist()):
        live.add(pid)
        live = {p for p in live if last_seen[p] >= i}
        assert len(live) <= open_sessions
    # a session has one length and one client, in 0..clients-1
    by_id_len, by_id_client = defaultdict(set), defaultdict(set)
    for pid, t, c in zip(ids.tolist(), tokens.tolist(), client.tolist()):
        by_id_len[pid].add(t)
        by_id_client[pid].add(c)
    assert all(len(v) == 1 for v in by_id_len.values())
    assert all(len(v) == 1 for v in by_id_client.values())
    assert set(client.tolist()) <= set(range(clients)) and len(set(client.tolist())) == clients


def test_private_clients_never_share_a_prefix():
    clients = 5
    ids, tokens, client = _draws(PrefixSpec(num_prefixes=6, zipf_s=0.8, pattern="private",
                                            clients=clients, prefix_tokens=fixed(300)))
    owners = defaultdict(set)
    for pid, c in zip(ids.tolist(), client.tolist()):
        owners[pid].add(c)
    assert all(len(o) == 1 for o in owners.values())
    assert set(client.tolist()) == set(range(clients))
    per_client = Counter(next(iter(o)) for o in owners.values())
    assert max(per_client.values()) <= 6  # each client draws from its own 6 ids
    assert sum(counts > 1 for counts in Counter(ids.tolist()).values()) > 0  # ids do repeat


def test_shared_ids_are_read_by_several_clients():
    clients = 5
    ids, _, client = _draws(PrefixSpec(num_prefixes=6, zipf_s=0.8, pattern="shared",
                                       clients=clients, prefix_tokens=fixed(300)))
    owners = defaultdict(set)
    for pid, c in zip(ids.tolist(), client.tolist()):
        owners[pid].add(c)
    assert len(owners) <= 6 and max(len(o) for o in owners.values()) == clients
    assert set(client.tolist()) == set(range(clients))


def test_without_clients_requests_have_no_client():
    ids, _, client = _draws(PrefixSpec(num_prefixes=6, prefix_tokens=fixed(300)))
    assert client is None and (ids >= 0).all()


# --- no store -------------------------------------------------------------------------------
def test_kv_retrieval_without_a_store_recomputes_every_prefix():
    prefix = PrefixSpec(num_prefixes=3, zipf_s=0.0, prefix_tokens=fixed(800))
    cfg = config((), prefix=prefix, n=80, rate=10.0, record=True)
    run = finished(cfg)
    assert not run.stores and len(run.collector.completed) == 80
    assert all(r.cached_tokens == 0 and r.prefix_tokens == 800 for r in run.collector.completed)
    result = simulate(cfg, 0)
    s = result.summary
    assert s["kv_tiers"] == {} and s["kv_lookups"] == {}
    assert all(row["stages"].startswith("kv_retrieval@llm:") for row in result.requests)
    # the same workload with a store hits (so the store-less run really recomputed)
    with_store = simulate(config((hbm(2),), prefix=prefix, n=80, rate=10.0), 0).summary
    assert with_store["kv_lookups"]["llm"]["hit_rate"] > 0.9
    assert with_store["ttft_ms"]["mean"] < s["ttft_ms"]["mean"]
