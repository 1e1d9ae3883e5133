"""The ``report.pareto`` study key (hermes_opt/study/definition.py): two known metrics whose
feasible front the report draws; anything else is one ConfigError."""

from __future__ import annotations

import pytest

from hermes_opt.study import definition as study
from sim.errors import ConfigError

PAIR = ["ttft_ms.p99", "slo_tokens_per_usd"]


def spec(report):
    return study.from_dict({"name": "pareto", "report": report})


def test_two_known_metrics_are_accepted_in_order():
    s = spec({"pareto": PAIR, "top_k": 3})
    assert s.report_pareto == ("ttft_ms.p99", "slo_tokens_per_usd") and s.top_k == 3
    assert spec({"pareto": ["cost_usd_per_hour", "pools.llm.utilization"]}).report_pareto == (
        "cost_usd_per_hour", "pools.llm.utilization")  # a path under a dynamic section


def test_no_pareto_key_means_the_default_front():
    assert spec({}).report_pareto == () and spec({"pareto": []}).report_pareto == ()
    assert study.from_dict({"name": "pareto"}).report_pareto == ()


def test_it_round_trips_and_does_not_change_what_the_study_computes():
    s = spec({"pareto": PAIR})
    raw = study.to_raw(s)
    assert raw["report"] == {"top_k": 5, "pareto": PAIR}
    assert study.from_dict(raw).report_pareto == s.report_pareto
    assert s.config_hash == spec({}).config_hash  # report is a run field: resume may change it


def test_it_can_be_set_from_the_command_line():
    s = study.load("default", ["report.pareto=[ttft_ms.p99,slo_tokens_per_usd]"])
    assert s.report_pareto == tuple(PAIR)


@pytest.mark.parametrize("pareto", [["ttft_ms.p99"], PAIR + ["cost_usd_per_hour"], "ttft_ms.p99"])
def test_anything_but_two_names_is_rejected(pareto):
    with pytest.raises(ConfigError, match=r"^report\.pareto=.*: must be two metric names \[x, y\]"):
        spec({"pareto": pareto})


def test_an_unknown_metric_is_rejected_naming_its_position():
    with pytest.raises(ConfigError, match=r"^report\.pareto\[1\]='bananas': unknown metric; "
                                          r"allowed: .*ttft_ms\.p99"):
        spec({"pareto": ["ttft_ms.p99", "bananas"]})
    with pytest.raises(ConfigError, match=r"^report\.pareto\[0\]=3: unknown metric"):
        spec({"pareto": [3, "slo_tokens_per_usd"]})


def test_an_unknown_report_key_is_rejected():
    with pytest.raises(ConfigError, match=r"^report=\['paretto'\]: allowed: top_k, pareto, compare$"):
        spec({"paretto": PAIR})
    with pytest.raises(ConfigError, match=r"^report=\[1\]: must be \{top_k"):
        spec([1])
