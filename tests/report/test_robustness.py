"""Probability of being best, break-even prices and the simpler-within-noise rule
(hermes_opt/report/robustness.py), on hand-built assessments whose answers follow by hand."""

from __future__ import annotations

import pytest

from hermes_opt.report import robustness
from hermes_opt.report.robustness import analyse, break_even, simulate_choices

OBJ = ("slo_tokens_per_usd", "maximize")


def cand(trial, hw, devices, price, capacity, *, trust="B", objective=None, std=0.0,
         band=10.0, pools=1, entry=None):
    per_pool = devices // pools
    return {"trial": trial, "kinds": [hw], "layout": f"{devices} x {hw}",
            "capacity_multiple": {"low": capacity, "high": capacity * 1.05, "probes": 3},
            "usd_per_hour": devices * price,
            "pools": {f"p{i}": {"hardware": hw, "devices": per_pool,
                                "usd_per_hour": per_pool * price} for i in range(pools)},
            "prices": {hw: {"usd_per_hour": price, "trust": trust}},
            "other_usd_per_hour": 0.0,
            "objective": objective if objective is not None else 1e6 / (devices * price),
            "objective_std": std, "error_band": {"p90_pct": band},
            "efficiency_entries": [entry or f"vllm/{hw}"]}


def assessment(*cands, headroom=1.0):
    return {"candidates": list(cands), "headroom_required": headroom}


def test_break_even_prices_are_where_the_costs_cross():
    rec = cand(1, "b200", 2, 7.15, 1.5)
    alt = cand(2, "h200", 4, 4.5, 1.1)  # $18.0/h against $14.3/h
    evens = {(e["device"], e["side"]): e["break_even_usd_per_hour"] for e in break_even(rec, alt)}
    assert evens[("h200", "alternative")] == pytest.approx(14.3 / 4)
    assert evens[("b200", "recommendation")] == pytest.approx(18.0 / 2)


def test_a_wide_cost_gap_with_tight_prices_is_robust():
    got = analyse(assessment(cand(1, "b200", 2, 7.15, 1.5), cand(2, "h200", 4, 4.5, 1.1)),
                  OBJ, 0)
    assert got["choice"] == 1 and got["why"] is None
    assert got["p_best"] > 0.9 and got["verdict"] == "robust"
    assert got["alternative"] == 2


def test_a_recommendation_at_the_edge_of_its_capacity_loses_to_the_model_error():
    # capacity 1.02x the demand with a +-40 % band: it fails in about half the draws, and then
    # the dearer alternative (capacity 3x) wins
    rec = cand(1, "mi300x", 4, 2.0, 1.02, band=40.0)
    alt = cand(2, "h100_sxm", 4, 3.0, 3.0, band=10.0)
    got = analyse(assessment(rec, alt), OBJ, 0)
    assert 0.35 < got["p_best"] < 0.65
    assert got["verdict"] == f"within the noise of trial 2 ({alt['layout']})"


def test_candidates_on_one_entry_share_their_error():
    # two deployments of the same device and entry: if one fails the other fails too, so the
    # cheaper one is best whenever anything holds
    a = cand(1, "h200", 2, 4.5, 1.3, band=50.0)
    b = cand(2, "h200", 4, 4.5, 2.6, band=50.0)
    winners = simulate_choices([a, b], 1.0, 0)
    holds_a = winners == 0
    # b holds in every draw where a holds, and more: never b while a holds
    assert not ((winners == 1) & holds_a).any()
    assert 0.6 < holds_a.mean() < 0.95


def test_a_user_price_range_replaces_the_trust_grade():
    rec = cand(1, "b200", 2, 7.15, 1.5)
    alt = cand(2, "mi300x", 2, 7.0, 1.5)
    cheap = analyse(assessment(rec, alt), OBJ, 0, price_ranges={"mi300x": (1.0, 2.0)})
    assert cheap["p_best"] == 0.0 and cheap["shares"][2] == 1.0


def test_within_the_noise_the_simpler_deployment_is_recommended():
    best = cand(1, "mi300x", 8, 2.0, 1.2, objective=1.001e6, std=3e3, pools=2)
    simple = cand(2, "mi300x", 8, 2.0, 1.2, objective=1.000e6, std=3e3, pools=1)
    got = analyse(assessment(best, simple), OBJ, 0)
    assert got["choice"] == 2
    assert "within the noise of the best (trial 1: 0.1% apart, noise 1.0%)" in got["why"]
    far = cand(3, "mi300x", 8, 2.0, 1.2, objective=0.95e6, std=3e3, pools=1)
    assert analyse(assessment(best, far), OBJ, 0)["choice"] == 1


def test_deterministic_for_a_seed_and_skipped_for_other_objectives():
    a = assessment(cand(1, "b200", 2, 7.15, 1.2, band=30), cand(2, "h200", 4, 3.7, 1.2))
    assert analyse(a, OBJ, 5) == analyse(a, OBJ, 5)
    assert analyse(a, ("ttft_ms.p99", "minimize"), 0)["skipped"].startswith(
        "objective minimize ttft_ms.p99")
    assert analyse({"skipped": "no feasible trial"}, OBJ, 0) == {"skipped": "no feasible trial"}


def test_constants_the_cases_assume():
    assert robustness.TRUST_SIGMA["B"] == 0.08 and robustness.NOISE_FLOOR == 0.01


def test_the_card_view_of_an_assessment_and_the_simpler_choice_first():
    import pandas as pd

    from hermes_opt.report.decision import recommended_first, view
    from hermes_opt.study.definition import from_dict
    spec = from_dict({"name": "x", "space": {"cluster.tp": {"choices": [1]}}})
    best = cand(1, "mi300x", 8, 2.0, 1.2, objective=1.001e6, std=3e3, pools=2)
    simple = cand(2, "mi300x", 8, 2.0, 1.3, objective=1.000e6, std=3e3, pools=1)
    stored = {**assessment(best, simple), "demand_rate_per_s": 10.0,
              "load_table": [{"multiple": 1.0, "layout": "8 x mi300x", "usd_per_hour": 16.0,
                              "trial": 1, "basis": "the recommendation"},
                             {"multiple": 2.0, "layout": None, "usd_per_hour": None,
                              "trial": None, "basis": "no candidate fits the budget"}]}
    got = view(spec, pd.DataFrame(), stored)
    assert got["choice"] == 2
    assert got["headroom"] == {"trial": 2, "capacity_rate_per_s": 13.0, "demand_rate_per_s": 10.0,
                               "ratio": 1.3, "upper_ratio": 1.3 * 1.05}
    # the same devices at the same price, more capacity: the simpler one is also robust
    assert got["robustness"]["verdict"].startswith("robust; recommended over the best because "
                                                   "trial 2 is within the noise")
    assert got["load_table"][1] == {"multiple": 2.0, "deployment": "no candidate fits the budget",
                                    "usd_per_hour": None, "trial": None}
    top = pd.DataFrame({"trial": [1, 3]})
    frame = pd.DataFrame({"trial": [1, 2, 3]})
    assert recommended_first(top, frame, 2).trial.tolist() == [2, 1, 3]
    assert recommended_first(top, frame, None).trial.tolist() == [1, 3]


def test_price_ranges_are_a_study_key_checked_in_one_line():
    from hermes_opt.study.definition import from_dict, to_raw
    from sim.errors import ConfigError
    base = {"name": "x", "space": {"cluster.tp": {"choices": [1]}}}
    spec = from_dict({**base, "price_ranges": {"h200": [3.5, 5]}})
    assert spec.price_ranges == (("h200", 3.5, 5.0),)
    assert from_dict(to_raw(spec)).price_ranges == spec.price_ranges
    for bad, match in (({"h200": [5, 3.5]}, r"price_ranges.h200=\[5, 3.5\]: must be \[low, high\]"),
                       ({"h200": [float("nan"), 4]}, r"price_ranges.h200=\[nan, 4\]"),
                       ({"h2000": [1, 2]}, r"price_ranges='h2000': unknown hardware; allowed: "),
                       ([1, 2], r"price_ranges=\[1, 2\]: must be a mapping")):
        with pytest.raises(ConfigError, match=match):
            from_dict({**base, "price_ranges": bad})


def test_a_lone_recommendation_at_its_headroom_is_at_risk_not_within_the_noise():
    import pandas as pd

    from hermes_opt.report.decision import view
    from hermes_opt.study.definition import from_dict
    spec = from_dict({"name": "x", "space": {"cluster.tp": {"choices": [1]}}})
    lone = cand(1, "tpu_v7", 8, 8.0, 1.2, band=45.0)
    got = view(spec, pd.DataFrame(), {**assessment(lone, headroom=1.2), "demand_rate_per_s": 100.0})
    # capacity exactly at the required 1.2x: the model's error sinks it in about half the draws
    assert got["robustness"]["verdict"].startswith("at risk: in ")
    assert got["robustness"]["verdict"].endswith(
        "of the draws of the model's error no measured configuration keeps 1.2x the demand")
    assert 0.4 < got["robustness"]["p_best"] < 0.6 and got["robustness"]["alternative"] is None
