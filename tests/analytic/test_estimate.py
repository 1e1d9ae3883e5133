"""The analytical tier (sim.analytic): what it models, how it moves with load, and its speed."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from hermes_opt.compose import to_sim
from hermes_opt.compose.overrides import compose_overrides
from sim.analytic.estimate import estimate
from sim.analytic.lengths import length_stats
from sim.scheduling.policies.chunked import ChunkedPrefill
from sim.workload.spec import LengthKind, LengthSpec

BASE = ["model=qwen3_32b", "cluster.weight_dtype=fp8", "cluster.kv_dtype=fp8", "workload=dse_chat",
        "scheduler=chunked", "slo=interactive", "slo.ttft_ms=250", "slo.tpot_ms=40",
        "pricing=mixed_2026_11", "deployment.total_devices=8"]
COLOCATED = ["deployment.architecture=colocated", "deployment.colocated.hardware=h200",
             "deployment.colocated.tp=1"]
DISAGG = ["deployment.architecture=disaggregated", "deployment.prefill.hardware=h200",
          "deployment.decode.hardware=mi355x", "deployment.prefill.devices=3",
          "deployment.prefill.tp=1", "deployment.decode.tp=1"]


def config(extra: list[str], rate: float = 48.0):
    return to_sim.sim_config(compose_overrides(BASE + extra + [f"workload.arrival.rate_per_s={rate}"]))


def test_fixed_and_clipped_lengths():
    fixed = length_stats(LengthSpec(kind=LengthKind.FIXED, mean=100))
    assert fixed.mean == 100 and fixed.second_moment == 10_000
    clipped = length_stats(LengthSpec(kind=LengthKind.LOGNORMAL, mean=1024, std=800,
                                      min_tokens=16, max_tokens=2048))
    assert clipped.values.max() <= 2048 and clipped.values.min() >= 16
    assert 800 < clipped.mean < 1024  # clipping the long tail lowers the mean
    assert length_stats(LengthSpec(kind=LengthKind.TRACE)) is None


@pytest.mark.parametrize("extra", [COLOCATED, DISAGG], ids=["colocated", "disaggregated"])
def test_latency_grows_with_load_and_capacity_does_not_move(extra):
    low, high, over = (estimate(config(extra, r)) for r in (8.0, 40.0, 400.0))
    assert low.supported and high.supported and over.supported
    assert low.capacity_rps == pytest.approx(high.capacity_rps)
    assert low.ttft_ms["p99"] < high.ttft_ms["p99"] < over.ttft_ms["p99"]
    assert low.tpot_ms["p50"] <= high.tpot_ms["p50"]
    for est in (low, high, over):
        assert est.ttft_ms["p50"] <= est.ttft_ms["p90"] <= est.ttft_ms["p99"]
    assert over.capacity_rps < 400 and over.output_tokens_per_s == pytest.approx(
        over.capacity_rps * over.mean_output_tokens)
    assert over.slo_attainment < 0.5 < low.slo_attainment
    assert [p.role for p in high.pools] == (["colocated"] if extra is COLOCATED
                                            else ["prefill", "decode"])


def test_more_replicas_serve_more():
    small = estimate(config(COLOCATED + ["deployment.total_devices=2"], 20.0))
    large = estimate(config(COLOCATED, 20.0))
    assert large.capacity_rps == pytest.approx(4 * small.capacity_rps, rel=1e-6)
    assert large.ttft_ms["p99"] < small.ttft_ms["p99"]


def test_what_it_does_not_model_is_said():
    cfg = config(COLOCATED)
    rt = cfg.workload.request_types[0]
    two = dataclasses.replace(cfg.workload, request_types=(rt, dataclasses.replace(rt, name="b")))
    est = estimate(dataclasses.replace(cfg, workload=two))
    assert not est.supported and "several request types" in est.reason


def test_an_estimate_takes_a_few_milliseconds():
    configs = [config(COLOCATED), config(DISAGG)]
    for c in configs:
        estimate(c)
    times = []
    for _ in range(10):
        for c in configs:
            tic = time.perf_counter()
            estimate(c)
            times.append(time.perf_counter() - tic)
    # <= 5 ms on a quiet core (benchmarks/analytic_error.py); generous here for shared machines
    assert np.median(times) < 0.02


def test_the_token_budget_is_the_batching_strategys(monkeypatch):
    """The estimate asks the pool's strategy (``token_budget``) instead of knowing the policies:
    a strategy that reads half the chunk size estimates like a config with half the chunk size."""
    cfg = config(COLOCATED)
    pool = cfg.pools[0]
    half = pool.scheduler.chunk_size_tokens // 2
    smaller = dataclasses.replace(cfg, pools=(dataclasses.replace(
        pool, scheduler=dataclasses.replace(pool.scheduler, chunk_size_tokens=half)),
        *cfg.pools[1:]))
    expected, plain = estimate(smaller), estimate(cfg)
    assert expected.ttft_ms != plain.ttft_ms  # the budget matters here
    monkeypatch.setattr(ChunkedPrefill, "token_budget",
                        lambda self, spec: spec.chunk_size_tokens // 2)
    halved = estimate(cfg)
    assert (halved.capacity_rps, halved.ttft_ms, halved.tpot_ms) == \
        (expected.capacity_rps, expected.ttft_ms, expected.tpot_ms)
