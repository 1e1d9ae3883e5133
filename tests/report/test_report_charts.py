"""The report's charts: a single-objective study plots its objective against its first latency
constraint (p99 TTFT by default) with the feasible front, not against $/hour (a hyperbola at a
fixed demand); ``report.pareto`` axes still win; the cost-against-load chart is drawn from the
assessment's ``load_table`` (HTML and load.png) and skipped, with one line, without it."""

from __future__ import annotations

import optuna
import pandas as pd

from hermes_opt.report import figures, load_chart, render, study_report
from hermes_opt.report.marks import scatter_marks
from hermes_opt.run import runner
from hermes_opt.study import definition
from hermes_opt.study.definition import from_dict

OBJ = "objective:slo_tokens_per_usd"
LOAD_TABLE = [{"multiple": 1.0, "deployment": "2 x NVIDIA H200 SXM", "usd_per_hour": 9.0,
               "trial": 0},
              {"multiple": 2.0, "deployment": "4 x NVIDIA H200 SXM", "usd_per_hour": 18.0,
               "trial": None},
              {"multiple": 4.0, "deployment": "", "usd_per_hour": None, "trial": None}]


def study(constraints=("ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50"), **extra):
    return from_dict({"name": "charts", "space": {"cluster.num_replicas": {"type": "int", "low": 1,
                                                                          "high": 8}},
                      "constraints": list(constraints), **extra})


def frame():
    """(trial, outcome, p99 TTFT, objective): 0-2 feasible, 1 dominates 2; 3-4 violate."""
    rows = [(0, "feasible", 50.0, 100.0), (1, "feasible", 100.0, 200.0),
            (2, "feasible", 120.0, 150.0), (3, "violates SLO", 1500.0, 20.0),
            (4, "violates SLO", 2_000_000.0, 0.0)]
    return pd.DataFrame([{"trial": t, "outcome": o, "metric:ttft_ms.p99": ttft,
                          "metric:tpot_ms.p99": 20.0, OBJ: obj, "metric:cost_usd_per_hour": 10.0,
                          "param:cluster.num_replicas": t + 1, "replay": "hermes-sim"}
                         for t, o, ttft, obj in rows])


def test_one_objective_is_plotted_against_its_first_latency_constraint_with_the_front():
    spec, f = study(), frame()
    assert render._axes(spec, f) == ("metric:ttft_ms.p99", OBJ)
    assert render._axes(study(("tpot_ms.p99 <= 50",)), f) == ("metric:tpot_ms.p99", OBJ)
    assert render._axes(spec) == ("metric:cost_usd_per_hour", OBJ)  # no trials: no latency
    marks = scatter_marks(spec, f)
    assert list(marks.front.trial) == [0, 1]  # 2 is slower and worse than 1; 3, 4 violate
    assert marks.joined and int(marks.recommended.trial) == 1
    assert marks.bound == (1000.0, "SLO: ttft_ms.p99 <= 1000")


def test_report_pareto_axes_are_kept():
    spec = study(report={"pareto": ["cost_usd_per_hour", "slo_tokens_per_usd"]})
    assert render._axes(spec, frame()) == ("metric:cost_usd_per_hour", OBJ)
    marks = scatter_marks(spec, frame())
    assert marks.front_label == "Pareto front" and int(marks.recommended.trial) == 1
    assert marks.bound is None and marks.x_limit is None  # cost on x: no SLO line, nothing cut
    on_latency = scatter_marks(study(report={"pareto": ["ttft_ms.p99", "slo_tokens_per_usd"]}),
                               frame())
    assert on_latency.bound == (1000.0, "SLO: ttft_ms.p99 <= 1000")


def test_trials_far_beyond_the_bound_are_left_out_and_counted():
    marks = scatter_marks(study(), frame())
    assert marks.x_limit == 10_000.0  # 10 x the SLO bound
    shown, note = marks.shown(frame(), "metric:ttft_ms.p99")
    assert list(shown.trial) == [0, 1, 2, 3]
    assert note == "1 SLO-violating trials beyond 10,000 ms not drawn"


def test_the_html_first_chart_has_the_front_the_recommended_trial_and_the_bound():
    spec, f = study(), frame()
    page = figures.to_html(spec, f, render.summary_blocks(spec, f, f.iloc[:0], None, {}))
    assert "charts: SLO-meeting tokens per $ vs p99 TTFT (ms)" in page
    for name in ("feasible front (best value for its latency)", "recommended (trial 1)",
                 "SLO: ttft_ms.p99 <= 1000", "1 SLO-violating trials beyond 10,000 ms not drawn"):
        assert name.replace("<", "\\u003c") in page, name  # plotly's JSON escapes "<"
    assert "Cost against load" not in page


def test_the_cost_against_load_chart_is_drawn_from_the_load_table(tmp_path):
    spec, f = study(), frame()
    page = figures.to_html(spec, f, render.summary_blocks(spec, f, f.iloc[:0], None, {}),
                           load_table=LOAD_TABLE, demand_rate_per_s=8.0)
    assert load_chart.TITLE in page and "no deployment in the search space meets the SLOs" in page
    hover = "2x demand = 16 requests/s: 4 x NVIDIA H200 SXM, $18.00/hour = $13,140/month"
    assert hover.replace("/", "\\u002f") in page  # plotly's JSON escapes "/"
    fig = load_chart.load_figure(LOAD_TABLE, 8.0)
    assert list(fig.data[0].y) == [9.0 * 730, 18.0 * 730] and list(fig.data[1].x) == [4.0]
    path = tmp_path / "load.png"
    load_chart.load_png(LOAD_TABLE, path, 8.0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def stored_assessment(load_table: list[dict]) -> dict:
    """What hermes_opt.run.assess stores, with one measured candidate (trial 0) and the given
    load rows in the card's form turned into the stored form."""
    candidate = {"trial": 0, "kinds": ["h200"], "layout": "llm 2 x h200 (1 replica of tp 2)",
                 "capacity_multiple": {"low": 1.5, "high": 1.55, "probes": 4},
                 "usd_per_hour": 9.0, "other_usd_per_hour": 0.0,
                 "pools": {"llm": {"hardware": "h200", "devices": 2, "usd_per_hour": 9.0}},
                 "prices": {"h200": {"usd_per_hour": 4.5, "trust": "B"}},
                 "objective": 1e6, "objective_std": 0.0, "error_band": None,
                 "efficiency_entries": ["none:h200"]}
    rows = [{"multiple": r["multiple"], "layout": r["deployment"] or None,
             "usd_per_hour": r["usd_per_hour"], "trial": r["trial"],
             "basis": "no candidate fits the budget" if r["usd_per_hour"] is None else "test"}
            for r in load_table]
    return {"version": 1, "trials": 8, "headroom_required": 1.0, "redundancy": "none",
            "demand_rate_per_s": 12.0, "candidates": [candidate], "load_table": rows}


def run_fake_study(tmp_path, assessment=None):
    tmp_path.mkdir()
    path = tmp_path / "tiny.yaml"
    path.write_text("name: tiny\nbase: [workload.arrival.rate_per_s=12]\n"
                    "space:\n  hardware: {choices: [h100_sxm, h200]}\n"
                    "  cluster.num_replicas: {type: int, low: 1, high: 4}\n  cluster.tp: {choices: [2, 4]}\n"
                    "constraints: ['ttft_ms.p99 <= 1000']\nn_trials: 8\nbatch_size: 4\n"
                    "replicates: 1\nn_jobs: 1\nevaluator: fakes:fake_evaluator\n")
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = definition.load(str(path), [f"storage={url}"])
    runner.run_study(spec, progress_stream=None)
    stored = optuna.load_study(study_name="tiny", storage=url)
    if assessment is not None:
        stored.set_user_attr("assessment", assessment)
    return study_report.write(stored, spec, tmp_path / "report", url)


def test_the_report_writes_load_png_only_with_an_assessment(tmp_path):
    plain = run_fake_study(tmp_path / "a")
    assert "load_png" not in plain and not (tmp_path / "a" / "report" / "load.png").exists()
    summary = plain["md"].read_text()
    assert "Cost against load: not drawn, because the study stores no assessment" in summary
    assert "| **Headroom** | not measured" in summary
    # a custom evaluator stores no deployment record: the card names the trial's parameters
    assert "**Recommendation:** trial " in summary and "(hardware=" in summary.splitlines()[2]
    assert "the trial has no deployment record" in summary
    assessed = run_fake_study(tmp_path / "b", stored_assessment(LOAD_TABLE))
    assert assessed["load_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = assessed["md"].read_text()
    assert "Cost against load: not drawn" not in summary
    assert "| **Cost at other loads** | 1x demand: $6,570/month, 2 x NVIDIA H200 SXM;" in summary
    assert load_chart.TITLE in assessed["html"].read_text()
