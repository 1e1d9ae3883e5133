"""One candidate deployment, composed once: overrides -> Hydra config -> ``sim.SimConfig``,
memory-checked and priced, with the deployment record every later stage reads.

A study trial, a screening decision, a simulation and the report all take this object (or the
record it stores), so nothing downstream composes again, parses a replay command or re-derives
the vendor and layout. A candidate does not depend on the workload seed: ``simulate(config,
seed)`` takes the seed, so one candidate serves every replicate of a trial.

The deployment record (``Candidate.deployment``, a plain JSON-able dict, also the ``deployment``
key of the ``hermes-sim`` JSON and of each stored trial) holds:

* ``vendor``: the one vendor of the model pools' accelerators, ``"mixed"``, or None when no
  model pool runs on an accelerator (CPU pools are infrastructure, not the vendor choice);
* ``layout``: one human line, ``"prefill 2 x h200 (1 replica of tp 2) + decode 6 x mi300x (6
  replicas of tp 1)"``;
* ``offered_rate_per_s``: the workload's arrival rate: a replayed trace's real rate (its
  requests over its span, after ``time_scale``), else the configured ``rate_per_s`` (None when
  the workload has none);
* ``traffic`` (trace replays only): what is replayed (``compose.traces.summary``: file, format,
  requests, span, rate, prompt and output length mean/p50/p90/max, shared prefixes);
* ``error_band``: the widest measured error band of its LLM pools' engine-efficiency entries
  ({median_pct, p90_pct, n, validated_on, pool}; docs/engines.md), None without the engine model;
* ``num_devices``, ``num_accelerators``;
* ``pools``: per pool its role, hardware, vendor, devices, replicas, parallelism, number formats,
  batching policy, cost model, calibration profile, ``price`` (``compose.pricing.price_record``:
  set, $/hour per unit, provider, product, date observed, kind, trust) and (LLM pools) the
  precision plan, the serving ``engine`` ("vllm 0.11"), its ``scheduler`` settings (max_num_seqs,
  max_batched_tokens, chunk_size_tokens, gpu_memory_utilization) and ``efficiency`` (the table
  entry used, its fallback step and error band).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from hermes_opt.compose import catalog, catalog_schema, pricing, to_sim, traces
from hermes_opt.compose.overrides import compose_overrides
from sim.config import LLM_ROLES, PoolSpec, SimConfig, WorkloadSpec
from sim.errors import ConfigError
from sim.hardware.memory import weight_bytes_per_device
from sim.hardware.specs import DeviceKind
from sim.roles import MODEL_ROLES
from sim.workload.spec import ArrivalKind

MIXED = "mixed"  # the vendor of a deployment whose model pools use more than one vendor


@dataclass(frozen=True, slots=True)
class Candidate:
    """A composed, validated, memory-checked and priced deployment (seed-independent)."""

    cfg: DictConfig  # the composed Hydra config (output paths, the price set)
    config: SimConfig
    cost: pricing.CostBreakdown
    deployment: dict[str, Any]


def compose(overrides: list[str] | tuple[str, ...]) -> Candidate:
    """The candidate ``hermes-sim <overrides>`` describes; every problem is one ConfigError."""
    choices = dict(o.split("=", 1) for o in overrides
                   if "=" in o and not o.startswith(("+", "~")) and "." not in o.split("=", 1)[0])
    return from_config(compose_overrides(list(overrides)), choices)


def from_config(cfg: DictConfig, choices: dict[str, str] | None = None) -> Candidate:
    """Build the simulator config once, check that every pool fits, price it and record it."""
    check_user_entries(cfg)
    output = cfg.get("output") or {}
    config = to_sim.sim_config(cfg, record_requests=bool(output.get("requests_path")),
                               record_trace=bool(output.get("trace_path")))
    for pool in config.pools:
        check_memory(pool)
    cost = pricing.deployment_cost(config, cfg.pricing)
    return Candidate(cfg=cfg, config=config, cost=cost,
                     deployment=record(config.pools, cfg, choices, config.workload))


def check_user_entries(cfg: DictConfig) -> None:
    """The main pool's hardware and model and the price set reach here from Hydra, not through
    ``catalog.entry``: check a user's file by the catalog schema before it is used (shipped
    entries are checked by the tests; the other pools' entries are read through the catalog)."""
    for group in catalog_schema.SCHEMAS:
        node = cfg.get(group)
        name = node.get("name") if isinstance(node, DictConfig) else None
        if isinstance(name, str) and catalog.source(group, name):
            catalog.entry(group, name)


def check_memory(pool: PoolSpec) -> None:
    """The simulator's own memory rules, applied before simulating: LLM pools need their weights
    plus at least one KV block per device; other model pools (embed, rerank, reward) their
    weights; CPU and retrieval pools hold no model. Other ConfigErrors the simulator raises while
    building a run (e.g. a KV tier too large) are still caught and reported as infeasible."""
    sched = pool.scheduler
    if pool.role in LLM_ROLES:
        pool.kv_capacity_blocks()
    elif pool.model is not None:
        usable = pool.hardware.memory_bytes * sched.gpu_memory_utilization
        weights = weight_bytes_per_device(pool.model, pool.tp, pool.pp, pool.weight_dtype)
        if weights > usable:
            raise ConfigError(f"{pool.field_path}: model {pool.model.name} does not fit: needs "
                              f"{weights / 1e9:.1f} GB per device, {pool.hardware.name} offers "
                              f"{usable / 1e9:.1f} GB")


# --- the deployment record -------------------------------------------------------------------
def is_accelerated_model_pool(pool: PoolSpec) -> bool:
    """Pools that decide the vendor and the layout line: a model served on an accelerator of its
    own (a stage colocated on an LLM pool's GPUs has none)."""
    return (pool.role in MODEL_ROLES and pool.hardware.kind is not DeviceKind.CPU
            and not pool.colocate_with)


def _vendor(hardware_name: str) -> str:
    try:
        return str(catalog.entry("hardware", hardware_name).get("vendor", "unknown"))
    except ConfigError:  # hardware given inline rather than by catalog name
        return "unknown"


def pool_record(pool: PoolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": pool.name, "role": pool.role.value, "hardware": pool.hardware.name,
        "vendor": _vendor(pool.hardware.name), "accelerated_model": is_accelerated_model_pool(pool),
        "devices": pool.num_devices, "replicas": pool.num_replicas, "tp": pool.tp, "pp": pool.pp,
        "ep": pool.ep, "attention_dp": pool.attention_dp,
        "model": pool.model.name if pool.model is not None else None,
        "weight_dtype": pool.weight_dtype.value, "kv_dtype": pool.kv_dtype.value,
        "batching": pool.scheduler.policy.value,
        "cost_model": getattr(pool.cost_model.kind, "value", str(pool.cost_model.kind)),
        "calibration": pool.cost_model.calibration or "none",
    }
    if pool.colocate_with:  # placement: colocated (its devices are the host's)
        out["colocated_on"] = pool.colocate_with
    if pool.batch_timeout_s:
        out["batch_timeout_ms"] = pool.batch_timeout_s * 1e3
    if pool.role in LLM_ROLES:
        out["precision"] = pool.precision.summary()
        out["engine"] = pool.engine or None
        sched = pool.scheduler  # the engine settings a buyer configures (the report's engine flags)
        out["scheduler"] = {"max_num_seqs": sched.max_num_seqs,
                            "max_batched_tokens": sched.max_batched_tokens,
                            "chunk_size_tokens": sched.chunk_size_tokens,
                            "gpu_memory_utilization": sched.gpu_memory_utilization}
        if sched.kv_capacity_factor != 1.0:  # a fitted profile's measured KV share (kept out else:
            out["scheduler"]["kv_capacity_factor"] = sched.kv_capacity_factor  # golden records)
        provenance = dict(pool.cost_model.provenance)
        if provenance:  # the engine-efficiency entry used, its fallback step and error band
            out["efficiency"] = provenance
        drafting = pool.spec_decoding
        if drafting.enabled:  # only when on, so records without it stay as they were
            out["spec_decoding"] = {
                "method": drafting.method.value, "draft_tokens": drafting.draft_tokens,
                "acceptance_per_position": list(drafting.acceptance_per_position[
                    :drafting.draft_tokens]),
                "acceptance_length": round(drafting.acceptance_length, 4),
                "draft_model": drafting.draft_model.name if drafting.draft_model else None,
                "source": drafting.source}
    return out


def widest_band(pools: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The deployment's error band: its LLM pools' widest (by p90) measured band, with the pool
    it comes from; None when no pool runs the engine model (calibration=none or a profile)."""
    bands = [{**p["efficiency"]["error_band"], "pool": p["name"]} for p in pools
             if (p.get("efficiency") or {}).get("error_band")]
    return max(bands, key=lambda b: (b.get("p90_pct") or 0, b.get("median_pct") or 0),
               default=None)


def layout_line(pools: list[dict[str, Any]]) -> str | None:
    """``"llm 2 x b200 (1 replica of tp 2)"``, one part per accelerated model pool; attention
    data-parallel replicas read ``"of attention-DP 8, ep 8"`` (DEP8 when ep equals the ranks)."""
    def shape(p: dict[str, Any]) -> str:
        if p.get("attention_dp"):
            return f"attention-DP {p['tp']}, ep {p['ep']}"
        return f"tp {p['tp']}"
    parts = [f"{p['name']} {p['devices']} x {p['hardware']} ({p['replicas']} "
             f"replica{'s' if p['replicas'] != 1 else ''} of {shape(p)})"
             for p in pools if p["accelerated_model"]]
    return " + ".join(parts) or None


def vendor_label(pools: list[dict[str, Any]]) -> str | None:
    vendors = list(dict.fromkeys(p["vendor"] for p in pools if p["accelerated_model"]))
    if not vendors:
        return None
    return vendors[0] if len(vendors) == 1 else MIXED


def offered_rate(cfg: DictConfig) -> float | None:
    """The configured arrival rate (requests/s); None when the workload states none."""
    try:
        return float(cfg.workload.arrival.rate_per_s)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def traffic(workload: WorkloadSpec | None) -> dict[str, Any] | None:
    """What a trace replay replays (None for a workload that draws its arrivals)."""
    if workload is None or workload.trace is None or workload.arrival.kind is not ArrivalKind.TRACE:
        return None
    return traces.summary(workload.trace, workload.num_requests, workload.arrival.time_scale)


def record(pool_specs: tuple[PoolSpec, ...], cfg: DictConfig,
           choices: dict[str, str] | None = None,
           workload: WorkloadSpec | None = None) -> dict[str, Any]:
    """The deployment record (module docstring) of a built config's pools; ``choices``: the
    config-group options it was composed with (``workload=mine``), for ``catalog_sources``;
    ``workload``: the built workload (a trace's real rate and lengths)."""
    pools = [pool_record(p) for p in pool_specs]
    replayed = traffic(workload)
    pricing_cfg = cfg.get("pricing")
    for pool in pools:  # where each pool's price comes from (None: the set does not price it)
        pool["price"] = pricing.price_record(pricing_cfg, pool["hardware"]) if pricing_cfg else None
    out = {"vendor": vendor_label(pools), "layout": layout_line(pools),
           "error_band": widest_band(pools),
           "offered_rate_per_s": replayed["rate_per_s"] if replayed else offered_rate(cfg),
           "num_devices": sum(p.num_devices for p in pool_specs),
           "num_accelerators": sum(p.num_accelerators for p in pool_specs),
           "pools": pools}
    if replayed:  # absent otherwise (the records of drawn workloads stay as they were)
        out["traffic"] = replayed
    sources = catalog_sources(pools, cfg, choices or {})
    if sources:  # absent when every entry is shipped (the records of shipped runs stay as they were)
        out["catalog_sources"] = sources
        if pricing_cfg is not None and f"pricing/{pricing_cfg.get('name')}" in sources:
            # a user's set is named by its own name, provider and date (shipped sets: the docs)
            out["price_set"] = {"name": str(pricing_cfg.name),
                                "provider": str(pricing_cfg.get("provider")),
                                "date": str(pricing_cfg.get("date")),
                                "source": sources[f"pricing/{pricing_cfg.name}"]}
    return out


def catalog_sources(pools: list[dict[str, Any]], cfg: DictConfig,
                    choices: dict[str, str]) -> dict[str, str]:
    """``"<group>/<name>" -> file`` for the catalog entries this deployment uses that come from
    a user catalog or a search directory rather than the package (catalog.source), so a result
    says which file a shadowing or new entry was read from: the pools' hardware, models and
    engines, the price set and profile by their names, and every group option chosen (a
    workload has no name of its own)."""
    calibration = (cfg.get("cost_model") or {}).get("calibration") or {}
    used = {("pricing", (cfg.get("pricing") or {}).get("name")),
            ("calibration", calibration.get("name") if hasattr(calibration, "get") else None)}
    for pool in pools:
        used |= {("hardware", pool["hardware"]), ("model", pool["model"]),
                 ("engine", pool.get("engine"))}
    used |= {(group, name) for group, name in choices.items() if "/" not in group}
    sources = {}
    for group, name in sorted(used, key=lambda u: (u[0], str(u[1]))):
        where = catalog.source(group, str(name)) if name else None
        if where:
            sources[f"{group}/{name}"] = where
    return sources


def record_of_overrides(overrides: list[str]) -> dict[str, Any] | None:
    """The record of a trial stored before trials carried one (slow: composes and builds the
    pools). None when the overrides no longer compose."""
    try:
        cfg = compose_overrides(list(overrides))
        pool_specs = to_sim.pools(cfg)
    except ConfigError:
        return None
    return record(pool_specs, cfg)
