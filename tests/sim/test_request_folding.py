"""Runs past ``collector.REQUEST_EXACT_MAX`` fold their request rows, rejected arrivals and stage
visits into counters, sketches and time bins (sim.metrics.folded): the retained buffers stop
growing, and the folded summary agrees with the exact one within the stated bounds."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from sim import SLOSpec, simulate
from sim.metrics import collector as collector_mod
from sim.metrics.folded import MAX_BINS, FoldedRequests, TimeBins
from sim.metrics.folded_summary import folded_steady_state
from sim.metrics.sketch import DEFAULT_ALPHA, RelativeSketch
from sim.metrics.steady import steady_state
from sim.simulation import _Run
from sim.workload.generator import WorkloadStream
from tests.sim.test_metrics_folding import _tiny_config

N = 2400


def _nearest_rank(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q * 100, method="inverted_cdf"))


@pytest.fixture
def tiny_threshold(monkeypatch):
    monkeypatch.setattr(collector_mod, "REQUEST_EXACT_MAX", 300)
    monkeypatch.setattr(collector_mod, "REQUEST_FOLD_ROWS", 128)
    monkeypatch.setattr("sim.simulation.ARRIVAL_CHUNK", 64)  # fold checks every 64 arrivals


def _run(config, seed: int, keep: bool) -> _Run:
    run = _Run(config, seed, keep_requests=keep)
    run.start()
    run.engine.run()
    return run


def test_sketch_merge_equals_one_sketch():
    rng = np.random.default_rng(4)
    a, b, whole = RelativeSketch(), RelativeSketch(), RelativeSketch()
    x, y = rng.lognormal(-2, 1, 3000), rng.lognormal(1, 0.5, 2000)
    a.add(x)
    b.add(np.concatenate([y, [0.0]]))
    whole.add(np.concatenate([x, y, [0.0]]))
    a.merge(b)
    assert a.total == whole.total and a.zero == whole.zero
    assert a.min == whole.min and a.max == whole.max
    for q in (0.01, 0.5, 0.9, 0.99):
        assert a.quantile(q) == whole.quantile(q)


@pytest.mark.parametrize("seed", [0, 1])
def test_time_bins_quantiles_and_window_within_one_bin(seed):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0, 5e4, 200_000))  # forces many doublings
    out = rng.integers(1, 500, times.size)
    bins = TimeBins(2)
    for part in np.array_split(np.arange(times.size), 9):
        bins.add(times[part], np.stack([np.ones(part.size, dtype=np.int64), out[part]]))
    assert bins.lo.size <= MAX_BINS
    assert int(bins.sums[0].sum()) == times.size and int(bins.sums[1].sum()) == int(out.sum())
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        assert abs(bins.quantile(q) - np.quantile(times, q)) <= bins.width_s
    lo, hi = np.quantile(times, [0.1, 0.9])
    inside = (times >= lo) & (times <= hi)
    count, tokens = bins.within(lo, hi)
    per_bin = times.size / bins.lo.size
    assert abs(count - inside.sum()) <= 2 * 3 * per_bin
    assert abs(tokens - out[inside].sum()) <= 2 * 3 * per_bin * 500


@pytest.mark.parametrize("burst", [False, True], ids=["arrival_basis", "completion_basis"])
def test_folded_steady_state_agrees_with_exact(burst):
    rng = np.random.default_rng(7)
    n = 20_000
    arrival = np.zeros(n) if burst else np.cumsum(rng.exponential(0.05, n))
    first = arrival + rng.exponential(0.3, n)
    finish = first + rng.exponential(2.0, n) + (np.arange(n) * 0.01 if burst else 0)
    output = rng.integers(2, 300, n)
    rejected = np.sort(rng.uniform(0, arrival.max() or 1.0, 500))
    slo = SLOSpec(ttft_ms=400.0)
    f = FoldedRequests([slo])
    for part in np.array_split(np.arange(n), 5):
        f.add(arrival[part], first[part], finish[part], finish[part], output[part] * 3,
              output[part], first[part], np.zeros(part.size, dtype=np.int64))
    f.add_rejected(rejected)
    ok = (first - arrival) * 1e3 <= 400.0
    exact = steady_state(arrival, finish, output, ok, rejected)
    got = folded_steady_state(f)
    assert got["basis"] == exact["basis"] == ("completion" if burst else "arrival")
    width = max(f.arrivals.width_s, f.finishes.width_s)
    assert abs(got["window_start_s"] - exact["window_start_s"]) <= width
    assert abs(got["window_end_s"] - exact["window_end_s"]) <= width
    for key in ("requests", "output_tokens_per_s", "goodput_output_tokens_per_s",
                "slo_attainment"):
        assert got[key] == pytest.approx(exact[key], rel=5e-3), key


def _latencies(run: _Run, kind: int | None) -> dict[str, np.ndarray]:
    d = run.collector.done
    arrival, first, finish, output = (d.np("arrival"), d.np("first"), d.np("finish"),
                                      d.np("output"))
    last, types = d.np("last"), d.np("kind")
    mine = np.ones(arrival.size, dtype=bool) if kind is None else types == kind
    multi = mine & (output > 1)
    return {"ttft_ms": (first - arrival)[mine], "e2e_ms": (finish - arrival)[mine],
            "tpot_ms": ((last - first) / np.maximum(output - 1, 1))[multi]}


def test_folded_summary_within_bounds_of_exact(tiny_threshold, monkeypatch):
    monkeypatch.setattr(collector_mod, "REQUEST_EXACT_MAX", 10 ** 9)  # the exact reference
    plain = simulate(_tiny_config(N), 11).summary
    # SLOs near the medians, so goodput and attainment count a real split
    config = dataclasses.replace(_tiny_config(N), slo=SLOSpec(
        ttft_ms=plain["ttft_ms"]["p50"], tpot_ms=plain["tpot_ms"]["p90"]))
    exact_run = _run(config, 11, keep=False)
    exact = simulate(config, 11).summary
    assert 0.2 < exact["slo_attainment"] < 0.8
    monkeypatch.setattr(collector_mod, "REQUEST_EXACT_MAX", 300)
    folded = simulate(config, 11).summary
    assert "folded" not in exact
    assert folded["folded"]["alpha"] == DEFAULT_ALPHA
    assert folded["folded"]["exact_max_requests"] == 300
    assert "ttft_ms" in folded["folded"]["sketched_percentiles"]
    # counters, token sums and rates: exact
    for key in ("requests_completed", "requests_rejected", "duration_s", "requests_per_s",
                "input_tokens_per_s", "output_tokens_per_s", "total_tokens_per_s",
                "goodput_requests_per_s", "goodput_output_tokens_per_s", "slo_attainment",
                "num_events", "pools", "generated_tokens", "rejection_reasons", "preemptions",
                "itl_ms", "kv_tiers", "links"):
        assert folded[key] == exact[key], key
    # percentiles: within alpha of the exact nearest-rank value; means from exact sums
    for kind, block, exact_block in [(None, folded, exact)] + [
            (i, folded["request_types"][name], exact["request_types"][name])
            for i, name in enumerate(("a", "b"))]:
        values = _latencies(exact_run, kind)
        for metric, v in values.items():
            for p in (50, 90, 99):
                ref = _nearest_rank(v, p / 100) * 1e3
                assert abs(block[metric][f"p{p}"] - ref) <= DEFAULT_ALPHA * ref * (1 + 1e-9)
            assert block[metric]["mean"] == pytest.approx(exact_block[metric]["mean"], rel=1e-9)
        assert block["requests_completed"] == exact_block["requests_completed"]
        assert block["slo_attainment"] == exact_block["slo_attainment"]
    for key in ("requests", "output_tokens_per_s", "goodput_output_tokens_per_s"):
        assert folded["steady_state"][key] == pytest.approx(exact["steady_state"][key],
                                                            rel=5e-3), key
    assert folded["stages"].keys() == exact["stages"].keys()
    for name, stage in folded["stages"].items():
        ref = exact["stages"][name]
        assert stage["visits"] == ref["visits"]
        assert stage["share_of_stage_time"] == pytest.approx(ref["share_of_stage_time"])
        for part in ("queue_ms", "service_ms", "total_ms"):
            assert stage[part]["mean"] == pytest.approx(ref[part]["mean"], rel=1e-9)
            assert stage[part]["p50"] == pytest.approx(ref[part]["p50"], rel=0.02, abs=1e-9)
    assert json.loads(json.dumps(folded["stages_by_type"])).keys() == \
        exact["stages_by_type"].keys()


def test_retained_buffers_stop_growing_past_the_threshold(tiny_threshold):
    def largest(n: int) -> tuple[int, int, int]:
        run = _Run(_tiny_config(n), 5, keep_requests=False)
        run.start()
        assert isinstance(run.source, WorkloadStream)  # drawn a chunk at a time
        rows = visits = buckets = 0
        while run.engine.pending:
            run.engine.run(until_s=run.engine.next_time_s())
            c = run.collector
            rows = max(rows, len(c.done), len(c.rejected_arrival))
            visits = max(visits, len(c.visit_codes))
            if c.folded is not None:
                buckets = max(buckets, *(s.num_buckets for per in c.folded.sketches.values()
                                         for s in per))
        assert run.collector.folded is not None
        assert run.collector.num_completed == n
        return rows, visits, buckets

    small, large = largest(1200), largest(4800)
    # rows and visits (one per request here): at most the threshold plus what finishes between
    # two fold checks (64 arrivals apart), whatever the run's length
    bound = 300 + 2 * 64
    for got in (small, large):
        assert got[0] <= bound and got[1] <= bound
    assert large[2] <= 2 * small[2] + 50  # sketch size grows with log(latency range) only


def test_streamed_rows_equal_kept_rows(tiny_threshold):
    config = _tiny_config(900, record=True)
    kept = simulate(config, 3)
    streamed: list[dict] = []
    result = simulate(config, 3, request_sink=streamed.append)
    assert result.requests is None
    assert sorted(streamed, key=lambda r: r["id"]) == kept.requests
    assert [r["finish_s"] for r in streamed] == sorted(r["finish_s"] for r in streamed)
    assert json.dumps(result.summary, sort_keys=True) == json.dumps(kept.summary, sort_keys=True)
