"""Objective metrics, SLO constraints (<= 0 feasible), budgets, replicate aggregation."""

from __future__ import annotations

import math

import pytest

from hermes_opt.study.objective import (
    NAN_VIOLATION,
    Budget,
    Objective,
    metric,
    parse_constraint,
    score,
)
from sim.errors import ConfigError


def summary(goodput=1000.0, cost=3.6, ttft_p99=500.0, tpot_p99=20.0):
    lat = lambda v: {"mean": v / 2, "p50": v / 2, "p90": v, "p99": v}  # noqa: E731
    return {"goodput_output_tokens_per_s": goodput, "output_tokens_per_s": goodput,
            "cost_usd_per_hour": cost, "ttft_ms": lat(ttft_p99), "tpot_ms": lat(tpot_p99),
            "pools": {"llm": {"utilization": 0.5}}}


def test_slo_tokens_per_usd_is_goodput_over_cost_per_second():
    assert metric(summary(goodput=1000.0, cost=3.6), "slo_tokens_per_usd") == pytest.approx(1e6)
    assert metric(summary(), "ttft_ms.p99") == 500.0
    assert metric(summary(), "pools.llm.utilization") == 0.5
    with pytest.raises(KeyError):
        metric(summary(), "ttft_ms.p999")


def test_constraint_sign_and_scale():
    c = parse_constraint("ttft_ms.p99 <= 1000", 0)
    assert c.violation(500) == pytest.approx(-0.5)
    assert c.violation(1500) == pytest.approx(0.5)
    assert c.violation(math.nan) == NAN_VIOLATION
    ge = parse_constraint("slo_attainment >= 0.9", 1)
    assert ge.violation(0.99) < 0 < ge.violation(0.8)


@pytest.mark.parametrize("text", ["ttft_ms.p99 < 1000", "ttft_ms.p99 <= fast", "nonsense <= 3",
                                  "ttft_ms.p99 <= inf"])
def test_malformed_constraint_is_config_error(text):
    with pytest.raises(ConfigError, match=r"^constraints"):
        parse_constraint(text, 0)


def test_unknown_objective_metric_lists_allowed():
    with pytest.raises(ConfigError, match="unknown metric; allowed: .*goodput_tokens_per_usd"):
        Objective(metric="tokens_per_banana")


def test_score_means_replicates_and_reports_spread():
    objs = (Objective(metric="slo_tokens_per_usd"),)
    cons = (parse_constraint("ttft_ms.p99 <= 1000", 0),)
    s = score([summary(goodput=1000, ttft_p99=900), summary(goodput=2000, ttft_p99=1300)], objs, cons)
    assert s.values == (pytest.approx(1.5e6),)
    assert s.metrics["ttft_ms.p99"] == pytest.approx(1100)
    assert s.spread["ttft_ms.p99"] == pytest.approx(200)
    assert s.constraints["ttft_ms.p99 <= 1000"] == pytest.approx(0.1)
    assert not s.feasible


def test_budget_names_the_limit():
    budget = Budget(max_usd_per_hour=50, max_devices=8)
    assert budget.violation(40, 8) is None
    assert "max_usd_per_hour=50" in budget.violation(60, 4)
    assert "max_devices=8" in budget.violation(40, 9)


def test_slo_answers_per_usd_counts_one_answer_per_slo_meeting_request():
    from hermes_opt.study.objective import metric
    summary = {"cost_usd_per_hour": 36.0, "output_tokens_per_s": 1.0,
               "steady_state": {"slo_attainment": 0.75, "requests": 400, "window_s": 100.0}}
    # 0.75 x 400 answers over 100 s = 3 answers/s; $36/h = $0.01/s -> 300 answers per $
    assert metric(summary, "slo_answers_per_usd") == pytest.approx(300.0)
    assert metric({**summary, "steady_state": {"slo_attainment": 1.0, "requests": 0,
                                               "window_s": 0.0}}, "slo_answers_per_usd") == 0.0
