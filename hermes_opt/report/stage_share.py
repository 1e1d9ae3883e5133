"""Where the time and the money go: a configuration broken down by pipeline stage.

For each stage (``<kind>@<pool>`` of the summary's ``stages``): its mean time per request
(queueing + service) and share of the request's stage time, and its share of the deployment's
cost. A pool's $/hour is split among the stages it serves by their work (visits x mean service
time); a stage colocated on an LLM pool's GPUs (``colocated_on`` in the deployment record) is
charged the host's cost times the share of the host devices' time its batches took (its busy
time over replicas x run time), and the host's own stages the rest; a KV tier's cost goes to the
``kv_retrieval`` stage of the pool it serves (to the pool's stages when its plan has none). The
bottleneck named is the stage on a non-LLM pool that is busy at
least ``SATURATED`` of its servers' time (it saturates first as load grows), else the stage with
the largest share of the request's time (an LLM pool's busy time is not load: continuous batching
keeps it near 100% well below capacity).
"""

from __future__ import annotations

import math
from typing import Any

from hermes_opt.study.metric_labels import metric_label

SATURATED = 0.8
LLM_KINDS = ("generate", "prefill", "decode", "kv_retrieval")


def _stages(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split(".")
        if parts[0] == "stages" and len(parts) >= 3 and "@" in parts[1]:
            out.setdefault(parts[1], {})[".".join(parts[2:])] = value
    return out


def _finite(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


def stage_costs(metrics: dict[str, float], record: dict | None) -> dict[str, float]:
    """Stage -> $/hour attributed to it (the pools' and KV tiers' costs, split as above)."""
    stages = _stages(metrics)
    cost = {k.split(".", 1)[1]: _finite(v) for k, v in metrics.items()
            if k.startswith("cost_breakdown_usd_per_hour.")}
    tiers: dict[str, float] = {}  # KV tier capacity by the pool it serves
    for name in [n for n in cost if n.startswith("kv_tier:")]:  # "kv_tier:<pool>/<tier>"
        pool = name.split(":", 1)[1].split("/", 1)[0]
        tiers[pool] = tiers.get(pool, 0.0) + cost.pop(name)
    for pool, usd in tiers.items():  # the KV store is what kv_retrieval reads; else the pool's
        if f"kv_retrieval@{pool}" not in stages:
            cost[pool] = cost.get(pool, 0.0) + usd
    duration = _finite(metrics.get("duration_s"))
    for pool in (record or {}).get("pools", []):
        host = pool.get("colocated_on")
        if host and duration > 0 and host in cost:
            replicas = _finite(metrics.get(f"pools.{host}.replicas")) or 1.0
            share = min(1.0, _finite(metrics.get(f"pools.{pool['name']}.busy_s"))
                        / (replicas * duration))
            cost[pool["name"]] = cost.get(pool["name"], 0.0) + cost[host] * share
            cost[host] -= cost[host] * share
    work: dict[str, float] = {}
    for stage, cols in stages.items():
        work[stage] = _finite(cols.get("visits")) * _finite(cols.get("service_ms.mean"))
    out = {}
    for stage in stages:
        pool = stage.split("@", 1)[1]
        mates = [s for s in stages if s.split("@", 1)[1] == pool]
        total = sum(work[s] for s in mates)
        out[stage] = cost.get(pool, 0.0) * (work[stage] / total if total > 0 else 1 / len(mates))
        if stage.startswith("kv_retrieval@"):
            out[stage] += tiers.get(pool, 0.0)
    return out


def bottleneck(metrics: dict[str, float]) -> tuple[str, str] | None:
    """``(stage, why)`` of the stage named the bottleneck (rule in the module docstring)."""
    stages = _stages(metrics)
    if not stages:
        return None
    busiest = None
    for stage in stages:
        kind, pool = stage.split("@", 1)
        util = _finite(metrics.get(f"pools.{pool}.utilization"))
        if kind not in LLM_KINDS and util >= SATURATED and (busiest is None or util > busiest[1]):
            busiest = (stage, util)
    if busiest is not None:
        return busiest[0], f"its pool is busy {busiest[1]:.0%} of its servers' time"
    stage = max(stages, key=lambda s: _finite(stages[s].get("total_ms.mean")))
    share = _finite(stages[stage].get("share_of_stage_time"))
    return stage, (f"{share:.0%} of the request's stage time; no "
                   f"non-LLM pool is busy {SATURATED:.0%} of its time")


def stage_blocks(metrics: dict[str, float], record: dict | None,
                 fmt) -> list[tuple[str, Any]]:
    """The report blocks: for a pipeline (two stages or more) one table (stage, placement, mean
    ms, latency share, $/hour, cost share) and the bottleneck sentence; then every stage's
    statistics as stored."""
    stages = _stages(metrics)
    if not stages:
        return []
    columns = sorted({c for cols in stages.values() for c in cols})
    table = [("p", "Per-stage breakdown:"),
             ("table", ["stage", *(metric_label(c) for c in columns)],
              [[s, *(fmt(v.get(c, math.nan)) for c in columns)] for s, v in sorted(stages.items())])]
    if len(stages) < 2:
        return table
    costs = stage_costs(metrics, record)
    total_cost = sum(costs.values())
    pools = {p["name"]: p for p in (record or {}).get("pools", [])}

    def where(pool: str) -> str:
        p = pools.get(pool)
        if p is None:
            return "-"
        if p.get("colocated_on"):
            return f"colocated on {p['colocated_on']} ({p['hardware']})"
        return f"{p.get('devices')} x {p['hardware']}"
    rows = []
    for stage in sorted(stages, key=lambda s: -_finite(stages[s].get("total_ms.mean"))):
        cols, pool = stages[stage], stage.split("@", 1)[1]
        rows.append([stage, where(pool), fmt(_finite(cols.get("total_ms.mean"))),
                     f"{_finite(cols.get('share_of_stage_time')):.1%}", fmt(costs.get(stage, 0.0)),
                     f"{costs.get(stage, 0.0) / total_cost:.1%}" if total_cost > 0 else "-"])
    out: list[tuple[str, Any]] = [
        ("p", "Where the time and the money go, by stage (latency share: of the mean request's "
              "stage time; cost share: the pool's $/hour split by its stages' work, a colocated "
              "stage charged its share of the host GPUs' time):"),
        ("table", ["stage", "runs on", "mean time (ms)", "latency share", "$/hour",
                   "cost share"], rows)]
    named = bottleneck(metrics)
    if named is not None:
        out.append(("p", f"Bottleneck: {named[0]} ({named[1]})."))
    return out + table
