"""Every alternative accounted for (hermes_opt/report/accounting.py, why_none.py): the best
feasible deployment per hardware kind, vendor, engine and architecture, and for every choice of
the space without one, why none, in words that match trials.csv."""

from __future__ import annotations

import math

import pandas as pd
from records import trial_row

from hermes_opt.report import accounting, render
from hermes_opt.report.why_none import reason_kind, why_none
from hermes_opt.study.definition import from_dict

QWEN = "hermes-sim model=qwen3_32b cluster.weight_dtype=fp8"
H200 = f"{QWEN} hardware=h200 cluster.num_replicas=2"
B200 = f"{QWEN} hardware=b200"
MI300X = f"{QWEN} hardware=mi300x"
MI300X_TP2 = f"{QWEN} hardware=mi300x cluster.tp=2"
MIXED = (f"{QWEN} deployment.architecture=disaggregated deployment.prefill.hardware=b200 "
         "deployment.decode.hardware=mi300x")
TTFT, TPOT = "ttft_ms.p99 <= 250", "tpot_ms.p99 <= 40"
BUDGET = "over budget: 171.60 $/hour > budget.max_usd_per_hour=120"
NO_FIT = ("cluster: model qwen3_32b does not fit on l40s with tp=1 pp=1 (fp8 weights): needs "
          "32.8 GB of weights per device")


def study(**extra):
    return from_dict({"name": "acc", "base": ["model=qwen3_32b", "cluster.weight_dtype=fp8"],
                      "space": {"hardware": {"choices": ["h200", "b200", "mi300x", "l40s",
                                                         "h100_sxm"]},
                                "cluster.tp": {"choices": [1, 2]}},
                      "constraints": [TTFT, TPOT], **extra})


def row(trial, replay, outcome, objective=math.nan, ttft=math.nan, tpot=math.nan, reason="",
        hardware=None, coverage=""):
    """A trials-table row; the constraint columns are what the driver stores (value - bound) /
    bound; a trial that never composed has no record, only its parameters."""
    stored = trial_row(replay) if outcome != "infeasible (not simulated)" else {
        "_deployment": None, "_overrides": [f"hardware={hardware}", f"x={trial}"]}
    return {"trial": trial, "outcome": outcome, "reason": reason,
            "param:hardware": hardware or replay.split("hardware=")[-1].split()[0],
            "objective:slo_tokens_per_usd": objective, "metric:cost_usd_per_hour": 10.0,
            "metric:ttft_ms.p99": ttft, "metric:tpot_ms.p99": tpot,
            f"constraint:{TTFT}": (ttft - 250) / 250, f"constraint:{TPOT}": (tpot - 40) / 40,
            "coverage": coverage, **stored}


ROWS = [row(0, H200, "feasible", 100.0, 200.0, 30.0),
        row(1, B200, "feasible", 150.0, 150.0, 20.0),
        row(2, MI300X, "violates SLO", 90.0, 300.0, 30.0),
        row(3, MI300X_TP2, "violates SLO", 80.0, 280.0, 45.0),
        row(4, MI300X, "violates SLO", 90.0, 300.0, 30.0, coverage="hardware=mi300x"),  # repeat
        row(5, B200, "infeasible (not simulated)", reason=BUDGET, hardware="l40s"),
        row(6, B200, "infeasible (not simulated)", reason=NO_FIT, hardware="l40s")]


def test_each_hardware_kind_of_the_space_has_its_best_or_why_none():
    table = accounting.best_per(pd.DataFrame(ROWS), study(), "hardware",
                                accounting.hardware_label)
    assert list(table.label) == ["b200", "h200", "mi300x", "l40s", "h100_sxm"]
    assert list(table.trial[:2]) == [1, 0] and table.trial[2:].isna().all()
    assert list(table.why_none) == [
        "", "",
        # trials 2 and 4 are one candidate; TTFT was never met, TPOT was (trial 2)
        "2 simulated, both violated p99 TTFT (best 280 ms against 250 ms)",
        "2 proposed, none simulated: over budget (1), does not fit in memory (1)",
        "never proposed"]
    vendors = accounting.best_per(pd.DataFrame(ROWS), study(), "vendor", accounting.vendor_label)
    assert list(vendors.label) == ["NVIDIA", "AMD"] and list(vendors.why_none) == [
        "", "2 simulated, both violated p99 TTFT (best 280 ms against 250 ms)"]


def test_a_kind_feasible_only_in_a_mix_says_so_and_architectures_are_told_apart():
    rows = pd.DataFrame([*ROWS, row(7, MIXED, "feasible", 120.0, 200.0, 30.0)])
    table = accounting.best_per(rows, study(), "hardware", accounting.hardware_label)
    assert list(table.label) == ["b200", "b200 + mi300x", "h200", "mi300x", "l40s", "h100_sxm"]
    assert table.why_none[3] == ("2 simulated, both violated p99 TTFT (best 280 ms against 250 "
                                 "ms); feasible mixed: b200 + mi300x (trial 7)")
    arch = accounting.best_per(rows, study(), "architecture", accounting.architecture_label)
    assert list(zip(arch.label, arch.trial)) == [("colocated", 1), ("disaggregated", 7)]
    engines = accounting.best_per(rows, study(), "engine", accounting.engine_label)
    assert list(engines.label) == ["vllm"]  # one engine: the report shows no engine table


def test_why_none_phrases():
    spec = study()
    frame = pd.DataFrame(ROWS)
    assert why_none(frame.iloc[[5]], spec) == "1 proposed, over budget"
    both = pd.DataFrame([row(8, B200, "infeasible (not simulated)", reason=BUDGET,
                             hardware="l40s"), row(9, B200, "infeasible (not simulated)",
                                                   reason=BUDGET.replace("171", "140"),
                                                   hardware="l40s")])
    assert why_none(both, spec) == "2 proposed, both over budget"
    assert why_none(frame.iloc[[3]], spec) == (
        "1 simulated, violated p99 TTFT (280 ms against 250 ms) and p99 TPOT (45 ms against "
        "40 ms)")
    # each SLO met by some candidate, never both: the closest one (smallest worst violation)
    split = pd.DataFrame([row(10, MI300X, "violates SLO", 1.0, 260.0, 30.0),
                          row(11, MI300X_TP2, "violates SLO", 1.0, 200.0, 50.0)])
    assert why_none(split, spec) == ("2 simulated, none met every SLO (closest, trial 10: p99 "
                                     "TTFT 260 ms against 250 ms)")
    mixed = pd.concat([frame.iloc[[2, 3]], frame.iloc[[5]]])
    assert why_none(mixed, spec) == ("3 proposed: 2 simulated, both violated p99 TTFT (best 280 "
                                     "ms against 250 ms); 1 not simulated (over budget)")
    assert why_none(frame.iloc[[]], spec) == "never proposed"


def test_reason_kinds_drop_the_numbers_and_keep_the_key():
    assert reason_kind(BUDGET) == "over budget"
    assert reason_kind(NO_FIT) == "does not fit in memory"
    assert reason_kind("deployment.prefill.tp=2: does not divide the pool's 7 devices (every "
                       "replica needs tp devices)") == "tp does not divide the pool's devices"


def test_the_report_tables_show_why_none_and_the_coverage_trials():
    spec = study()
    frame = pd.DataFrame(ROWS)
    tables = accounting.tables(frame, spec)
    assert list(tables) == ["vendor", "hardware", "engine", "architecture"]
    assert tables["hardware"].note == (
        "Coverage: 1 trials were added after the sampler's n_trials=32 so that each hardware, "
        "engine and architecture choice has 3 simulated candidates where the space and 6 "
        "attempts allow (hardware=mi300x 1); trials.csv's coverage column marks them.")
    vendor_rows = tables["vendor"].rows.rename(columns={"label": "vendor"})
    md = render.to_markdown(render.summary_blocks(
        spec, frame, frame.iloc[:0], None, {}, vendor_rows, None,
        kinds=[tables[k] for k in ("hardware", "engine", "architecture")]))
    assert ("| AMD | – | none feasible: 2 simulated, both violated p99 TTFT (best 280 ms against "
            "250 ms) | – | – | – | – |") in md
    assert "| h100_sxm | – | none feasible: never proposed | – | – | – | – |" in md
    assert "| b200 | 1 | llm 1 x b200 (1 replica of tp 1) on vllm 0.11 | 150 | 10 |" in md
    assert "Best deployment per serving engine" not in md  # one engine, one row
    assert "Best deployment per architecture" not in md
