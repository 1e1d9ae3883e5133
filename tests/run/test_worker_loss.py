"""A worker process SIGKILLed mid-trial (``kill -9``, the OOM killer): the driver re-runs the
lost jobs (``hermes_opt.run.pool``, at most MAX_RETRIES times each) and the finished study
equals one never interrupted: no trial lost, duplicated or different."""

from __future__ import annotations

import pytest
from faults import CLEAN, fault_figures, trials_of
from optuna.trial import TrialState

from hermes_opt.run import runner
from hermes_opt.run.pool import MAX_RETRIES

OFF = {"min_per_choice": 0}


# 16 trials x 2 replicates = 32 evaluations, batches of 4 (8 evaluations) with two in flight
@pytest.mark.parametrize("kill_at,moment", [(2, "first batch"), (15, "mid-study"),
                                            (31, "last batch")])
def test_worker_killed_mid_trial_study_equals_an_uninterrupted_one(fake_spec, tmp_path,
                                                                     kill_at, moment):
    straight, _ = runner.run_study(fake_spec(n_trials=16, n_jobs=2, name="straight",
                                             coverage=OFF), progress_stream=None)
    base = ["model=llama3_1_70b", f"fake.log={tmp_path / 'evals.log'}", f"fake.kill_at={kill_at}",
            "fake.delay_s=0.02"]
    spec = fake_spec(n_trials=16, n_jobs=2, base=base, evaluator="fakes:killing_evaluator",
                     coverage=OFF, storage=f"sqlite:///{tmp_path / 'killed.db'}")
    study, stats = runner.run_study(spec, progress_stream=None)
    assert not stats.interrupted and stats.trials_told == 16
    assert fault_figures(straight, study, stats.trials_told) == CLEAN, moment
    assert any("worker process died" in n for n in stats.notes), stats.notes
    evaluations = (tmp_path / "evals.log").read_text().count("x")
    assert evaluations > 32  # the killed one and its batch-mates ran again


def test_a_trial_that_always_kills_its_worker_fails_alone(fake_spec, tmp_path):
    """A candidate that kills its worker every time (out of memory) is lost MAX_RETRIES + 1
    times, then its trial is FAIL with the reason; every other trial is as in a clean run."""
    space = {"hardware": {"choices": ["h200"]}, "cluster.tp": {"choices": [2]},
             "cluster.num_replicas": {"type": "int", "low": 1, "high": 4}}
    straight, _ = runner.run_study(fake_spec(space=space, n_trials=8, n_jobs=2, name="straight",
                                             coverage=OFF), progress_stream=None)
    base = ["model=llama3_1_70b", f"fake.log={tmp_path / 'evals.log'}", "fake.always_replicas=3"]
    study, stats = runner.run_study(
        fake_spec(space=space, n_trials=8, n_jobs=2, base=base, coverage=OFF,
                  evaluator="fakes:killing_evaluator",
                  storage=f"sqlite:///{tmp_path / 'oom.db'}"), progress_stream=None)
    clean, hit = trials_of(straight), trials_of(study)
    killers = {n for n, t in clean.items() if t[1]["cluster.num_replicas"] == 3}
    assert killers and stats.trials_told == 8
    for n in killers:
        assert hit[n][0] == "FAIL"
        reason = study.trials[n].user_attrs["result"]["reason"]
        assert f"worker process died {MAX_RETRIES + 1} times" in reason
    assert {n: t for n, t in hit.items() if n not in killers} == {
        n: t for n, t in clean.items() if n not in killers}
    assert all(t.state is TrialState.COMPLETE for t in study.trials if t.number not in killers)
