"""Per-stage breakdown of a pipeline run: queueing vs service per (stage kind, pool), KV tiers,
links. Added to the summary under ``stages``, ``kv_tiers``, ``links`` and ``generated_tokens``.

A visit's queueing is from reaching the stage to starting service (an LLM stage starts at its
first admission to a batch; a batched stage when its batch starts); service runs from there to
the stage's end (for an LLM stage: prefill, decode and any preemption stalls). A disaggregated
KV hand-off is its own visit of kind ``kv_transfer`` on the link, all service.
"""

from __future__ import annotations

import numpy as np

from sim.metrics.collector import Collector
from sim.metrics.folded_summary import folded_stage_breakdown, folded_stage_breakdown_by_type


def _stats_ms(values_s: np.ndarray) -> dict[str, float]:
    if values_s.size == 0:
        return {"mean": 0.0, "p50": 0.0, "p99": 0.0}
    ms = values_s * 1e3
    p50, p99 = np.percentile(ms, (50, 99))
    return {"mean": float(ms.mean()), "p50": float(p50), "p99": float(p99)}


def _visit_arrays(collector: Collector) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code, queue_s, service_s) per visit; computed once per collector state."""
    n = len(collector.visit_codes)
    cached = getattr(collector, "_visit_cache", None)
    if cached is not None and cached[0] == n:
        return cached[1]
    codes = np.array(collector.visit_codes, dtype=np.int64)
    times = np.array(collector.visit_times, dtype=float).reshape(-1, 3)
    arrays = (codes, times[:, 1] - times[:, 0], times[:, 2] - times[:, 1])
    collector._visit_cache = (n, arrays)
    return arrays


def stage_breakdown(collector: Collector) -> dict[str, dict]:
    """``{"<kind>@<pool>": {kind, pool, visits, queue_ms, service_ms, total_ms,
    share_of_stage_time}}`` over all request types."""
    if collector.folded_visits is not None:
        return folded_stage_breakdown(collector)
    if not collector.visit_codes:
        return {}
    codes, queue_all, service_all = _visit_arrays(collector)
    by_stage: dict[tuple[str, str], list[int]] = {}
    for code, (_, kind, pool) in collector.visit_keys.items():
        by_stage.setdefault((kind, pool), []).append(code)
    total_s = float(queue_all.sum() + service_all.sum()) or 1.0
    out = {}
    for (kind, pool), stage_codes in sorted(by_stage.items()):
        sel = np.isin(codes, stage_codes)
        q, s = queue_all[sel], service_all[sel]
        out[f"{kind}@{pool}"] = {
            "kind": kind, "pool": pool, "visits": int(sel.sum()),
            "queue_ms": _stats_ms(q), "service_ms": _stats_ms(s), "total_ms": _stats_ms(q + s),
            "share_of_stage_time": float((q.sum() + s.sum()) / total_s),
        }
    return out


def stage_breakdown_by_type(collector: Collector) -> dict[str, dict[str, dict]]:
    """Mean queue/service ms per request type and stage (for tables)."""
    if collector.folded_visits is not None:
        return folded_stage_breakdown_by_type(collector)
    if not collector.visit_codes:
        return {}
    codes, queue_all, service_all = _visit_arrays(collector)
    n = len(collector.visit_keys)
    counts = np.bincount(codes, minlength=n)
    queue = np.bincount(codes, weights=queue_all, minlength=n)
    service = np.bincount(codes, weights=service_all, minlength=n)
    out: dict[str, dict[str, dict]] = {}
    acc: dict[tuple[str, str, str], list[float]] = {}
    for code, name in collector.visit_keys.items():  # a name may have several codes
        a = acc.setdefault(name, [0, 0.0, 0.0])
        a[0] += int(counts[code])
        a[1] += float(queue[code])
        a[2] += float(service[code])
    for (type_name, kind, pool), (c, q, s) in sorted(acc.items()):
        if c:
            out.setdefault(type_name, {})[f"{kind}@{pool}"] = {
                "visits": c, "queue_ms": q / c * 1e3, "service_ms": s / c * 1e3}
    return out


def kv_tier_summary(collector: Collector) -> dict[str, dict]:
    out = {}
    for t in collector.kv_tiers:
        link = t.link
        out[f"{t.pool}/{t.tier}"] = {
            "kind": t.kind, "domain": t.domain, "copies": t.copies, "capacity_gb": t.capacity_bytes / 1e9,
            "lookups": t.lookups, "hits": t.hits,
            "hit_rate": t.hits / t.lookups if t.lookups else 0.0,
            "bytes_read": t.bytes_read, "bytes_written": t.bytes_written,
            "promotions_in": t.promotions_in, "demotions_in": t.demotions_in,
            "evictions": t.evictions, "evicted_bytes": t.evicted_bytes,
            "resident_bytes": t.resident_bytes,
            "link_busy_s": link.busy_s if link else 0.0,
            "device_busy_s": t.device.busy_s if t.device else 0.0,
            "mean_transfer_ms": (link.transfer_s / link.transfers * 1e3
                                 if link and link.transfers else 0.0),
        }
    return out


def link_summary(collector: Collector) -> dict[str, dict]:
    return {s.name: {"transfers": s.transfers, "bytes_moved": s.bytes_moved, "busy_s": s.busy_s,
                     "mean_transfer_ms": s.transfer_s / s.transfers * 1e3 if s.transfers else 0.0,
                     "max_concurrent": s.max_concurrent,
                     "bandwidth_gb_per_s": s.bandwidth_bytes_per_s / 1e9}
            for s in collector.links}
