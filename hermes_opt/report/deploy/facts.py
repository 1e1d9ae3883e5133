"""What a deployment artifact needs beyond the stored deployment record: each LLM pool's model id,
KV block size, memory split, prefix-KV store and router, the pools' hand-off links, and the
workload and SLOs that were simulated. The record (``compose.candidate``) holds what the report's
tables need; these facts live in the composed config, so the artifacts compose each of the few
configurations they are written for once (the report's tables never do; docs/deploy.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hermes_opt.compose import catalog
from hermes_opt.compose.candidate import compose
from hermes_opt.report.deploy.engine_args import PoolFacts, Tier
from sim.config import LLM_ROLES, PoolSpec, SimConfig
from sim.errors import ConfigError
from sim.hardware.memory import kv_bytes_per_token_per_device
from sim.kvstore.specs import Domain, KVStoreSpec, TierKind
from sim.pipeline.disaggregation import handoff_path, link_between
from sim.request import StageKind
from sim.workload.spec import LengthSpec

HOST_TIERS = (TierKind.DRAM, TierKind.LPDDR, TierKind.CXL)  # host memory next to the GPUs


@dataclass(frozen=True, slots=True)
class Facts:
    pools: dict[str, PoolFacts]  # by pool name, LLM pools only
    links: list[dict[str, Any]]  # pool-to-pool hand-off links (disaggregated KV transfer)
    workload: dict[str, Any]
    slo: dict[str, Any]


def of_overrides(overrides: list[str]) -> Facts:
    """Compose the configuration once and read its facts; one ConfigError if it no longer
    composes (a catalog entry changed since the study ran)."""
    candidate = compose(overrides)
    return of_config(candidate.config)


def of_config(config: SimConfig) -> Facts:
    stores = {store.pool: store for store in config.kv_stores}
    pools = {p.name: pool_facts(p, stores.get(p.name)) for p in config.pools
             if p.role in LLM_ROLES and p.model is not None}
    return Facts(pools, handoffs(config), workload(config), slo(config))


def handoffs(config: SimConfig) -> list[dict[str, Any]]:
    """The prefill -> decode KV hand-off links the plans use, configured or the simulator's
    default path (``sim.pipeline.disaggregation.link_between``): the network the KV connector
    must have to match the simulation."""
    out: dict[str, dict[str, Any]] = {}
    for rt in config.workload.request_types:
        for a, b in zip(rt.plan, rt.plan[1:]):
            if a.kind is StageKind.PREFILL and a.pool != b.pool:
                src, dst = config.pool(a.pool), config.pool(b.pool)
                link = link_between(config.links, src, dst)
                configured = link in config.links
                # default path: per prefill worker, over NVLink/xGMI or the NICs
                out[link.name] = {"name": link.name, "from": a.pool, "to": b.pool,
                                  "bandwidth_gb_per_s": link.bandwidth_bytes_per_s / 1e9,
                                  "latency_us": round(link.latency_s * 1e6, 3),
                                  "configured": configured,
                                  "path": "configured" if configured else handoff_path(src, dst)[0]}
    return [out[name] for name in sorted(out)]


def model_id(pool: PoolSpec) -> str:
    """The Hugging Face id of the pool's model (the catalog's ``hf_id``), else its name."""
    name = pool.model.name if pool.model is not None else ""
    try:
        return str(catalog.entry("model", name).get("hf_id") or name)
    except ConfigError:  # a model given inline rather than by catalog name
        return name


def pool_facts(pool: PoolSpec, store: KVStoreSpec | None) -> PoolFacts:
    sched = pool.scheduler
    host = disk = None
    if store is not None:
        for tier in store.tiers:
            if tier.kind is TierKind.HBM:
                continue
            made = _tier(pool, store, tier)
            if tier.kind in HOST_TIERS and host is None:
                host = made
            elif tier.kind not in HOST_TIERS and disk is None:
                disk = made
    return PoolFacts(
        model_id=model_id(pool), block_size_tokens=sched.block_size_tokens,
        static_fraction=sched.gpu_memory_utilization - sched.activation_reserve_fraction,
        prefix_caching=store is not None, host_tier=host, disk_tier=disk,
        eviction=store.eviction.value if store is not None else "lru",
        admission=store.admission.value if store is not None else "always",
        router=pool.router.value)


def _tier(pool: PoolSpec, store: KVStoreSpec, tier: Any) -> Tier:
    """The tier's capacity per replica: one copy per sharing domain, divided among the replicas
    that share it (a per-device capacity times the replica's devices)."""
    devices = pool.tp * pool.pp
    per_copy = tier.capacity_bytes * (devices if tier.per_device else 1)
    sharing = {Domain.REPLICA: 1, Domain.NODE: store.node_replicas,
               Domain.RACK: store.rack_replicas, Domain.CLUSTER: pool.num_replicas}[tier.domain]
    per_replica = per_copy / max(1, min(sharing, pool.num_replicas))
    block_bytes = (kv_bytes_per_token_per_device(pool.model, pool.tp, pool.pp, pool.kv_dtype,
                                                 attention_dp=pool.attention_dp)
                   * devices * pool.scheduler.block_size_tokens)
    return Tier(kind=tier.kind.value, bytes_per_replica=per_replica,
                blocks_per_replica=int(per_replica // block_bytes) if block_bytes else 0)


def lengths(spec: LengthSpec) -> dict[str, Any]:
    return {"kind": spec.kind.value, "mean": spec.mean, "std": spec.std,
            "min_tokens": spec.min_tokens, "max_tokens": spec.max_tokens}


def workload(config: SimConfig) -> dict[str, Any]:
    """The simulated workload in plain terms (what the benchmark replays)."""
    spec = config.workload
    arrival = spec.arrival
    types = []
    for rt in spec.request_types:
        prefix = None
        if rt.prefix is not None:
            prefix = {"pattern": rt.prefix.pattern, "num_prefixes": rt.prefix.num_prefixes,
                      "zipf_s": rt.prefix.zipf_s, "prefix_tokens": lengths(rt.prefix.prefix_tokens),
                      "clients": rt.prefix.clients, "turns": rt.prefix.turns}
        types.append({"name": rt.name, "weight": rt.weight,
                      "stages": [f"{s.kind.value}@{s.pool}" for s in rt.plan],
                      "prompt_tokens": lengths(rt.prompt_tokens),
                      "output_tokens": lengths(rt.output_tokens), "prefix": prefix,
                      "reasoning": rt.reasoning is not None,
                      "own_arrival": rt.arrival is not None})
    rate = arrival.rate_per_s if arrival.kind.value in ("poisson", "gamma") else None
    return {"num_requests": spec.num_requests,
            "arrival": {"kind": arrival.kind.value, "rate_per_s": rate,
                        "cv": arrival.cv if arrival.kind.value == "gamma" else None,
                        "concurrency": arrival.concurrency
                        if arrival.kind.value == "closed_loop" else None,
                        "think_time_s": arrival.think_time_s
                        if arrival.kind.value == "closed_loop" else None,
                        "time_scale": arrival.time_scale
                        if arrival.kind.value == "trace" else None},
            "trace": spec.trace is not None, "request_types": types}


def slo(config: SimConfig) -> dict[str, Any]:
    out = {"ttft_ms": config.slo.ttft_ms, "tpot_ms": config.slo.tpot_ms,
           "e2e_ms": config.slo.e2e_ms}
    return {k: (None if v is None or (isinstance(v, float) and math.isinf(v)) else v)
            for k, v in out.items()}
