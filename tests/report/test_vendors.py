"""Best deployment per vendor (hermes_opt/report/vendors.py): a trial's vendor label and pool
layout from its stored deployment record (built as the worker builds it, ``compose.candidate``),
the best feasible trial per label, mixed vs single vendor."""

from __future__ import annotations

import math

import pandas as pd
from records import trial_row

from hermes_opt.report import vendors
from hermes_opt.report.vendors import MIXED, Layout, best_per_vendor, mixed_vs_single
from hermes_opt.study.definition import from_dict

QWEN = "hermes-sim model=qwen3_32b cluster.weight_dtype=fp8"
MIXED_DISAGG = (f"{QWEN} deployment.architecture=disaggregated deployment.prefill.hardware=b200 "
                "deployment.decode.hardware=mi300x seed=0")
MIXED_DESCRIPTION = ("prefill 4 x b200 (4 replicas of tp 1) + decode 4 x mi300x (4 replicas of tp 1)"
                     " on vllm 0.11")  # one engine serves both pools: named once
H200 = f"{QWEN} hardware=h200 cluster.num_replicas=2 seed=0"
B200 = f"{QWEN} hardware=b200 seed=0"
MI300X = f"{QWEN} hardware=mi300x seed=0"
MI300X_TP2 = f"{QWEN} hardware=mi300x cluster.tp=2 seed=0"
MIXED_SKEWED = (f"{QWEN} deployment.architecture=disaggregated deployment.total_devices=4 "
                "deployment.prefill.devices=1 deployment.prefill.hardware=h200 "
                "deployment.decode.hardware=mi325x seed=0")
BROKEN = f"{QWEN} deployment.architecture=disaggregated deployment.prefill.devices=9 seed=0"
OBJ = "objective:slo_tokens_per_usd"
COST = "metric:cost_usd_per_hour"


def study(direction="maximize"):
    return from_dict({"name": "vendors", "objectives": [{"metric": "slo_tokens_per_usd",
                                                         "direction": direction}]})


def frame(rows):
    out = pd.DataFrame(rows, columns=["trial", "outcome", "replay", OBJ, COST])
    out["_deployment"] = [trial_row(replay)["_deployment"] for replay in out.replay]
    return out


def layout(replay):
    """The layout the report reads from the record a trial with this command stores."""
    return vendors.layout(trial_row(replay))


def test_a_colocated_single_vendor_layout():
    assert layout(H200) == Layout(vendor="NVIDIA", description="llm 2 x h200 (2 replicas of tp 1) on vllm 0.11")
    assert layout(MI300X_TP2) == Layout(vendor="AMD", description="llm 2 x mi300x (1 replica of tp 2) on vllm 0.11")


def test_a_disaggregated_mixed_vendor_layout_lists_both_pools():
    assert layout(MIXED_DISAGG) == Layout(vendor=MIXED, description=MIXED_DESCRIPTION)
    assert layout(MIXED_SKEWED) == Layout(
        vendor=MIXED, description="prefill 1 x h200 (1 replica of tp 1) + decode 3 x mi325x (3 replicas of tp 1)"
                    " on vllm 0.11")


def test_a_disaggregated_single_vendor_layout_is_that_vendor():
    replay = (f"{QWEN} deployment.architecture=disaggregated deployment.prefill.hardware=b200 "
              "deployment.decode.hardware=h200 seed=3")
    assert layout(replay) == Layout(vendor="NVIDIA",
                                    description="prefill 4 x b200 (4 replicas of tp 1) "
                                                "+ decode 4 x h200 (4 replicas of tp 1) on vllm 0.11")


def test_a_replay_that_does_not_compose_has_no_layout():
    assert layout(BROKEN) is None


def test_cpu_pools_are_left_out_of_the_label():
    assert layout("hermes-sim workload=qa +cluster=qa_8gpu seed=0") == Layout(
        vendor="NVIDIA", description="llm 8 x h100_sxm (2 replicas of tp 4) on vllm 0.11")


def test_cpu_hosted_encoder_pools_are_left_out_of_the_label_too():
    assert layout("hermes-sim workload=rag_news +cluster=rag_8gpu seed=0").vendor == "NVIDIA"


TRIALS = [
    (0, "feasible", H200, 100.0, 10.0),
    (1, "feasible", B200, 150.0, 20.0),          # best NVIDIA
    (2, "feasible", MI300X, 120.0, 8.0),         # best AMD
    (3, "violates SLO", MI300X_TP2, 500.0, 9.0),  # not feasible: never the best
    (4, "feasible", MIXED_DISAGG, 180.0, 16.0),   # best mixed
    (5, "feasible", MIXED_SKEWED, 90.0, 12.0),
    (6, "feasible", BROKEN, 1000.0, 1.0),         # no layout: skipped
    (7, "infeasible (not simulated)", B200, math.nan, math.nan),
]


def test_best_per_vendor_picks_the_best_feasible_trial_of_each_label():
    table = best_per_vendor(frame(TRIALS), study())
    assert list(table.vendor) == [MIXED, "NVIDIA", "AMD"]  # best first
    assert list(table.trial) == [4, 1, 2]
    assert list(table.objective) == [180.0, 150.0, 120.0]
    assert list(table.usd_per_hour) == [16.0, 20.0, 8.0]
    assert table.deployment[0] == MIXED_DESCRIPTION
    assert table.deployment[1] == "llm 1 x b200 (1 replica of tp 1) on vllm 0.11"
    assert table.ttft_p99_ms.isna().all()  # no such column in the frame


def test_best_per_vendor_follows_a_minimize_objective_and_breaks_ties_by_trial():
    rows = [(0, "feasible", H200, 50.0, 10.0), (1, "feasible", B200, 50.0, 20.0),
            (2, "feasible", MI300X, 70.0, 8.0), (3, "feasible", MI300X_TP2, 30.0, 9.0)]
    table = best_per_vendor(frame(rows), study("minimize"))
    assert list(zip(table.vendor, table.trial)) == [("AMD", 3), ("NVIDIA", 0)]


def test_no_feasible_trial_gives_an_empty_table():
    table = best_per_vendor(frame([(0, "violates SLO", H200, 10.0, 1.0)]), study())
    assert table.empty and mixed_vs_single(table, study()) is None


def test_mixed_vs_single_gives_signed_percentages_against_the_best_single_vendor():
    text = mixed_vs_single(best_per_vendor(frame(TRIALS), study()), study())
    # mixed 180 at 16 $/h vs NVIDIA's 150 at 20 $/h: +20% objective at -20% cost
    assert text == (f"Best mixed-vendor deployment (trial 4: {MIXED_DESCRIPTION}) vs best "
                    "single-vendor (NVIDIA, trial 1: llm 1 x b200 (1 replica of tp 1) on vllm 0.11): +20.0% "
                    "slo_tokens_per_usd at -20.0% $/hour.")


def test_a_worse_and_dearer_mixed_deployment_reads_negative_then_positive():
    rows = [(0, "feasible", B200, 150.0, 20.0), (1, "feasible", MIXED_DISAGG, 135.0, 25.0),
            (2, "feasible", MI300X, 60.0, 8.0)]
    text = mixed_vs_single(best_per_vendor(frame(rows), study()), study())
    assert "trial 1: " in text and "(NVIDIA, trial 0: " in text
    assert text.endswith(": -10.0% slo_tokens_per_usd at +25.0% $/hour.")


def test_mixed_vs_single_needs_both_kinds():
    only_single = best_per_vendor(frame(TRIALS[:3]), study())
    assert set(only_single.vendor) == {"NVIDIA", "AMD"}
    assert mixed_vs_single(only_single, study()) is None
    only_mixed = best_per_vendor(frame([TRIALS[4], TRIALS[5]]), study())
    assert list(only_mixed.vendor) == [MIXED]
    assert mixed_vs_single(only_mixed, study()) is None


def test_feasible_trials_without_a_deployment_layout_give_an_empty_table():
    # a custom evaluator's study: feasible trials whose overrides describe no pools
    table = best_per_vendor(frame([(0, "feasible", BROKEN, 10.0, 1.0)]), study())
    assert table.empty and mixed_vs_single(table, study()) is None
