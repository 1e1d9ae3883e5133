"""A trace-driven trial's report names the trace's real rate and lengths (the deployment record's
``traffic``), not the workload YAML's placeholder ``rate_per_s`` ("the offered 1 requests/s")."""

from __future__ import annotations

import pandas as pd
import pytest

from hermes_opt.compose import candidate
from hermes_opt.report import recommend, traffic
from hermes_opt.report.trials import top_configurations
from hermes_opt.report.vendors import RECORD
from hermes_opt.study.definition import from_dict

OVERRIDES = ["workload=trace_mooncake", "kv_tiers=hbm_dram", "hardware=h100_sxm",
             "model=llama3_1_8b"]


@pytest.fixture(scope="module")
def record():
    return candidate.compose(OVERRIDES).deployment


def test_the_record_holds_the_replayed_traces_rate_and_lengths(record):
    replayed = record["traffic"]
    assert replayed["requests"] == 400 and replayed["span_s"] == pytest.approx(141.0)
    assert record["offered_rate_per_s"] == replayed["rate_per_s"] == pytest.approx(399 / 141,
                                                                                  rel=1e-5)
    assert replayed["prompt_tokens"]["p50"] == pytest.approx(9075.5)
    assert replayed["shared_prefix"]["requests"] == 399  # all but the first start with block 0


def test_a_replay_at_twice_the_speed_doubles_the_rate():
    fast = candidate.compose([*OVERRIDES, "workload.arrival.time_scale=0.5"]).deployment
    assert fast["traffic"]["rate_per_s"] == pytest.approx(2 * 399 / 141, rel=1e-5)


def test_a_drawn_workload_keeps_its_configured_rate_and_has_no_traffic():
    drawn = candidate.compose(["workload.arrival.rate_per_s=3"]).deployment
    assert drawn["offered_rate_per_s"] == 3.0 and "traffic" not in drawn


def test_the_recommendation_says_the_traces_rate(record):
    spec = from_dict({"name": "t", "base": OVERRIDES,
                      "space": {"kv_tiers.eviction": {"choices": ["lru", "lfu"]}},
                      "objectives": [{"metric": "slo_tokens_per_usd"}]})
    row = {"trial": 0, "outcome": "feasible", "reason": "", "replay": "hermes-sim seed=0",
           "param:kv_tiers.eviction": "lru", "objective:slo_tokens_per_usd": 10.0,
           "std:slo_tokens_per_usd": 0.0, "metric:cost_usd_per_hour": 5.0,
           "metric:num_devices": 1.0, "metric:output_tokens_per_s": 100.0,
           "_overrides": [], RECORD: record}
    frame = pd.DataFrame([row])
    text = recommend.recommendation(spec, frame, top_configurations(frame, spec))
    assert "at the trace's 2.83 requests/s (400 requests over 141 s of " \
           "mooncake_conversation_sample.jsonl)" in text
    assert "offered 1 requests/s" not in text
    line = traffic.line(record["traffic"])
    assert line.startswith("mooncake_conversation_sample.jsonl (mooncake): 400 requests over "
                           "141 s = 2.83 requests/s; prompt tokens mean 14,276, p50 9076")
