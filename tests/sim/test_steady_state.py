"""Steady-state goodput (sim/metrics/steady.py): the SLO-meeting tokens of the requests that
arrived in the middle of the run, over that window; hand-built arrays first, then a simulation."""

from __future__ import annotations

import numpy as np
import pytest

from sim import LengthKind, LengthSpec, SLOSpec, simulate
from sim.metrics.steady import DRAIN_FRACTION, MIN_WINDOW_REQUESTS, WARMUP_FRACTION, steady_state

NONE = np.empty(0)


def test_the_module_constants_the_hand_computed_values_assume():
    assert (WARMUP_FRACTION, DRAIN_FRACTION, MIN_WINDOW_REQUESTS) == (0.1, 0.1, 20)


def test_poisson_arrivals_all_meeting_slo_give_rate_times_mean_output():
    rng = np.random.default_rng(0)
    rate, n = 10.0, 2000
    arrival = np.cumsum(rng.exponential(1 / rate, n))
    output = rng.integers(100, 301, n).astype(float)  # mean ~200
    finish = arrival + 2.0 + rng.random(n)  # a 2-3 s latency: the drain tail is 3 s long
    ok = np.ones(n, dtype=bool)
    out = steady_state(arrival, finish, output, ok, NONE)
    lo, hi = np.quantile(arrival, [0.1, 0.9])
    inside = (arrival >= lo) & (arrival <= hi)
    assert out["basis"] == "arrival"
    assert (out["window_start_s"], out["window_end_s"]) == (pytest.approx(lo), pytest.approx(hi))
    assert out["window_s"] == pytest.approx(hi - lo)
    assert out["requests"] == int(inside.sum()) == pytest.approx(0.8 * n, abs=2)
    assert out["slo_attainment"] == 1.0
    assert out["goodput_output_tokens_per_s"] == pytest.approx(output[inside].sum() / (hi - lo))
    assert out["goodput_output_tokens_per_s"] == out["output_tokens_per_s"]
    assert out["goodput_output_tokens_per_s"] == pytest.approx(rate * output.mean(), rel=0.05)
    # the whole-run figure (first arrival to last completion) pays for the drain tail
    assert output.sum() / (finish.max() - arrival.min()) < out["goodput_output_tokens_per_s"]


def test_requests_missing_their_slo_count_in_throughput_not_goodput():
    arrival = np.arange(100.0)  # one per second: window [9.9, 89.1], requests 10..89
    finish = arrival + 1.0
    output = np.full(100, 10.0)
    ok = np.arange(100) % 4 != 0  # every 4th request misses its SLO (20 of the 80 in the window)
    out = steady_state(arrival, finish, output, ok, NONE)
    assert (out["window_start_s"], out["window_end_s"]) == (pytest.approx(9.9), pytest.approx(89.1))
    assert out["requests"] == 80
    assert out["output_tokens_per_s"] == pytest.approx(800 / 79.2)
    assert out["goodput_output_tokens_per_s"] == pytest.approx(600 / 79.2)
    assert out["slo_attainment"] == pytest.approx(60 / 80)


def test_rejected_requests_count_as_window_requests_but_add_no_goodput():
    arrival = np.arange(100.0)
    finish = arrival + 1.0
    output = np.full(100, 10.0)
    ok = np.ones(100, dtype=bool)
    rejected = np.array([49.5, 50.5, 99.5])  # two inside the window, one in the drain
    out = steady_state(arrival, finish, output, ok, rejected)
    # the window is the 10%..90% of all 103 arrivals: sorted[10.2] = 10.2 .. sorted[91.8] = 89.8
    assert (out["window_start_s"], out["window_end_s"]) == (pytest.approx(10.2), pytest.approx(89.8))
    completed_inside = 79  # 11..89
    assert out["requests"] == completed_inside + 2
    assert out["slo_attainment"] == pytest.approx(completed_inside / (completed_inside + 2))
    assert out["goodput_output_tokens_per_s"] == pytest.approx(completed_inside * 10 / 79.6)
    assert out["output_tokens_per_s"] == out["goodput_output_tokens_per_s"]


def test_everything_arriving_at_once_measures_the_completions():
    arrival = np.zeros(50)
    finish = np.arange(1.0, 51.0)  # one completion per second: window [5.9, 45.1], 6..45
    output = np.full(50, 10.0)
    ok = np.ones(50, dtype=bool)
    ok[10] = False  # finishes at 11 s, inside the window
    out = steady_state(arrival, finish, output, ok, np.zeros(3))
    assert out["basis"] == "completion"
    assert (out["window_start_s"], out["window_end_s"]) == (pytest.approx(5.9), pytest.approx(45.1))
    assert out["requests"] == 40  # the rejected burst requests have no completion to count
    assert out["output_tokens_per_s"] == pytest.approx(400 / 39.2)
    assert out["goodput_output_tokens_per_s"] == pytest.approx(390 / 39.2)
    assert out["slo_attainment"] == pytest.approx(39 / 40)


def test_a_burst_finishing_at_one_instant_has_no_window():
    out = steady_state(np.zeros(30), np.full(30, 5.0), np.full(30, 10.0), np.ones(30, bool), NONE)
    assert out["basis"] == "completion"
    assert out["window_s"] == 0.0 and out["requests"] == 0
    assert out["goodput_output_tokens_per_s"] == 0.0


def test_fewer_than_the_minimum_requests_use_the_whole_run():
    n = MIN_WINDOW_REQUESTS - 1
    arrival = np.arange(float(n))  # 0..18
    finish = arrival + 0.5
    output = np.full(n, 10.0)
    ok = np.ones(n, dtype=bool)
    out = steady_state(arrival, finish, output, ok, NONE)
    assert out["basis"] == "arrival"
    assert (out["window_start_s"], out["window_end_s"]) == (0.0, float(n - 1))
    assert out["requests"] == n
    assert out["goodput_output_tokens_per_s"] == pytest.approx(n * 10 / (n - 1))
    # ... and a small burst: first arrival to last completion
    burst = steady_state(np.zeros(n), finish, output, ok, NONE)
    assert burst["basis"] == "completion" and burst["requests"] == n
    assert (burst["window_start_s"], burst["window_end_s"]) == (0.0, n - 0.5)


def test_no_completed_request_gives_the_empty_figures():
    out = steady_state(NONE, NONE, NONE, np.empty(0, bool), np.array([1.0, 2.0]))
    assert out == {"basis": "arrival", "window_start_s": 0.0, "window_end_s": 0.0,
                   "window_s": 0.0, "requests": 0, "slo_attainment": 0.0,
                   "output_tokens_per_s": 0.0, "goodput_output_tokens_per_s": 0.0,
                   "stability": {"status": "none_completed", "completion_ratio": 0.0,
                                 "tolerance": 0.0, "fill_s": 0.0, "measured_from_s": 0.0,
                                 "requests_to_tell": 0}}


@pytest.mark.parametrize("seed", [0, 1])
def test_an_under_loaded_chat_run_scores_its_demand_and_the_whole_run_pays_the_drain(sim_build,
                                                                                     seed):
    rate = 10.0
    cfg = sim_build.make_config(
        num_requests=1000, arrival=sim_build.poisson(rate),
        prompt=LengthSpec(kind=LengthKind.LOGNORMAL, mean=600, std=400, max_tokens=4000),
        output=LengthSpec(kind=LengthKind.LOGNORMAL, mean=500, std=150, max_tokens=2000),
        slo=SLOSpec(ttft_ms=1000, tpot_ms=50))
    result = simulate(cfg, seed=seed)
    summary, steady = result.summary, result.summary["steady_state"]
    assert summary["slo_attainment"] == 1.0  # under-loaded: every request meets the SLO
    mean_output = np.mean([row["output_tokens"] for row in result.requests])
    demand = rate * mean_output
    assert steady["basis"] == "arrival" and steady["requests"] == 800
    assert steady["goodput_output_tokens_per_s"] == pytest.approx(demand, rel=0.10)
    assert summary["goodput_output_tokens_per_s"] < 0.97 * steady["goodput_output_tokens_per_s"]
