"""Ranking figures on hand-made records whose right answers are known."""

from __future__ import annotations

import math

import pytest

from hermes_opt.validation import ranking
from hermes_opt.validation.ranking import Record

OFF = ("llama2-70b-99", "Offline")
SRV = ("llama2-70b-99", "Server")


def rec(system: str, measured: float, predicted: float, *, vendor: str = "NVIDIA",
        gpu: str = "h100_sxm", group=OFF, submitter: str = "S") -> Record:
    return Record(group=group, system=system, submitter=submitter, vendor=vendor, gpu=gpu,
                  num_gpus=8, measured=measured, predicted=predicted)


def test_gap_rule_drops_pairs_within_5_percent_of_the_smaller():
    # 100 vs 105: gap exactly 5 % of the smaller -> not scored; 100 vs 106 -> scored
    recs = [rec("a", 100, 1), rec("b", 105, 2), rec("c", 106, 0.5)]
    acc = ranking.pairwise_accuracy(recs)["all"]["pooled"]
    # scored: a-c (106 > 100, predicted 0.5 < 1: wrong), b-c? gap 1/105 -> no; a-b: no
    assert acc["pairs"] == 1
    assert acc["correct"] == 0 and acc["wrong"] == 1
    assert acc["share"] == 0.0


def test_gap_is_relative_to_the_smaller_value():
    assert ranking.relative_gap(100, 110) == pytest.approx(0.10)
    assert ranking.relative_gap(110, 100) == pytest.approx(0.10)
    # 100 vs 95.2: 5.04 % of 95.2 (but 4.8 % of 100): scored
    acc = ranking.pairwise_accuracy([rec("a", 100, 2), rec("b", 95.2, 1)])["all"]["pooled"]
    assert acc["pairs"] == 1 and acc["correct"] == 1


def test_cross_vendor_filter_keeps_only_nvidia_vs_amd_pairs():
    recs = [rec("n1", 100, 10), rec("n2", 200, 20),  # same vendor, correct
            rec("m1", 300, 5, vendor="AMD", gpu="mi300x")]  # beats both, predicted below both
    acc = ranking.pairwise_accuracy(recs)
    assert acc["all"]["pooled"] == {"pairs": 3, "correct": 1, "wrong": 2, "tied": 0,
                                    "share": pytest.approx(1 / 3),
                                    "share_ties_half": pytest.approx(1 / 3)}
    cv = acc["cross_vendor"]["pooled"]
    assert (cv["pairs"], cv["correct"], cv["wrong"]) == (2, 0, 2)
    assert cv["share"] == 0.0


def test_cross_gpu_filter_drops_same_gpu_pairs():
    recs = [rec("a", 100, 1), rec("b", 200, 2), rec("c", 400, 3, gpu="h200")]
    assert ranking.pairwise_accuracy(recs)["cross_gpu"]["pooled"]["pairs"] == 2


def test_same_vendor_cross_gpu_filter_drops_same_gpu_and_cross_vendor_pairs():
    recs = [rec("a", 100, 1), rec("b", 200, 2), rec("c", 400, 3, gpu="h200"),
            rec("m", 800, 0.5, vendor="AMD", gpu="mi300x")]
    t = ranking.pairwise_accuracy(recs)["same_vendor_cross_gpu"]["pooled"]
    assert (t["pairs"], t["correct"]) == (2, 2)  # a-c, b-c; not a-b (same GPU), not *-m (AMD)


def test_ties_in_prediction_count_wrong_in_share_and_half_in_share_ties_half():
    recs = [rec("a", 100, 7), rec("b", 200, 7), rec("c", 400, 9)]
    t = ranking.pairwise_accuracy(recs)["all"]["pooled"]
    assert (t["pairs"], t["correct"], t["wrong"], t["tied"]) == (3, 2, 0, 1)
    assert t["share"] == pytest.approx(2 / 3)
    assert t["share_ties_half"] == pytest.approx(2.5 / 3)


def test_float_noise_is_a_tie():
    x = 1234.5678
    recs = [rec("a", 100, x), rec("b", 200, x * 8 / 8 * (1 + 1e-13))]
    assert ranking.pairwise_accuracy(recs)["all"]["pooled"]["tied"] == 1


def test_pairs_never_cross_groups_and_pooled_sums_groups():
    recs = [rec("a", 100, 1), rec("b", 200, 2),  # Offline: correct
            rec("a", 100, 2, group=SRV), rec("b", 200, 1, group=SRV),  # Server: wrong
            rec("x", 1000, 0.1, group=SRV, submitter="T")]  # Server: beats a, b, predicted below
    acc = ranking.pairwise_accuracy(recs)["all"]
    assert acc["groups"]["llama2-70b-99/Offline"]["pairs"] == 1
    assert acc["groups"]["llama2-70b-99/Offline"]["correct"] == 1
    srv = acc["groups"]["llama2-70b-99/Server"]
    assert (srv["pairs"], srv["correct"]) == (3, 0)
    assert acc["pooled"]["pairs"] == 4 and acc["pooled"]["correct"] == 1


def test_group_with_one_system_has_no_pairs_and_no_spearman():
    recs = [rec("a", 100, 1)]
    assert ranking.pairwise_accuracy(recs)["all"]["pooled"]["pairs"] == 0
    assert ranking.pairwise_accuracy(recs)["all"]["pooled"]["share"] is None
    sp = ranking.spearman_by_group(recs)
    assert sp["groups"]["llama2-70b-99/Offline"] == {"n": 1, "rho": None}
    assert sp["median"] is None


def test_records_without_a_prediction_are_skipped():
    recs = [rec("a", 100, 1), rec("b", 200, math.nan), rec("c", 400, 3)]
    assert ranking.pairwise_accuracy(recs)["all"]["pooled"]["pairs"] == 1
    assert ranking.errors(recs)["Offline"]["n"] == 2


def test_spearman_perfect_reversed_and_tied():
    up = [rec(s, m, p) for s, m, p in (("a", 1, 10), ("b", 2, 20), ("c", 3, 30))]
    down = [rec(s, m, p, group=SRV) for s, m, p in (("a", 1, 30), ("b", 2, 20), ("c", 3, 10))]
    sp = ranking.spearman_by_group(up + down)
    assert sp["groups"]["llama2-70b-99/Offline"]["rho"] == pytest.approx(1.0)
    assert sp["groups"]["llama2-70b-99/Server"]["rho"] == pytest.approx(-1.0)
    assert sp["median"] == pytest.approx(0.0)
    # average ranks for ties: measured ranks 1,2,3; predicted (5,5,9) -> 1.5,1.5,3: rho = sqrt(3)/2
    assert ranking.spearman([1, 2, 3], [5, 5, 9]) == pytest.approx(math.sqrt(3) / 2)
    assert ranking.spearman([1, 2, 3], [4, 4, 4]) is None  # a constant prediction orders nothing


def test_spearman_matches_scipy_on_a_mixed_case():
    stats = pytest.importorskip("scipy.stats")
    m, p = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0], [2.0, 7.0, 1.0, 8.0, 2.0, 8.0]
    assert ranking.spearman(m, p) == pytest.approx(stats.spearmanr(m, p).statistic)


def test_errors_per_scenario_median_p90_and_ratio():
    offline = [rec(str(i), 100, 100 + d) for i, d in enumerate((-30, -10, 0, 10, 20))]
    server = [rec("s", 10, 12, group=SRV)]
    e = ranking.errors(offline + server)
    assert e["Offline"]["n"] == 5
    assert e["Offline"]["median_pct"] == pytest.approx(10.0)  # |errors| 30, 10, 0, 10, 20
    assert e["Offline"]["p90_pct"] == pytest.approx(26.0)  # numpy linear: 20 + 0.6 * (30 - 20)
    assert e["Offline"]["median_ratio"] == pytest.approx(1.0)
    assert e["Server"] == {"n": 1, "median_pct": pytest.approx(20.0),
                           "p90_pct": pytest.approx(20.0), "median_ratio": pytest.approx(1.2)}


def test_input_order_does_not_change_anything_and_records_round_trip():
    recs = [rec("a", 100, 3), rec("b", 200, 2, vendor="AMD", gpu="mi300x"), rec("c", 400, 9),
            rec("d", 50, 1, group=SRV)]
    assert ranking.summary(recs) == ranking.summary(list(reversed(recs)))
    assert [Record.from_dict(r.to_dict()) for r in recs] == recs


def test_scored_pairs_put_the_measured_faster_first():
    (p,) = ranking.scored_pairs([rec("slow", 100, 5), rec("fast", 300, 1)])
    assert (p.a.system, p.b.system, p.outcome) == ("fast", "slow", "wrong")
    assert p.measured_gap == pytest.approx(2.0)
