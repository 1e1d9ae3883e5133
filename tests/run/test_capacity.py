"""Capacity mode: bisection finds the highest rate meeting the SLOs (fake analytic simulator)."""

from __future__ import annotations

import pytest
from fakes import fake_evaluator

from hermes_opt.run.capacity import find_capacity
from hermes_opt.study.definition import from_dict
from sim.errors import ConfigError


def spec(tmp_path, **changes):
    raw = {"name": "cap", "base": ["hardware=h200", "cluster.tp=2", "cluster.num_replicas=2",
                                   "scheduler.max_num_seqs=64"],
           "constraints": ["ttft_ms.p99 <= 1000"], "evaluator": "fakes:fake_evaluator",
           "capacity": {"low": 1.0, "high": 200.0, "rel_tol": 0.01}}
    raw.update(changes)
    return from_dict(raw)


def test_bisection_brackets_the_true_capacity(tmp_path):
    result = find_capacity(spec(tmp_path))
    rate = result["max_rate"]
    ok = lambda r: fake_evaluator([*spec(tmp_path).base, f"workload.arrival.rate_per_s={r!r}"],  # noqa: E731
                                  0, None)["ttft_ms"]["p99"] <= 1000
    assert ok(rate) and not ok(rate * 1.01)
    assert all(p["feasible"] == ok(p["rate"]) for p in result["probes"])


def test_capacity_needs_slos_and_a_runnable_deployment(tmp_path):
    with pytest.raises(ConfigError, match="capacity mode needs SLO constraints"):
        find_capacity(spec(tmp_path, constraints=[]))
    with pytest.raises(ConfigError, match="does not fit"):
        find_capacity(spec(tmp_path, base=["hardware=l40s", "cluster.tp=1"]))
