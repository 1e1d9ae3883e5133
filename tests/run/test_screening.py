"""Multi-fidelity search (study key ``screening``): the rule, and a small real study in which the
analytical tier decides some trials and the simulator the rest, identically on 1 and 2 workers."""

from __future__ import annotations

import pytest

from hermes_opt.report.trials import SCREENED, trial_rows
from hermes_opt.run import runner
from hermes_opt.run.screen import Rule
from hermes_opt.study.definition import from_dict, load, to_raw
from hermes_opt.study.objective import Objective, parse_constraint


def small_raw(tmp_path, name: str, **changes) -> dict:
    """dse_chat_wide on 4 devices at 30 requests/s, 300 requests, 10 colocated points: some
    fail the SLOs, some meet them."""
    raw = to_raw(load("dse_chat_wide"))
    raw["base"] = [b for b in raw["base"] if not b.startswith(("deployment.total_devices",
                                                               "workload.num_requests"))]
    raw["base"] += ["deployment.total_devices=4", "workload.num_requests=300",
                    "workload.arrival.rate_per_s=30"]
    raw["space"] = {"deployment.architecture": {"type": "categorical", "choices": ["colocated"]},
                    "deployment.colocated.hardware": {"type": "categorical", "choices": [
                        "h200", "b200", "mi300x", "gaudi3", "tpu_v6e"]},
                    "deployment.colocated.tp": {"type": "categorical", "choices": [1, 2]}}
    raw.update(name=name, n_trials=10, batch_size=4, n_jobs=1,
               screening={"enabled": True, "margin": 0.5},
               storage=f"sqlite:///{tmp_path / (name + '.db')}")
    raw.update(changes)
    return raw


def test_rule_prunes_only_beyond_the_margin():
    rule = Rule(0.5, (parse_constraint("ttft_ms.p99 <= 250", 0),),
                Objective(metric="slo_tokens_per_usd"), objective_margin=0.5)
    summary = lambda ttft, obj: {"ttft_ms": {"p99": ttft}, "slo_tokens_per_usd": obj}  # noqa: E731
    assert rule.decide(summary(370, 1e6), None) == ""  # 370 / 1.5 < 250: might meet it
    assert "misses ttft_ms.p99 <= 250" in rule.decide(summary(380, 1e6), None)
    assert rule.decide(summary(100, 1e6), 1.4e6) == ""  # 1.5 x 1e6 could beat 1.4e6
    assert "cannot beat the best simulated" in rule.decide(summary(100, 1e6), 1.6e6)
    assert Rule(0.5, (), None).decide(summary(1e9, 0.0), 1e9) == ""  # nothing it may prune on


def test_screened_study_says_which_fidelity_decided_each_trial(tmp_path):
    spec = from_dict(small_raw(tmp_path, "one"))
    study, _ = runner.run_study(spec, progress_stream=None)
    frame = trial_rows(study, spec)
    assert set(frame.fidelity) == {"analytic", "simulator", ""}  # "": infeasible, not evaluated
    screened = frame[frame.outcome == SCREENED]
    assert len(screened) >= 3 and (screened.fidelity == "analytic").all()
    assert screened.reason.str.startswith("screened: estimated").all()
    assert screened["objective:slo_tokens_per_usd"].isna().all()  # never passed off as simulated
    simulated = frame[frame.fidelity == "simulator"]
    assert (simulated.outcome.isin(["feasible", "violates SLO"])).all() and len(simulated) >= 2
    assert "metric:screening.estimate.ttft_ms_p99" in frame.columns  # estimate next to the sim
    best = max(runner.feasible_trials(study), key=lambda t: t.values[0])
    assert frame.set_index("trial").loc[best.number, "fidelity"] == "simulator"
    # 1 vs 2 workers, loky vs Dask: tests/run/test_dask_executor.py

    from hermes_opt.report import study_report
    paths = study_report.write(study, spec, tmp_path / "report", spec.storage_url())
    summary = paths["summary.md"].read_text() if "summary.md" in paths else (
        tmp_path / "report" / "summary.md").read_text()
    assert f"Fidelity: {len(screened)} trials decided by the analytical tier" in summary
    assert "screened (analytic)" in summary
    written = (tmp_path / "report" / "trials.csv").read_text().splitlines()
    assert "fidelity" in written[0].split(",")


@pytest.mark.parametrize("screening, needle", [
    ({"enabled": True, "margin": -1}, "screening.margin=-1: must be a number in [0, 10]"),
    ({"enabled": "yes"}, "screening.enabled='yes': must be true or false"),
    ({"enabled": True, "objective_margin": "x"}, "screening.objective_margin='x': must be a "
                                                 "number in [0, 10]"),
    ({"enabled": True, "bogus": 1}, "screening=['bogus']: allowed: enabled, margin, "
                                    "objective_margin"),
])
def test_bad_screening_settings_are_one_clear_error(tmp_path, screening, needle):
    from sim.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        from_dict(small_raw(tmp_path, "bad", screening=screening))
    assert str(err.value).startswith(needle), str(err.value)


def test_screening_changes_the_definition_only_when_enabled(tmp_path):
    on = from_dict(small_raw(tmp_path, "x"))
    off = from_dict(small_raw(tmp_path, "x", screening={"enabled": False}))
    plain = small_raw(tmp_path, "x")
    del plain["screening"]
    assert on.config_hash != off.config_hash == from_dict(plain).config_hash
