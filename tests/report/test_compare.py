"""The case table (hermes_opt/report/compare.py, ``report.compare``): every distinct simulated
design once, in parameter order, with the metrics the study names; and ``report.compare``'s
validation in the study definition."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from hermes_opt.report.compare import case_rows
from hermes_opt.study.definition import from_dict
from sim.errors import ConfigError


def study(compare=("e2e_ms.p50", "kv_lookups.llm.hit_rate")):
    return from_dict({
        "name": "cases", "objectives": [{"metric": "e2e_ms.p99", "direction": "minimize"}],
        "space": {"kv_tiers": {"choices": ["mist_a_lpddr", "mist_b_dram"]},
                  "workload.request_types.ctx.prefix.prefix_tokens.mean": {"choices": [4096, 24576]}},
        "report": {"compare": compare if isinstance(compare, str) else list(compare)}})


def frame():
    rows = [  # trial, outcome, kv_tiers, context, e2e p50, hit rate
        (0, "feasible", "mist_b_dram", 24576, 900.0, 0.7),
        (1, "violates SLO", "mist_a_lpddr", 24576, 800.0, 0.5),
        (2, "feasible", "mist_a_lpddr", 4096, 100.0, 0.9),
        (3, "feasible", "mist_a_lpddr", 4096, 101.0, 0.9),  # a revisit: listed once (trial 2)
        (4, "infeasible (not simulated)", "mist_b_dram", 4096, math.nan, math.nan),
    ]
    return pd.DataFrame(rows, columns=["trial", "outcome", "param:kv_tiers",
                                       "param:workload.request_types.ctx.prefix.prefix_tokens.mean",
                                       "metric:e2e_ms.p50", "metric:kv_lookups.llm.hit_rate"])


def test_one_row_per_simulated_design_in_parameter_order():
    headers, rows = case_rows(study(), frame())
    assert headers == ["trial", "kv_tiers", "workload.request_types.ctx.prefix.prefix_tokens.mean",
                       "e2e_ms.p50", "kv_lookups.llm.hit_rate", "outcome"]
    # numbers sort as numbers (4096 before 24576), revisits and unsimulated designs are left out
    assert [r[:3] for r in rows] == [[2, "mist_a_lpddr", 4096], [1, "mist_a_lpddr", 24576],
                                     [0, "mist_b_dram", 24576]]
    assert rows[0][3:] == [100.0, 0.9, "feasible"]


def test_a_metric_a_trial_lacks_is_nan():
    headers, rows = case_rows(study(("e2e_ms.p50", "ttft_ms.p99")), frame())
    assert all(math.isnan(r[4]) for r in rows)


def test_nothing_simulated_gives_no_table():
    assert case_rows(study(), frame().iloc[4:]) == ([], [])


@pytest.mark.parametrize("compare,match", [
    (["e2e_ms.p5O"], r"report.compare\[0\]='e2e_ms.p5O': unknown metric"),
    ("e2e_ms.p50", r"report.compare='e2e_ms.p50': must be a list"),
    ([f"e2e_ms.p{p}" for p in (50, 90, 99)] * 5, r"at most 12 metric names"),
])
def test_bad_compare_lists_are_one_line(compare, match):
    with pytest.raises(ConfigError, match=match):
        study(compare)


def test_compare_is_a_report_choice_not_part_of_what_the_study_computes():
    """A stored study resumes after its report.compare list changes (same config hash), and the
    list survives the round trip through the stored definition."""
    with_cases, without = study(), study(())
    assert with_cases.report_compare == ("e2e_ms.p50", "kv_lookups.llm.hit_rate")
    assert without.report_compare == ()
    assert with_cases.config_hash == without.config_hash
    from hermes_opt.study.definition import to_raw
    assert from_dict(to_raw(with_cases)).report_compare == with_cases.report_compare
    assert "compare" not in to_raw(without)["report"]
