"""Turn the collector's records into the summary users read (latencies in ms)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from sim.config import SimConfig
from sim.metrics.collector import Collector
from sim.request import StageKind
from sim.metrics.stages import (kv_tier_summary, link_summary, stage_breakdown,
                                stage_breakdown_by_type)

PERCENTILES = (50, 90, 99)


def latency_stats_ms(values_s: np.ndarray) -> dict[str, float]:
    if values_s.size == 0:
        return {"mean": float("nan"), "p50": float("nan"), "p90": float("nan"), "p99": float("nan")}
    ms = values_s * 1e3
    pcts = np.percentile(ms, PERCENTILES)
    return {"mean": float(ms.mean()), **{f"p{p}": float(v) for p, v in zip(PERCENTILES, pcts)}}


def weighted_stats_ms(values_s: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    if values_s.size == 0 or weights.sum() <= 0:
        return latency_stats_ms(np.empty(0))
    order = np.argsort(values_s, kind="stable")
    values, cum = values_s[order], np.cumsum(weights[order])
    total = cum[-1]
    # an elementwise product and numpy's pairwise sum, not np.dot: BLAS may split a dot product
    # across threads and change its last bit with the machine's thread count
    out = {"mean": float((values_s * weights).sum() / total * 1e3)}
    for p in PERCENTILES:
        idx = int(np.searchsorted(cum, p / 100 * total, side="left"))
        out[f"p{p}"] = float(values[min(idx, values.size - 1)] * 1e3)
    return out


def itl_samples(runs: list) -> tuple[np.ndarray, np.ndarray]:
    """Expand decode runs into (inter-token latency, number of tokens) samples."""
    if not runs:
        return np.empty(0), np.empty(0)
    arr = np.asarray(runs, dtype=float)
    first, growth, steps, batch = arr.T
    steps_i = steps.astype(np.int64)
    offsets = np.repeat(np.cumsum(steps_i) - steps_i, steps_i)
    index = np.arange(steps_i.sum()) - offsets
    values = np.repeat(first, steps_i) + np.repeat(growth, steps_i) * index
    return values, np.repeat(batch, steps_i)


def summarize(config: SimConfig, collector: Collector, num_events: int, end_s: float) -> dict:
    done = collector.completed
    arrival = np.fromiter((r.arrival_s for r in done), float, len(done))
    first = np.fromiter((r.first_token_s for r in done), float, len(done))
    finish = np.fromiter((r.finish_s for r in done), float, len(done))
    # the last generated token (before any post-processing stage); TPOT is measured to it.
    # When every plan ends with its generation the two coincide (and the pass is skipped).
    ends_later = any(rt.plan[-1].kind not in (StageKind.GENERATE, StageKind.DECODE)
                     for rt in config.workload.request_types)
    last = (np.fromiter((r.last_token_s if r.last_token_s >= 0 else r.finish_s for r in done),
                        float, len(done)) if ends_later else finish)
    prompt = np.fromiter((r.prompt_tokens for r in done), float, len(done))
    output = np.fromiter((r.output_tokens for r in done), float, len(done))
    ttft, e2e = first - arrival, finish - arrival
    multi = output > 1
    tpot = (last[multi] - first[multi]) / (output[multi] - 1)
    start = float(arrival.min()) if done else 0.0
    span_s = max(float(finish.max()) - start, 1e-12) if done else 0.0
    per_s = (lambda x: float(x) / span_s) if span_s else (lambda x: 0.0)
    slo = config.slo
    ok = np.ones(len(done), dtype=bool)
    if slo.ttft_ms is not None:
        ok &= ttft * 1e3 <= slo.ttft_ms
    if slo.tpot_ms is not None:
        tpot_all = np.where(multi, (last - first) / np.maximum(output - 1, 1), 0.0)
        ok &= tpot_all * 1e3 <= slo.tpot_ms
    if slo.e2e_ms is not None:
        ok &= e2e * 1e3 <= slo.e2e_ms
    itl_values, itl_weights = itl_samples(collector.itl_runs)
    pools: dict[str, dict] = {}
    for stats in collector.replicas:
        pool = pools.setdefault(stats.pool, {"replicas": 0, "busy_s": 0.0, "preemptions": 0,
                                             "steps": 0, "decode_steps": 0})
        pool["replicas"] += 1
        pool["busy_s"] += stats.busy_s
        pool["preemptions"] += stats.preemptions
        pool["steps"] += stats.steps
        pool["decode_steps"] += stats.decode_steps
    for pool in pools.values():
        pool["utilization"] = pool["busy_s"] / (pool["replicas"] * end_s) if end_s else 0.0
    reasons = Counter(r.drop_reason.value for r in collector.rejected)
    return {
        "requests_completed": len(done),
        "requests_rejected": len(collector.rejected),
        "rejection_reasons": dict(sorted(reasons.items())),
        "duration_s": span_s,
        "requests_per_s": per_s(len(done)),
        "input_tokens_per_s": per_s(prompt.sum()),
        "output_tokens_per_s": per_s(output.sum()),
        "total_tokens_per_s": per_s(prompt.sum() + output.sum()),
        "goodput_requests_per_s": per_s(ok.sum()),
        "goodput_output_tokens_per_s": per_s(output[ok].sum()),
        "slo_attainment": float(ok.mean()) if done else 0.0,
        "ttft_ms": latency_stats_ms(ttft),
        "tpot_ms": latency_stats_ms(tpot),
        "itl_ms": weighted_stats_ms(itl_values, itl_weights),
        "e2e_ms": latency_stats_ms(e2e),
        "preemptions": int(sum(p["preemptions"] for p in pools.values())),
        "pools": pools,
        "num_events": num_events,
        "stages": stage_breakdown(collector),
        "stages_by_type": stage_breakdown_by_type(collector),
        "kv_tiers": kv_tier_summary(collector),
        "kv_lookups": {pool: {"lookups": n, "misses": m} for pool, (n, m) in
                       sorted(collector.kv_lookups.items())},
        "links": link_summary(collector),
        "generated_tokens": dict(sorted(collector.generated_tokens.items())),
    }
