"""The summary agrees with the per-request rows it is computed from."""

from __future__ import annotations

import numpy as np
import pytest

from sim import BatchPolicy, SLOSpec, simulate


@pytest.fixture(scope="module")
def run(sim_build):
    pool = sim_build.make_pool(num_replicas=2, policy=BatchPolicy.CHUNKED, max_num_seqs=32)
    cfg = sim_build.make_config(pool=pool, num_requests=400, arrival=sim_build.poisson(15.0),
                                prompt=sim_build.uniform(20, 2000), output=sim_build.uniform(1, 300),
                                slo=SLOSpec(ttft_ms=150.0, tpot_ms=12.0))
    return cfg, simulate(cfg, seed=8)


def test_latency_stats_match_rows(run):
    _, result = run
    s, rows = result.summary, [r for r in result.requests if r["status"] == "completed"]
    ttft = np.array([r["ttft_ms"] for r in rows])
    e2e = np.array([r["e2e_ms"] for r in rows])
    tpot = np.array([r["tpot_ms"] for r in rows if r["tpot_ms"] is not None])
    for name, values in (("ttft_ms", ttft), ("e2e_ms", e2e), ("tpot_ms", tpot)):
        assert s[name]["mean"] == pytest.approx(values.mean(), rel=1e-9)
        for p in (50, 90, 99):
            assert s[name][f"p{p}"] == pytest.approx(np.percentile(values, p), rel=1e-9)
    assert s["ttft_ms"]["p50"] <= s["ttft_ms"]["p90"] <= s["ttft_ms"]["p99"]
    assert s["itl_ms"]["p50"] <= s["itl_ms"]["p90"] <= s["itl_ms"]["p99"]


def test_throughput_and_goodput_match_rows(run):
    cfg, result = run
    s, rows = result.summary, [r for r in result.requests if r["status"] == "completed"]
    start = min(r["arrival_s"] for r in rows)
    span = max(r["finish_s"] for r in rows) - start
    assert s["duration_s"] == pytest.approx(span)
    assert s["requests_per_s"] == pytest.approx(len(rows) / span)
    out = sum(r["output_tokens"] for r in rows)
    inp = sum(r["prompt_tokens"] for r in rows)
    assert s["output_tokens_per_s"] == pytest.approx(out / span)
    assert s["total_tokens_per_s"] == pytest.approx((inp + out) / span)
    ok = [r for r in rows if r["ttft_ms"] <= cfg.slo.ttft_ms
          and (r["tpot_ms"] is None or r["tpot_ms"] <= cfg.slo.tpot_ms)]
    assert 0 < len(ok) < len(rows), "the SLO should separate the requests"
    assert s["slo_attainment"] == pytest.approx(len(ok) / len(rows))
    assert s["goodput_requests_per_s"] == pytest.approx(len(ok) / span)
    assert s["goodput_output_tokens_per_s"] == pytest.approx(
        sum(r["output_tokens"] for r in ok) / span)


def test_pool_accounting(run):
    _, result = run
    s = result.summary
    pool = s["pools"]["llm"]
    assert pool["replicas"] == 2
    assert 0 < pool["utilization"] <= 1
    # the last completion ends the run, so busy time fits within replicas x (first arrival + span)
    first_arrival = min(r["arrival_s"] for r in result.requests if r["status"] == "completed")
    end_s = first_arrival + s["duration_s"]
    assert pool["utilization"] == pytest.approx(pool["busy_s"] / (2 * end_s), rel=1e-9)
    assert pool["decode_steps"] > 0 and pool["steps"] > 0
    assert s["num_events"] > 0


def test_spans_cover_busy_time_without_overlap(sim_build):
    pool = sim_build.make_pool(num_replicas=2, policy=BatchPolicy.MIXED, max_num_seqs=16)
    cfg = sim_build.make_config(pool=pool, num_requests=150, arrival=sim_build.poisson(10.0),
                                prompt=sim_build.uniform(20, 1500), output=sim_build.uniform(1, 200),
                                record_trace=True)
    result = simulate(cfg, seed=2)
    by_track = {}
    for track, _name, start, duration, batch in result.spans:
        assert duration > 0 and batch >= 1
        by_track.setdefault(track, []).append((start, duration))
    assert set(by_track) == {"llm/0", "llm/1"}
    busy = 0.0
    for spans in by_track.values():
        spans.sort()
        for (s0, d0), (s1, _) in zip(spans, spans[1:]):
            assert s0 + d0 <= s1 + 1e-12, "one replica ran two steps at once"
        busy += sum(d for _, d in spans)
    assert busy == pytest.approx(result.summary["pools"]["llm"]["busy_s"], rel=1e-9)
