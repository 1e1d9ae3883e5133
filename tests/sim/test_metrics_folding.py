"""Metrics folded as the run goes (sim.metrics.collector, sim.metrics.sketch): compact request
columns are exact, the relative-accuracy sketch keeps its error bound, ITL memory stays bounded."""

from __future__ import annotations

import json

import numpy as np
import pytest

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
from sim.hardware.specs import HardwareSpec, ModelSpec
from sim.metrics import collector as collector_mod
from sim.metrics.sketch import DEFAULT_ALPHA, RelativeSketch
from sim.metrics.summary import itl_samples, weighted_stats_ms
from sim.simulation import _Run


def _exact_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The rank rule of weighted_stats_ms: first value whose cumulative weight reaches q."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][min(int(np.searchsorted(cum, q * cum[-1])), values.size - 1)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sketch_quantiles_within_relative_error(seed):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.lognormal(-3, 1.5, 20_000), rng.uniform(1e-4, 2.0, 5_000)])
    weights = rng.integers(1, 50, values.size).astype(float)
    sketch = RelativeSketch()
    for part in np.array_split(np.arange(values.size), 7):  # folded in pieces, like a run
        sketch.add(values[part], weights[part])
    for q in (0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0):
        exact = _exact_quantile(values, weights, q)
        assert abs(sketch.quantile(q) - exact) <= DEFAULT_ALPHA * exact * (1 + 1e-9)
    assert sketch.total == weights.sum()
    assert sketch.sum == pytest.approx(float((values * weights).sum()), rel=1e-12)
    assert sketch.min == values.min() and sketch.max == values.max()
    # bucket count grows with log(max / min), not with the number of values
    assert sketch.num_buckets <= np.log(values.max() / values.min()) / np.log(sketch.gamma) + 2


def test_sketch_zero_bucket_and_empty():
    sketch = RelativeSketch()
    assert np.isnan(sketch.quantile(0.5))
    sketch.add(np.array([0.0, 0.0, 0.0, 1.0]))
    assert sketch.quantile(0.5) == 0.0
    assert abs(sketch.quantile(1.0) - 1.0) <= DEFAULT_ALPHA


def test_sketch_runs_equal_expanded_values():
    runs = np.array([[0.01, 0.0, 1, 7], [0.02, 1e-5, 300, 33], [0.5, 0.0, 1, 2],
                     [0.015, 2e-6, 1000, 128]], dtype=float)
    values, weights = itl_samples(list(map(tuple, runs)))
    a, b = RelativeSketch(), RelativeSketch()
    a.add(values, weights)
    b.add_runs(runs, max_values=97)  # expanded in many small slices
    for q in (0.5, 0.9, 0.99):
        assert a.quantile(q) == b.quantile(q)
    assert a.total == b.total


def _tiny_config(n: int, record: bool = False) -> SimConfig:
    model = ModelSpec(name="m", num_layers=4, hidden_size=512, num_heads=8, num_kv_heads=8,
                      head_dim=64, intermediate_size=2048, vocab_size=1000,
                      max_context_tokens=8192)
    hw = HardwareSpec(name="g", memory_bytes=8e9, mem_bw_bytes_per_s=1e12,
                      bf16_flops_per_s=1e14, scaleup_bw_bytes_per_s=1e11,
                      host_bw_bytes_per_s=3e10)
    pool = PoolSpec(name="llm", model=model, hardware=hw, num_replicas=2,
                    scheduler=SchedulerSpec(policy=BatchPolicy.CHUNKED, chunk_size_tokens=256,
                                            max_num_seqs=32))
    types = tuple(RequestTypeSpec(
        name=name, weight=w, plan=(Stage(kind=StageKind.GENERATE, pool="llm"),),
        prompt_tokens=LengthSpec(kind=LengthKind.LOGNORMAL, mean=p, std=p / 2, min_tokens=4,
                                 max_tokens=2048),
        output_tokens=LengthSpec(kind=LengthKind.LOGNORMAL, mean=o, std=o / 2, min_tokens=2,
                                 max_tokens=1024))
        for name, w, p, o in (("a", 0.7, 200, 120), ("b", 0.3, 600, 40)))
    return SimConfig(pools=(pool,), record_requests=record, workload=WorkloadSpec(
        num_requests=n, arrival=ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=40.0),
        request_types=types))


def test_request_columns_match_request_objects():
    config = _tiny_config(600)
    run = _Run(config, 3, keep_requests=True)
    run.start()
    run.engine.run()
    col = run.collector.done
    reqs = run.collector.completed
    assert len(col) == len(reqs) == 600
    assert np.array_equal(col.np("arrival"), [r.arrival_s for r in reqs])
    assert np.array_equal(col.np("first"), [r.first_token_s for r in reqs])
    assert np.array_equal(col.np("finish"), [r.finish_s for r in reqs])
    assert np.array_equal(col.np("output"), [r.output_tokens for r in reqs])
    assert np.array_equal(col.np("kind"), [0 if r.type_name == "a" else 1 for r in reqs])


def test_summary_same_with_and_without_kept_requests():
    kept = simulate(_tiny_config(500, record=True), 5).summary
    folded = simulate(_tiny_config(500, record=False), 5).summary
    assert json.dumps(kept, sort_keys=True) == json.dumps(folded, sort_keys=True)


def test_itl_sketch_bound_and_bounded_buffer(monkeypatch):
    config = _tiny_config(1500)
    exact = simulate(config, 2).summary["itl_ms"]
    monkeypatch.setattr(collector_mod, "ITL_EXACT_MAX_SAMPLES", 1000)
    monkeypatch.setattr(collector_mod, "ITL_FOLD_RUNS", 256)
    monkeypatch.setattr("sim.simulation.ARRIVAL_CHUNK", 64)  # fold checks every 64 requests
    run = _Run(config, 2, keep_requests=False)
    run.start()
    largest = 0
    while run.engine.pending:  # step the engine, watching the run buffer
        run.engine.run(until_s=run.engine.next_time_s())
        largest = max(largest, len(run.collector.itl_runs))
    assert run.collector.itl_sketch is not None
    # the buffer is folded: it never holds much more than ITL_FOLD_RUNS runs (plus what 64
    # requests' steps add between two checks)
    assert largest <= 4 * (256 + 64 * 40)
    from sim.metrics.summary import summarize
    sketched = summarize(config, run.collector, run.engine.num_events, run.engine.now_s)["itl_ms"]
    for p in ("p50", "p90", "p99"):
        assert abs(sketched[p] - exact[p]) <= DEFAULT_ALPHA * exact[p] * (1 + 1e-9)
    assert sketched["mean"] == pytest.approx(exact["mean"], rel=1e-9)


def test_weighted_stats_unchanged_for_flat_runs():
    runs = [(0.01, 0.001, 3, 2), (0.05, 0.0, 1, 1)]
    from array import array
    flat = array("d", [x for run in runs for x in run])
    assert weighted_stats_ms(*itl_samples(runs)) == weighted_stats_ms(*itl_samples(flat))
