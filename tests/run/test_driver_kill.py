"""A driver killed mid-batch (SQLite), then the same command again: the finished study equals
one never interrupted. Parameters are stored before any job is submitted, and a batch whose
sampling the kill cut short is replayed on resume (``hermes_opt.run.replay``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from fakes import subprocess_env
from faults import CLEAN, fake_study, fault_figures, figures_against_straight, stored_trials

from hermes_opt.run import replay, runner
from hermes_opt.run.driver import Driver
from hermes_opt.study.space import SearchSpace

OFF = {"min_per_choice": 0}


class Killed(BaseException):
    """Stands for SIGKILL: no except clause catches it and the driver never tells anything."""


DEFAULT = {("creating", 3, "tpe"), ("sampling", 1, "tpe"), ("sampling", 3, "nsga2")}


@pytest.mark.parametrize("step,done,sampler", [
    pytest.param(step, done, sampler, marks=() if (step, done, sampler) in DEFAULT
                 else pytest.mark.slow)  # ~5 s each; the default suite runs three
    for step in ("creating", "sampling") for done in (1, 3)
    for sampler in ("tpe", "random", "nsga2", "grid")])
def test_driver_killed_mid_batch_resumes_exactly(fake_spec, tmp_path, monkeypatch, sampler, done,
                                                 step):
    """The kill lands after `done` trials of the third batch were created (the others do not
    exist) or got their parameters (the others exist, RUNNING, with none): the resumed study
    equals an uninterrupted one."""
    extra = {"sampler": sampler, "coverage": OFF, "n_startup_trials": 4}
    if sampler == "nsga2":
        extra = {"sampler": sampler, "coverage": OFF, "objectives": [
            {"metric": "slo_tokens_per_usd"}, {"metric": "ttft_ms.p99", "direction": "minimize"}]}
    if sampler == "grid":
        extra = {"sampler": sampler, "coverage": OFF, "space": {
            "hardware": {"choices": ["h100_sxm", "h200"]}, "cluster.tp": {"choices": [2, 4, 8]},
            "cluster.num_replicas": {"type": "int", "low": 1, "high": 4}}}
    straight, _ = runner.run_study(fake_spec(n_trials=24, name="straight", **extra),
                                   progress_stream=None)
    spec = fake_spec(n_trials=24, storage=f"sqlite:///{tmp_path / 'killed.db'}", **extra)
    owner, name = (Driver, "_ask") if step == "creating" else (SearchSpace, "suggest")
    real = getattr(owner, name)
    calls = {"n": 0}

    def dies(*args):
        calls["n"] += 1
        if calls["n"] == 8 + done + 1:  # batches of 4: the third batch's trial `done`
            raise Killed
        return real(*args)
    with monkeypatch.context() as patch:
        patch.setattr(owner, name, dies)
        with pytest.raises(Killed):
            runner.run_study(spec, progress_stream=None)
    left = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    if step == "creating":
        assert len(left) == 8 + done
    else:
        assert sum(not replay.missing(spec, t) for t in left if t.number >= 8) == done
    resumed, stats = runner.run_study(spec, progress_stream=None)
    assert fault_figures(straight, resumed) == CLEAN


STUDY = fake_study("killed", base_extra=", fake.delay_s=0.05", n_trials=40, n_jobs=2,
                   extra="n_startup_trials: 8\n")
HERMES_OPT = [sys.executable, "-c", "from hermes_opt.cli.opt_command import main; main()"]



@pytest.mark.slow  # ~35 s each: three hermes-opt runs
@pytest.mark.parametrize("at_trials", [6, 21, 37])
def test_driver_sigkilled_then_resumed_equals_an_uninterrupted_run(tmp_path, at_trials):
    """``kill -9`` of the hermes-opt process alone (its workers notice and exit) once the
    study holds `at_trials` trials (asked, possibly unsampled), then the same command."""
    for name in ("straight", "killed"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "s.yaml").write_text(STUDY)
    clean = subprocess.run(HERMES_OPT + ["study=s.yaml"], cwd=tmp_path / "straight",
                           env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    where = tmp_path / "killed"
    proc = subprocess.Popen(HERMES_OPT + ["study=s.yaml"], cwd=where, env=subprocess_env(),
                            stderr=subprocess.PIPE, text=True)
    db = where / "runs" / "killed" / "study.db"
    deadline = time.time() + 120
    while stored_trials(db) < at_trials:
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    again = subprocess.run(HERMES_OPT + ["study=s.yaml"], cwd=where, env=subprocess_env(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert figures_against_straight(tmp_path, "killed", db) == CLEAN
