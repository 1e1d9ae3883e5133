"""The summary's per-request figures, stage breakdowns and steady window from folded state
(``sim.metrics.folded``), for runs past ``collector.REQUEST_EXACT_MAX``: the same fields as the
exact summary, plus ``folded`` stating what is approximate and by how much.

Exact: every count, token sum and rate, ``duration_s``, SLO attainment (it is a count), the
per-type split. Sketched (relative accuracy ``alpha``, nearest-rank rule): the latency
percentiles (TTFT, TPOT, E2E, TTFAT, stage queue/service/total); their means come from exact sums
(floating-point rounding aside). Binned: the steady window's edges and contents (to within one
time bin, see ``folded.TimeBins``).
"""

from __future__ import annotations

from sim.config import SimConfig
from sim.metrics import collector as collector_module  # its REQUEST_EXACT_MAX, read at run time
from sim.metrics import stability as stability_mod
from sim.metrics.folded import MAX_BINS, FoldedRequests
from sim.metrics.sketch import RelativeSketch
from sim.metrics.steady import DRAIN_FRACTION, MIN_WINDOW_REQUESTS, WARMUP_FRACTION

PERCENTILES = (50, 90, 99)


def _stats(sketch: RelativeSketch) -> dict[str, float]:
    return sketch.stats_ms(PERCENTILES)


def _figures(f: FoldedRequests, which: list[int], rejected: int, per_s) -> dict:
    """The overall-style block of the types in ``which``."""
    n = sum(f.completed[i] for i in which)
    sketches = {}
    for name in ("ttft", "tpot", "e2e"):
        merged = RelativeSketch(f.alpha)
        for i in which:
            merged.merge(f.sketches[name][i])
        sketches[name] = merged
    ok = sum(f.ok[i] for i in which)
    return {
        "requests_completed": n,
        "requests_rejected": rejected,
        "output_tokens_per_s": per_s(sum(f.output_tokens[i] for i in which)),
        "goodput_output_tokens_per_s": per_s(sum(f.ok_output_tokens[i] for i in which)),
        "slo_attainment": ok / n if n else 0.0,
        "ttft_ms": _stats(sketches["ttft"]),
        "tpot_ms": _stats(sketches["tpot"]),
        "e2e_ms": _stats(sketches["e2e"]),
    }


def folded_steady_state(f: FoldedRequests) -> dict:
    """``steady.steady_state`` from the arrival and finish time bins (same rules)."""
    n = sum(f.completed)
    empty = {"basis": "arrival", "window_start_s": 0.0, "window_end_s": 0.0, "window_s": 0.0,
             "requests": 0, "slo_attainment": 0.0, "output_tokens_per_s": 0.0,
             "goodput_output_tokens_per_s": 0.0,
             "stability": stability_mod.burst("none_completed")}
    if n == 0:
        return empty
    every = n + f.rejected
    lo_q, hi_q = ((WARMUP_FRACTION, 1 - DRAIN_FRACTION) if every >= MIN_WINDOW_REQUESTS
                  else (0.0, 1.0))
    basis, bins = "arrival", f.arrivals
    lo, hi = bins.quantile(lo_q), bins.quantile(hi_q)
    if hi - lo <= 0:  # everything arrived together: measure the completions instead
        basis, bins = "completion", f.finishes
        lo, hi = ((bins.quantile(lo_q), bins.quantile(hi_q)) if n >= MIN_WINDOW_REQUESTS
                  else (f.first_arrival_s, f.last_finish_s))
        if hi - lo <= 0:
            return dict(empty, basis=basis, stability=stability_mod.burst())
    counted, ok, output, ok_output = bins.within(lo, hi).tolist()
    window_s = float(hi - lo)
    return {
        "basis": basis, "window_start_s": float(lo), "window_end_s": float(hi),
        "window_s": window_s, "requests": int(round(counted)),
        "slo_attainment": ok / counted if counted else 0.0,
        "output_tokens_per_s": output / window_s,
        "goodput_output_tokens_per_s": ok_output / window_s,
        "stability": _folded_stability(f, basis, lo, hi, counted / window_s),
    }


def _folded_stability(f: FoldedRequests, basis: str, lo: float, hi: float,
                      rate_per_s: float) -> dict:
    """``stability.stability`` from the time bins; the fill time from the first fold
    (``FoldedRequests.note_warmup``)."""
    if basis != "arrival":
        return stability_mod.burst()
    mid = 0.5 * (lo + hi)
    first = f.first_arrival_s
    return stability_mod.verdict(
        first_arrival_s=first, window=(lo, hi),
        arrivals_in_half=float(f.arrivals.within(mid, hi)[0]),
        departures_in_half=float(f.departures.within(mid, hi)[0]),
        backlog_at_mid=float(f.arrivals.within(first, mid)[0] - f.departures.within(first, mid)[0]),
        fill_s=f.warmup_e2e_s if f.warmup_e2e_s is not None else f.merged("e2e").quantile(0.5),
        arrival_rate_per_s=rate_per_s)


def folded_figures(config: SimConfig, collector) -> dict:
    """``summary.request_figures`` from ``collector.folded``."""
    f = collector.folded
    types = config.workload.request_types
    n_done = sum(f.completed)
    span_s = max(f.last_finish_s - f.first_arrival_s, 1e-12) if n_done else 0.0
    per_s = (lambda x: float(x) / span_s) if span_s else (lambda x: 0.0)
    everyone = list(range(len(types)))
    overall = _figures(f, everyone, collector.num_rejected, per_s)
    by_type = {rt.name: _figures(f, [i], collector.rejected_types.get(rt.name, 0), per_s)
               for i, rt in enumerate(types)}
    sketched = ["ttft_ms", "tpot_ms", "e2e_ms", "stages"]
    extra = {}
    if any(rt.reasoning is not None for rt in types):
        extra["ttfat_ms"] = _stats(f.merged("ttfat"))
        sketched.insert(0, "ttfat_ms")
    if collector.itl_sketch is not None:
        sketched.append("itl_ms")
    return {"extra": extra, "overall": overall, "by_type": by_type, "duration_s": span_s,
            "requests_per_s": per_s(n_done), "input_tokens_per_s": per_s(sum(f.prompt_tokens)),
            "total_tokens_per_s": per_s(sum(f.prompt_tokens) + sum(f.output_tokens)),
            "goodput_requests_per_s": per_s(sum(f.ok)),
            "steady_state": folded_steady_state(f),
            "folded": {
                "exact_max_requests": collector_module.REQUEST_EXACT_MAX,
                "sketched_percentiles": sketched, "alpha": f.alpha,
                "steady_state_bins": MAX_BINS,
                "steady_state_bin_width_s": max(f.arrivals.width_s, f.finishes.width_s),
                "note": "counts, sums and rates exact; percentiles within relative error alpha "
                        "of the nearest-rank value; steady window within one time bin"}}


def _stage_key(collector, code: int) -> tuple[str, str]:
    _, kind, pool = collector.visit_keys[code]
    return kind, pool


def folded_stage_breakdown(collector) -> dict[str, dict]:
    """``stages.stage_breakdown`` from ``collector.folded_visits``."""
    v = collector.folded_visits
    if not v.count:
        return {}
    by_stage: dict[tuple[str, str], list[int]] = {}
    for code in sorted(v.count):
        by_stage.setdefault(_stage_key(collector, code), []).append(code)
    total_s = sum(v.queue_s[c] + v.service_s[c] for c in sorted(v.count)) or 1.0
    out = {}
    for (kind, pool), codes in sorted(by_stage.items()):
        merged = [RelativeSketch(v.alpha) for _ in range(3)]
        for code in codes:
            for m, sk in zip(merged, v.sketches[code]):
                m.merge(sk)
        out[f"{kind}@{pool}"] = {
            "kind": kind, "pool": pool, "visits": sum(v.count[c] for c in codes),
            **{name: _stage_stats(m) for name, m in zip(("queue_ms", "service_ms", "total_ms"),
                                                          merged)},
            "share_of_stage_time": sum(v.queue_s[c] + v.service_s[c] for c in codes) / total_s,
        }
    return out


def _stage_stats(sketch: RelativeSketch) -> dict[str, float]:
    if sketch.total <= 0:
        return {"mean": 0.0, "p50": 0.0, "p99": 0.0}
    return sketch.stats_ms((50, 99))


def folded_stage_breakdown_by_type(collector) -> dict[str, dict[str, dict]]:
    """``stages.stage_breakdown_by_type`` from ``collector.folded_visits``."""
    v = collector.folded_visits
    acc: dict[tuple[str, str, str], list[float]] = {}
    for code, name in collector.visit_keys.items():
        a = acc.setdefault(name, [0, 0.0, 0.0])
        a[0] += v.count.get(code, 0)
        a[1] += v.queue_s.get(code, 0.0)
        a[2] += v.service_s.get(code, 0.0)
    out: dict[str, dict[str, dict]] = {}
    for (type_name, kind, pool), (c, q, s) in sorted(acc.items()):
        if c:
            out.setdefault(type_name, {})[f"{kind}@{pool}"] = {
                "visits": c, "queue_ms": q / c * 1e3, "service_ms": s / c * 1e3}
    return out

