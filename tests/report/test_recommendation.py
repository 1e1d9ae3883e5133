"""The decision maker's report (hermes_opt/report/recommend.py, alternatives.py, labels.py,
importance.py, figures.py, study_report.git_commit): the recommendation paragraph first, distinct
alternatives, readable labels, no "± 0" from one replicate, grouped reasons, provenance."""

from __future__ import annotations

import math
import re
import subprocess

import pandas as pd
import pytest
from records import trial_row

from hermes_opt.report import card, figures, recommend, render, study_report
from hermes_opt.report.importance import Spread, spreads
from hermes_opt.report.labels import column_label, fmt_spread, group_reasons, metric_label, shorten
from hermes_opt.report.trials import top_configurations
from hermes_opt.study.definition import from_dict

QWEN = "hermes-sim model=qwen3_32b cluster.weight_dtype=fp8"
H200 = f"{QWEN} hardware=h200 cluster.num_replicas=2 workload.arrival.rate_per_s=8"
B200 = f"{QWEN} hardware=b200 cluster.num_replicas=2 workload.arrival.rate_per_s=8"


def study(replicates=1, **extra):
    return from_dict({"name": "rec", "base": ["model=qwen3_32b", "cluster.weight_dtype=fp8"],
                      "space": {"hardware": {"choices": ["h200", "b200"]},
                                "scheduler.max_num_seqs": {"type": "int", "low": 16,
                                                           "high": 256}},
                      "objectives": [{"metric": "slo_tokens_per_usd"}],
                      "constraints": ["ttft_ms.p99 <= 250", "tpot_ms.p99 <= 40"],
                      "replicates": replicates, **extra})


def row(trial, replay, seqs, objective, cost=10.0, ttft=180.0, tpot=20.0, outcome="feasible",
        **metrics):
    hw = re.search(r"hardware=(\w+)", replay).group(1)
    out = {"trial": trial, "outcome": outcome, "reason": "", "replay": f"{replay} seed=0",
           "param:hardware": hw, "param:scheduler.max_num_seqs": seqs,
           "objective:slo_tokens_per_usd": objective, "std:slo_tokens_per_usd": 0.0,
           "std:ttft_ms.p99": 0.0, "metric:cost_usd_per_hour": cost, "metric:ttft_ms.p99": ttft,
           "metric:tpot_ms.p99": tpot, "metric:num_devices": 2.0,
           "metric:steady_state.goodput_output_tokens_per_s": 1000.0,
           "metric:output_tokens_per_s": 1100.0}
    out.update({f"metric:{k}": v for k, v in metrics.items()})
    stored = trial_row(replay)  # the record a study stores; its overrides without the base
    out.update(stored, _overrides=stored["_overrides"][len(study().base):])
    return out


def frame(*rows):
    return pd.DataFrame(list(rows))


FRAME = frame(row(0, H200, 64, 1000.0), row(1, H200, 256, 1002.0, cost=10.01),
              row(2, H200, 128, 999.0), row(3, B200, 64, 800.0, cost=20.0),
              row(4, B200, 128, 500.0, outcome="violates SLO"))


def test_the_recommendation_names_deployment_cost_per_token_margins_and_confidence():
    spec = study()
    top = top_configurations(FRAME, spec)
    text = recommend.recommendation(spec, FRAME, top)
    assert text.startswith("Recommendation: deploy llm 2 x h200 (2 replicas of tp 1) on vllm 0.11 (trial 1")
    assert "$10.01/hour" in text
    usd_m = 10.01 / (1000.0 * 3600 / 1e6)  # $/hour over millions of steady-state tokens/hour
    assert f"${usd_m:.3g} per million SLO-meeting output tokens" in text
    assert "p99 TTFT 180 ms against 250 ms (28% margin)" in text
    assert "p99 TPOT 20 ms against 40 ms (50% margin)" in text
    assert "±" not in text.split("Confidence:")[0]  # one replicate: values alone
    assert "no replicate spread" in text
    assert ("Headroom to capacity was not measured" in text and "at the offered 8 requests/s"
            in text and "`hermes-opt capacity study=rec " in text)
    # the engine model's measured band of the deployment's efficiency entry (docs/engines.md)
    assert re.search(r"Confidence: vllm [0-9.]+ on h200, efficiency entry vllm/cuda/hopper/\w+ "
                     r"\(exact\); measured error median [0-9.]+%, p90 [0-9.]+% \(n=\d+", text)
    assert "docs/engines.md" in text
    assert "Next distinct alternative: llm 2 x b200" in text


def test_tokens_per_accelerator_counts_gpus_not_cpu_hosts():
    spec = study()
    with_gpus = frame(row(0, H200, 64, 1000.0, num_accelerators=2.0))
    text = recommend.recommendation(spec, with_gpus, top_configurations(with_gpus, spec))
    assert "550 output tokens/s per accelerator" in text  # 1,100 tokens/s over 2 GPUs
    assert math.isnan(recommend.tokens_per_accelerator(pd.Series({"metric:output_tokens_per_s": 5.0})))


def test_an_alternative_with_the_same_layout_says_which_setting_and_latency_differ():
    spec = study()
    same = frame(row(0, H200, 64, 1000.0, ttft=180.0), row(1, H200, 256, 999.0, ttft=240.0))
    text = recommend.recommendation(spec, same, top_configurations(same, spec))
    assert ("Next distinct alternative: llm 2 x h200 (2 replicas of tp 1) on vllm 0.11 with "
            "scheduler.max_num_seqs=256 (trial 1, -0.1%") in text
    assert "p99 TTFT 240 ms" in text


def test_headroom_uses_a_measured_capacity():
    spec = study()
    f = frame(row(0, H200, 64, 1000.0, capacity_rate_per_s=12.0))
    text = recommend.recommendation(spec, f, top_configurations(f, spec))
    assert "sustains 12 requests/s within the SLOs against the 8 requests/s offered (+50%)" in text


def test_no_feasible_trial_says_so():
    spec = study()
    f = frame(row(0, H200, 64, 1.0, outcome="violates SLO"))
    assert recommend.recommendation(spec, f, top_configurations(f, spec)).startswith(
        "Recommendation: none.")


def test_equal_results_of_one_layout_merge_into_one_alternative_with_the_range():
    top = top_configurations(FRAME, study())
    assert list(top.trial) == [1, 3]  # trials 0, 2 are trial 1 within 0.5%; 4 violates the SLO
    assert top.iloc[0]["range:scheduler.max_num_seqs"] == "64-256"
    assert top.iloc[0].alike == "0, 2"
    assert top.iloc[1]["range:scheduler.max_num_seqs"] == "64" and top.iloc[1].alike == ""


def test_other_layouts_or_results_beyond_the_tolerance_stay_separate():
    same_numbers = frame(row(0, H200, 64, 1000.0), row(1, B200, 64, 1000.0))
    assert list(top_configurations(same_numbers, study()).trial) == [0, 1]
    apart = frame(row(0, H200, 64, 1000.0), row(1, H200, 128, 1000.0, ttft=190.0))
    assert list(top_configurations(apart, study()).trial) == [0, 1]


def test_summary_puts_the_card_first_and_the_paragraph_below_and_never_prints_plus_minus_zero():
    spec = study()
    top = top_configurations(FRAME, spec)
    lead = recommend.recommendation(spec, FRAME, top)
    decision = card.decision_card(spec, FRAME, top)
    blocks = render.summary_blocks(spec, FRAME, top, None, {"git commit": "abc1234"}, lead=lead,
                                   card=decision)
    assert blocks[0][0] == "h1" and blocks[1] == ("lead", decision.headline)
    assert blocks[2] == ("card", decision.rows) and blocks[3] == ("charts", "main")
    md = render.to_markdown(blocks)
    assert md.splitlines()[2].startswith("**Recommendation:** 2 x NVIDIA H200 SXM in one HGX H200 "
                                         "8-GPU server (2 of its 8 GPUs) on vLLM 0.11: $7,307 "
                                         "per month at the demand of 8 requests/s")
    assert "| **Cost** | $7,307 per month ($10.01 per hour x 730 hours)" in md
    # the paragraph the card replaced, with its replay/capacity command, follows the top table
    assert md.index("## Top 2 distinct") < md.index("## The recommendation in full") < md.index(
        "Recommendation: deploy llm 2 x h200")
    assert "`hermes-opt capacity study=rec " in md.split("## The recommendation in full")[1]
    assert "± 0" not in md and "(mean ± std)" not in md
    assert ("| # | Trial | Deployment | Max sequences | SLO-meeting tokens per $ | Cost ($/hour) "
            "| p99 TTFT / TPOT (ms) |") in md
    assert "| 1 | 1 (+2 alike) | 2 x NVIDIA H200 SXM (2 replicas of TP 1) | 64-256 | 1002 |" in md
    without_card = render.summary_blocks(spec, FRAME, top, None, {}, lead=lead)
    assert without_card[1] == ("lead", lead) and without_card[2] == ("charts", "main")
    assert "SLO-meeting tokens per $" in md and "Cost ($/hour)" in md and "p99 TTFT (ms)" in md
    three = study(replicates=3)
    spread = FRAME.assign(**{"std:slo_tokens_per_usd": 5.0})
    md3 = render.to_markdown(render.summary_blocks(three, spread, top_configurations(spread, three),
                                                   None, {}))
    assert "(mean ± std)" in md3 and "1002 ± 5" in md3


def test_html_has_lead_before_charts_and_tables_scroll_in_their_own_box():
    spec = study()
    top = top_configurations(FRAME, spec)
    blocks = render.summary_blocks(spec, FRAME, top, None, {}, lead="Recommendation: x")
    page = figures.to_html(spec, FRAME, blocks)
    assert page.index("class='lead'") < page.index("Plotly.newPlot") < page.index("<table")
    assert "<div class='scroll'><table>" in page and ".scroll{overflow-x:auto" in page
    assert "<script src" not in page and page.count("<h1>") == 1


@pytest.mark.parametrize("name, label", [
    ("slo_tokens_per_usd", "SLO-meeting tokens per $"), ("cost_usd_per_hour", "Cost ($/hour)"),
    ("ttft_ms.p99", "p99 TTFT (ms)"), ("tpot_ms.mean", "mean TPOT (ms)"),
    ("pools.llm.utilization", "llm (pool): utilisation"),
    ("request_types.chat.ttft_ms.p99", "chat (type): p99 TTFT (ms)")])
def test_metric_labels_are_readable_with_units(name, label):
    assert metric_label(name) == label


def test_column_labels_and_spread():
    assert column_label("metric:cost_usd_per_hour") == "Cost ($/hour)"
    assert column_label("param:cluster.tp") == "TP"
    assert fmt_spread(1234.6, 0.0, 1) == "1235" and fmt_spread(1234.6, 2.0, 3) == "1235 ± 2"
    assert fmt_spread(5.0, math.nan, 3) == "5"


def test_reasons_differing_only_by_numbers_are_one_row_and_names_keep_their_digits():
    reasons = ["over budget: 171.60 $/hour > budget.max_usd_per_hour=120",
               "over budget: 165.12 $/hour > budget.max_usd_per_hour=120",
               "over budget: 40 devices > budget.max_devices=32",
               "model does not fit on h100_sxm with tp=1", "model does not fit on h200 with tp=1",
               ""]
    grouped = group_reasons(reasons)
    assert grouped[0] == (2, reasons[0])
    assert len(grouped) == 4  # the devices reason and both hardware names stay apart


def test_long_reasons_are_shortened_at_a_word_boundary():
    text = "word " * 100
    short = shorten(text, 42)
    assert short.endswith(" …") and len(short) <= 44 and short[:-2].split()[-1] == "word"


def test_png_ticks_are_plain_numbers_without_an_offset():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([1_000_000, 1_000_010], [3_789_473, 3_789_480])
    figures._plain(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    plt.close(fig)
    assert labels and all("e" not in t for t in labels) and any("3,789,47" in t for t in labels)


def test_git_commit_is_a_commit_or_says_it_is_not_a_checkout(monkeypatch):
    value = study_report.git_commit()
    assert re.fullmatch(r"[0-9a-f]{4,40}( \+ uncommitted changes)?", value) or \
        value == "not a git checkout"

    def broken(*args, **kwargs):
        raise subprocess.TimeoutExpired("git", 5)
    monkeypatch.setattr(study_report.subprocess, "run", broken)
    assert study_report.git_commit() in ("not a git checkout",)


def test_the_spread_table_gives_each_values_best_and_cannot_contradict_the_kind_table():
    """FRAME: h200's best feasible 1002 (trial 1), b200's 800 (trial 3): hardware spreads
    1002 / 800 = 1.2525x, the per-kind table's best over its worst; max_num_seqs (16-256) has
    more than 8 values, so 4 equal ranges: 16-75, 76-135, 136-195, 196-256."""
    spec = study()
    found, why = spreads(spec, FRAME)
    assert why is None
    hardware, seqs = found
    assert hardware == Spread(param="hardware", best=("h200", 1002.0, 1), worst=("b200", 800.0, 3),
                              ratio=1002.0 / 800.0, values=2, none_feasible=())
    # 64 -> 16-75 (trials 0, 3: best 1000), 128 -> 76-135 (trial 2: 999), 256 -> 196-256 (1002)
    assert seqs == Spread(param="scheduler.max_num_seqs", best=("196-256", 1002.0, 1),
                          worst=("76-135", 999.0, 2), ratio=1002.0 / 999.0, values=3,
                          none_feasible=())
    few, why = spreads(spec, frame(row(0, H200, 64, 1.0)))
    assert few == [] and why == ("not enough feasible trials: 1, the table needs at least 2")
    md = render.to_markdown(render.summary_blocks(spec, FRAME, top_configurations(FRAME, spec),
                                                  None, {}, importance=(found, why)))
    assert ("| Hardware (hardware) | 1.25x | h200: 1002 (trial 1) | b200: 800 (trial 3) | 2 | – |"
            in md)


def test_a_value_without_a_feasible_trial_is_listed_and_minimising_inverts_the_ratio():
    spec = study(objectives=[{"metric": "cost_usd_per_hour", "direction": "minimize"}])
    rows = frame(row(0, H200, 64, 10.0), row(1, B200, 64, 25.0),
                 row(2, B200, 128, 20.0, outcome="violates SLO"))
    rows["objective:cost_usd_per_hour"] = rows["objective:slo_tokens_per_usd"]
    found, _ = spreads(spec, rows)
    hardware = next(s for s in found if s.param == "hardware")
    assert hardware.best == ("h200", 10.0, 0) and hardware.worst == ("b200", 25.0, 1)
    assert hardware.ratio == 2.5
    seqs = next(s for s in found if s.param == "scheduler.max_num_seqs")
    assert seqs.values == 1 and math.isnan(seqs.ratio) and seqs.none_feasible == ("76-135",)
