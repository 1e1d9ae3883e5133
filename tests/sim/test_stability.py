"""Does a fixed-demand run keep up (sim/metrics/stability.py)? Hand-built flows first (an M/D/1
queue in closed form), then simulations: a deployment that meets every SLO over a short burst
but not over a long run is flagged, not scored as keeping up."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim import ArrivalKind, ArrivalSpec, simulate
from sim.metrics import collector as collector_mod
from sim.metrics.stability import FILL_MULTIPLE, KEEP_UP_TOLERANCE, stability, verdict
from sim.metrics.steady import steady_state
from tests.sim.test_metrics_folding import _tiny_config

NONE = np.empty(0)


def _single_server(rate_per_s: float, service_s: float, n: int, seed: int = 0):
    """First-come first-served, one server, deterministic service: (arrival, finish)."""
    arrival = np.cumsum(np.random.default_rng(seed).exponential(1 / rate_per_s, n))
    finish = np.empty(n)
    free = 0.0
    for i, t in enumerate(arrival):
        free = max(free, t) + service_s
        finish[i] = free
    return arrival, finish


def _check(arrival, finish, rejected=NONE):
    out = steady_state(arrival, finish, np.ones(arrival.size), np.ones(arrival.size, bool),
                       rejected)
    return out["stability"]


def test_constants_the_thresholds_below_assume():
    assert (KEEP_UP_TOLERANCE, FILL_MULTIPLE) == (0.03, 2.0)


def test_a_stable_queue_keeps_up():
    arrival, finish = _single_server(10.0, 0.07, 5000)  # utilisation 0.7
    got = _check(arrival, finish)
    assert got["status"] == "keeps_up"
    assert got["completion_ratio"] == pytest.approx(1.0, abs=0.02)


def test_an_overloaded_queue_falls_behind_at_its_service_rate():
    arrival, finish = _single_server(10.0, 0.125, 5000)  # capacity 8/s against 10/s
    got = _check(arrival, finish)
    assert got["status"] == "falls_behind"
    # departures run at the capacity, arrivals at the demand: ratio = 8 / 10
    assert got["completion_ratio"] == pytest.approx(0.8, abs=0.03)


def test_a_run_shorter_than_its_requests_cannot_tell_and_says_how_many_it_needs():
    # every request spends 30 s in the system and 60 arrive in 6 s: nothing leaves in the window
    arrival = np.linspace(0.0, 6.0, 60)
    finish = arrival + 30.0
    got = _check(arrival, finish)
    assert got["status"] == "too_short"
    assert got["completion_ratio"] == 0.0
    assert got["fill_s"] == pytest.approx(30.0)
    # 4 x FILL_MULTIPLE fill times at the window's arrival rate (~10/s)
    rate = got["requests_to_tell"] / (8 * 30.0)
    assert rate == pytest.approx(60 / 6.0, rel=0.05)


def test_rejected_requests_leave_when_refused():
    arrival, finish = _single_server(10.0, 0.07, 4000)
    keep = np.arange(arrival.size) % 5 != 0  # a fifth refused: they do not pile up
    got = _check(arrival[keep], finish[keep], arrival[~keep])
    assert got["status"] == "keeps_up"


def test_tolerance_widens_with_the_backlog_for_short_runs():
    got = verdict(first_arrival_s=0.0, window=(1.0, 9.0), arrivals_in_half=40,
                  departures_in_half=36, backlog_at_mid=16, fill_s=0.5, arrival_rate_per_s=10)
    assert got["tolerance"] == pytest.approx(0.03 + 3 * 4 / 40)
    assert got["status"] == "keeps_up"  # 0.9 >= 1 - 0.33


def test_a_burst_has_no_demand_rate_to_keep_up_with():
    arrival = np.zeros(100)
    finish = np.linspace(1, 10, 100)
    assert stability(arrival, finish, NONE, (2.0, 8.0), "completion")["status"] == "burst"


def _at_rate(n: int, rate_per_s: float):
    config = _tiny_config(n)
    return dataclasses.replace(config, workload=dataclasses.replace(
        config.workload, arrival=ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=rate_per_s)))


def test_a_deployment_that_holds_a_short_burst_but_not_a_long_run_is_flagged():
    """The issue's case: 200 requests meet the SLOs on empty batch slots; 2,000 show the queue.
    The tiny two-replica pool serves about 265 requests/s; offered 500."""
    short = simulate(_at_rate(200, 500.0), 0).summary["steady_state"]["stability"]
    long = simulate(_at_rate(2000, 500.0), 0).summary["steady_state"]["stability"]
    assert short["status"] == "too_short"
    assert short["requests_to_tell"] > 200
    assert long["status"] == "falls_behind"
    assert long["completion_ratio"] < 0.7
    fine = simulate(_at_rate(2000, 240.0), 0).summary["steady_state"]["stability"]
    assert fine["status"] == "keeps_up"


def test_folded_runs_give_the_same_verdict(monkeypatch):
    monkeypatch.setattr(collector_mod, "REQUEST_EXACT_MAX", 300)
    monkeypatch.setattr(collector_mod, "REQUEST_FOLD_ROWS", 128)
    monkeypatch.setattr("sim.simulation.ARRIVAL_CHUNK", 64)
    for rate, status in ((120.0, "keeps_up"), (500.0, "falls_behind")):
        summary = simulate(_at_rate(2400, rate), 0).summary
        assert "folded" in summary
        assert summary["steady_state"]["stability"]["status"] == status, rate


def test_a_shortfall_larger_than_filling_explains_is_decided_before_the_fill_is_over():
    # fill 30 s, the measured half 100 s long and starting 40 s in (< 2 x 30): still filling
    # could explain a ratio down to 1 - tol - 30/100, not 0.2
    args = dict(first_arrival_s=0.0, window=(-60.0, 80.0), arrivals_in_half=1000,
                backlog_at_mid=100, fill_s=30.0, arrival_rate_per_s=10)
    assert verdict(departures_in_half=200, **args)["status"] == "falls_behind"
    assert verdict(departures_in_half=650, **args)["status"] == "too_short"
    assert verdict(departures_in_half=990, **args)["status"] == "keeps_up"
