"""The validation study's fast subset (shipped data, ~10 s): fails when held-out error regresses.

Regression rule (issue 5): each figure must stay within its target; where the target is not met
today, within the currently achieved figure (``ACHIEVED``, fast subset on the shipped data) plus
one percentage point. Update ``ACHIEVED`` only together with a change that explains it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hermes_opt.cli.validate_command import validate_main
from hermes_opt.validation import study

# (dataset, metric) -> (median %, p90 %) achieved by the calibrated model on held-out rows where
# the issue-5 target is missed (None: that figure meets its target, which is then the limit);
# measured with `hermes-sim validate --fast --shared-dir none` (prefill: 4.99 / 11.51).
ACHIEVED = {
    ("splitwise", "prefill_ms"): (None, 11.6),
}
MARGIN_PCT = 1.0


@pytest.fixture(scope="module")
def fast_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("validation")
    return study.run(shared_dir=None, out_dir=out, fast=True, command="pytest")


def test_held_out_error_does_not_regress(fast_study):
    targets = fast_study.targets
    assert len(targets) >= 8
    for r in targets.itertuples(index=False):
        assert r.n_held_out > 0, (r.dataset, r.metric)
        target_median = float(r.target.split("median <= ")[1].split("%")[0])
        target_p90 = float(r.target.split("p90 <= ")[1].split("%")[0]) if "p90" in r.target else None
        achieved = ACHIEVED.get((r.dataset, r.metric))
        limit_median = (max(target_median, achieved[0] + MARGIN_PCT) if achieved and achieved[0]
                        else target_median)
        assert r.calibrated_median <= limit_median, (r.dataset, r.metric, r.calibrated_median)
        if target_p90 is not None:
            limit_p90 = max(target_p90, achieved[1] + MARGIN_PCT) if achieved and achieved[1] else target_p90
            assert r.calibrated_p90 <= limit_p90, (r.dataset, r.metric, r.calibrated_p90)


def test_calibration_beats_the_roofline_where_it_was_fitted(fast_study):
    t = fast_study.errors.set_index(["dataset", "metric"])
    for key in [("splitwise", "prefill_ms"), ("splitwise", "decode_ms"),
                ("vidur-operators", "layer_non_attention_ms"),
                ("trtllm-v0.17-max-load", "output_tokens_per_s")]:
        row = t.loc[key]
        assert row.cal_heldout_median < row.roof_heldout_median, key


def test_rows_are_predicted_vs_measured_and_split_honestly(fast_study):
    rows = fast_study.rows
    assert set(rows.split.dropna()) <= {"fit", "held_out", "excluded", ""}
    sw = rows[rows.dataset == "splitwise"]
    # a configuration is either fitted on or held out, never both
    roles = sw[sw.split.isin(["fit", "held_out"])].groupby(["key", "metric"]).split.nunique()
    assert (roles == 1).all()
    finite = rows[np.isfinite(rows.predicted_roofline)]
    assert np.allclose(finite.ape_roofline, 100 * abs(finite.predicted_roofline / finite.measured - 1))
    serving = rows[rows.dataset.str.startswith("trtllm")]
    assert {"max_load", "qps=2", "qps=32"} <= set(serving.load)


def test_report_files_and_coverage(fast_study):
    out = fast_study.out_dir
    for name in ("summary.md", "summary.json", "rows.csv", "errors.csv", "targets.csv", "coverage.csv",
                 "error_vs_batch_context.png", "pred_vs_measured_splitwise.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "error_vs_batch_context.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cov = fast_study.coverage.set_index("source")
    # every Splitwise configuration runs since BLOOM-176B is in the catalog (2026-12) ...
    assert cov.loc["splitwise", "in_scope"] == cov.loc["splitwise", "reproduced"] > 0
    assert cov.loc["splitwise", "notes"] == ""
    # ... as its own dataset, every row held out: the Splitwise profiles were fitted on Llama2-70B only
    bloom = fast_study.rows[fast_study.rows.model == "bloom_176b"]
    assert set(bloom.dataset) == {"splitwise-bloom_176b", "splitwise-pcap-bloom_176b"}
    # excluded: configurations inconsistent in themselves (calibrate.inconsistent_step_configs)
    assert set(bloom.split) == {"held_out", "excluded"}
    assert "bloom_176b" not in set(fast_study.rows[fast_study.rows.dataset == "splitwise"].model)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fast"] is True and summary["targets"]


def test_validate_cli_bad_input_is_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        validate_main(["--study", str(tmp_path / "nope.yaml")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hermes-sim validate: error: --study=") and "\n" not in err
    with pytest.raises(SystemExit) as exc:
        validate_main(["--bogus"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_full_study_meets_or_holds_every_figure(tmp_path):
    result = study.run(shared_dir="../shared", out_dir=tmp_path, fast=False, command="pytest -m slow")
    missed = result.targets[result.targets.status == "MISSED"]
    assert set(zip(missed.dataset, missed.metric)) <= set(ACHIEVED), missed


def test_validate_help_documents_every_option_and_columns():
    from hermes_opt.cli.validate_command import parser
    text = parser().format_help()
    for action in parser()._actions:
        for flag in action.option_strings:
            assert flag in text
    for column in ("prompt_size", "token_time", "num_tokens", "concurrency_or_qps_or_batch", "time_ms"):
        assert column in text
