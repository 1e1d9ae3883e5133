"""Turn the collector's records into the summary users read (latencies in ms)."""

from __future__ import annotations

import math

import numpy as np

from sim.config import RequestTypeSpec, SimConfig, SLOSpec
from sim.metrics.collector import Collector
from sim.metrics.folded_summary import PERCENTILES, folded_figures
from sim.metrics.stages import (
    kv_tier_summary,
    link_summary,
    stage_breakdown,
    stage_breakdown_by_type,
)
from sim.metrics.steady import steady_state


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
    # a copy (np.array), never a view of the live array('d') that replicas still append to
    arr = np.array(runs, dtype=float).reshape(-1, 4)
    first, growth, steps, batch = arr.T
    steps_i = steps.astype(np.int64)
    offsets = np.repeat(np.cumsum(steps_i) - steps_i, steps_i)
    index = np.arange(steps_i.sum()) - offsets
    values = np.repeat(first, steps_i) + np.repeat(growth, steps_i) * index
    return values, np.repeat(batch, steps_i)


def slo_bounds(slos: list[SLOSpec], name: str, kind: np.ndarray) -> float | np.ndarray | None:
    """The ``name`` target each request is judged against: None when no type has one, one number
    when every type has the same, else one per request (``inf`` for a type without a target)."""
    values = [getattr(slo, name) for slo in slos]
    if all(v is None for v in values):
        return None
    if len(set(values)) == 1:
        return values[0]
    return np.array([math.inf if v is None else v for v in values])[kind]


def request_type_summary(types: tuple[RequestTypeSpec, ...], rejected: dict, kind: np.ndarray,
                         multi: np.ndarray, ok: np.ndarray, output: np.ndarray, ttft: np.ndarray,
                         tpot: np.ndarray, e2e: np.ndarray, per_s) -> dict[str, dict]:
    """Per request type (workload order): the workload-wide figures restricted to its requests,
    goodput under its own SLO. Throughputs are over the workload's span, so types add up to it."""
    dropped = rejected  # type name -> rejected requests
    tpot_kind = kind[multi]  # tpot holds the requests with more than one output token
    out = {}
    for i, rt in enumerate(types):
        mine = kind == i
        n = int(mine.sum())
        out[rt.name] = {
            "requests_completed": n,
            "requests_rejected": dropped.get(rt.name, 0),
            "output_tokens_per_s": per_s(output[mine].sum()),
            "goodput_output_tokens_per_s": per_s(output[mine & ok].sum()),
            "slo_attainment": float(ok[mine].mean()) if n else 0.0,
            "ttft_ms": latency_stats_ms(ttft[mine]),
            "tpot_ms": latency_stats_ms(tpot[tpot_kind == i]),
            "e2e_ms": latency_stats_ms(e2e[mine]),
        }
    return out


def request_figures(config: SimConfig, collector: Collector) -> dict:
    """The summary's per-request figures from the exact columns (see ``summarize``)."""
    done = collector.done  # compact columns, one row per completed request (completion order)
    n_done = len(done)
    arrival, first, finish = done.np("arrival"), done.np("first"), done.np("finish")
    # the last generated token (before any post-processing stage); TPOT is measured to it.
    last = done.np("last")
    prompt, output = done.np("prompt"), done.np("output")
    ttft, e2e = first - arrival, finish - arrival
    multi = output > 1
    tpot = (last[multi] - first[multi]) / (output[multi] - 1)
    start = float(arrival.min()) if n_done else 0.0
    span_s = max(float(finish.max()) - start, 1e-12) if n_done else 0.0
    per_s = (lambda x: float(x) / span_s) if span_s else (lambda x: 0.0)
    types = config.workload.request_types
    # index of each completed request's type in workload order
    kind = done.np("kind") if len(types) > 1 else np.zeros(n_done, dtype=np.int64)
    # each request is judged against its own type's SLO (the global one unless overridden)
    slos = [config.slo.overridden(rt.slo) for rt in types]
    ok = np.ones(n_done, dtype=bool)
    if (bound := slo_bounds(slos, "ttft_ms", kind)) is not None:
        ok &= ttft * 1e3 <= bound
    if (bound := slo_bounds(slos, "tpot_ms", kind)) is not None:
        tpot_all = np.where(multi, (last - first) / np.maximum(output - 1, 1), 0.0)
        ok &= tpot_all * 1e3 <= bound
    if (bound := slo_bounds(slos, "e2e_ms", kind)) is not None:
        ok &= e2e * 1e3 <= bound
    overall = {
        "requests_completed": n_done,
        "requests_rejected": collector.num_rejected,
        "output_tokens_per_s": per_s(output.sum()),
        "goodput_output_tokens_per_s": per_s(output[ok].sum()),
        "slo_attainment": float(ok.mean()) if n_done else 0.0,
        "ttft_ms": latency_stats_ms(ttft),
        "tpot_ms": latency_stats_ms(tpot),
        "e2e_ms": latency_stats_ms(e2e),
    }
    by_type = (request_type_summary(types, collector.rejected_types, kind, multi, ok, output,
                                    ttft, tpot, e2e, per_s) if len(types) > 1
               else {types[0].name: {k: dict(v) if isinstance(v, dict) else v
                                     for k, v in overall.items()}})
    extra = {}
    if any(rt.reasoning is not None for rt in types):
        # time to first *answer* token: after the thinking (sim.pipeline.reasoning.finish)
        answer = done.np("answer")
        extra["ttfat_ms"] = latency_stats_ms(answer - arrival)
    return {"extra": extra, "overall": overall, "by_type": by_type, "duration_s": span_s,
            "requests_per_s": per_s(len(done)), "input_tokens_per_s": per_s(prompt.sum()),
            "total_tokens_per_s": per_s(prompt.sum() + output.sum()),
            "goodput_requests_per_s": per_s(ok.sum()),
            "steady_state": steady_state(arrival, finish, output, ok,
                                         np.frombuffer(collector.rejected_arrival, float).copy())}


def _lookups(n: int, m: int, w: int, looked_up: int, served: int) -> dict:
    """A store's lookups (``KVStore.counts``): by count, and by prefix tokens (hits weighted
    by their length: the share of looked-up prefix tokens not recomputed)."""
    return {"lookups": n, "misses": m, "hit_rate": 1 - m / n if n else 0.0, "inflight_waits": w,
            "prefix_tokens": looked_up, "hit_tokens": served,
            "token_hit_rate": served / looked_up if looked_up else 0.0}


def summarize(config: SimConfig, collector: Collector, num_events: int, end_s: float) -> dict:
    if collector.folded is None:
        f = request_figures(config, collector)
    else:  # a run past collector.REQUEST_EXACT_MAX: counters, sketches and time bins
        collector.fold_requests(final=True)
        f = folded_figures(config, collector)
    overall = f["overall"]
    if collector.itl_sketch is None:
        itl_values, itl_weights = itl_samples(collector.itl_runs)
        itl = weighted_stats_ms(itl_values, itl_weights)
        del itl_values, itl_weights
    else:  # too many gaps to keep: the sketch (sim.metrics.sketch, relative error alpha)
        collector.fold_itl(final=True)
        itl = collector.itl_sketch.stats_ms(PERCENTILES)
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
    reasons = collector.rejected_reasons
    return {
        **f["extra"],
        "requests_completed": overall["requests_completed"],
        "requests_rejected": overall["requests_rejected"],
        "rejection_reasons": dict(sorted(reasons.items())),
        "duration_s": f["duration_s"],
        "requests_per_s": f["requests_per_s"],
        "input_tokens_per_s": f["input_tokens_per_s"],
        "output_tokens_per_s": overall["output_tokens_per_s"],
        "total_tokens_per_s": f["total_tokens_per_s"],
        "goodput_requests_per_s": f["goodput_requests_per_s"],
        "goodput_output_tokens_per_s": overall["goodput_output_tokens_per_s"],
        "slo_attainment": overall["slo_attainment"],
        "steady_state": f["steady_state"],
        "ttft_ms": overall["ttft_ms"],
        "tpot_ms": overall["tpot_ms"],
        "itl_ms": itl,
        "e2e_ms": overall["e2e_ms"],
        "request_types": f["by_type"],
        "preemptions": int(sum(p["preemptions"] for p in pools.values())),
        "pools": pools,
        "num_events": num_events,
        "stages": stage_breakdown(collector),
        "stages_by_type": stage_breakdown_by_type(collector),
        "kv_tiers": kv_tier_summary(collector),
        "kv_lookups": {pool: _lookups(*counts) for pool, counts in sorted(collector.kv_lookups.items())},
        "links": link_summary(collector),
        "generated_tokens": dict(sorted(collector.generated_tokens.items())),
        **({"folded": f["folded"]} if "folded" in f else {}),
    }
