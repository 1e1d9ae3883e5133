"""A trial's candidate is composed once (``hermes_opt.compose.candidate``) and carried from the
worker to the report: one ``SimConfig`` build per evaluated trial however many replicates, with
and without screening, and a report that reads stored records instead of composing."""

from __future__ import annotations

import json
import sqlite3

import pytest

from hermes_opt.compose import candidate as candidate_mod
from hermes_opt.compose import overrides as overrides_mod
from hermes_opt.compose import to_sim
from hermes_opt.report import study_report
from hermes_opt.run import runner
from hermes_opt.run.worker import Simulate, run_trial, simulate_overrides
from hermes_opt.study.definition import from_dict


def real_spec(tmp_path, name, **changes):
    """A small real-simulator study: two hardware kinds, replicas, 2 replicates, one worker
    (in-process, so the counter below sees every build)."""
    raw = {"name": name, "base": ["model=llama3_1_8b", "workload.num_requests=30",
                                  "workload.arrival.rate_per_s=4"],
           "space": {"hardware": {"choices": ["h100_sxm", "a100_80g", "mi300x"]},
                     "cluster.num_replicas": {"type": "int", "low": 1, "high": 3},
                     "scheduler.max_num_seqs": {"type": "int", "low": 16, "high": 256}},
           "constraints": ["ttft_ms.p99 <= 2000"], "budget": {"max_devices": 2},
           "n_trials": 9, "batch_size": 3, "replicates": 2, "seed": 1, "n_jobs": 1,
           "storage": f"sqlite:///{tmp_path / 'study.db'}",
           "coverage": {"min_per_choice": 0}}  # the sampler's trials only
    raw.update(changes)
    return from_dict(raw)


@pytest.fixture
def builds(monkeypatch):
    """Counts SimConfig builds (``to_sim.sim_config`` calls) in this process."""
    calls = []
    real = to_sim.sim_config

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(to_sim, "sim_config", counting)
    return calls


@pytest.mark.parametrize("screening", [False, True])
def test_one_simconfig_build_per_evaluated_trial(tmp_path, builds, screening, monkeypatch):
    spec = real_spec(tmp_path, f"once_{screening}",
                     screening={"enabled": screening, "margin": 0.5})
    during_trials = []
    real_assess = runner.assess

    def counted_assess(*args):  # the assessment after the trials composes its own probes
        during_trials.append(len(builds))
        return real_assess(*args)
    monkeypatch.setattr(runner, "assess", counted_assess)
    study, stats = runner.run_study(spec, progress_stream=None)
    evaluated = stats.trials_told - stats.reused  # repeats are answered from the first one
    assert stats.trials_told == 9 and evaluated >= 3
    assert during_trials == [evaluated]  # not replicates x trials, not 2-3 per trial
    # the assessment builds each measured candidate once in this process (cached), plus one
    # per resized deployment it probes
    measured = len(study.user_attrs["assessment"].get("candidates", []))
    assert len(builds) - evaluated <= measured + 2
    stored = [t.user_attrs["result"] for t in study.trials]
    # every trial that composed carries its record; over-budget ones too (they composed)
    assert all(r["deployment"]["layout"] for r in stored if r["status"] != "error")


def test_the_report_reads_records_and_never_composes(tmp_path, monkeypatch):
    spec = real_spec(tmp_path, "report_reads")
    runner.run_study(spec, progress_stream=None)

    def forbidden(*args, **kwargs):
        raise AssertionError("the report composed a configuration")
    monkeypatch.setattr(overrides_mod, "compose_overrides", forbidden)
    monkeypatch.setattr(candidate_mod, "compose_overrides", forbidden)
    monkeypatch.setattr(to_sim, "sim_config", forbidden)
    monkeypatch.setattr(to_sim, "pools", forbidden)
    study, stored_spec = study_report.load(spec.storage, spec.name)
    paths = study_report.write(study, stored_spec, tmp_path / "report", spec.storage)
    text = paths["md"].read_text()
    assert "deploy llm " in text and "deployment records" not in text
    csv = paths["csv"].read_text().splitlines()[0].split(",")
    assert "vendor" in csv and "deployment" in csv and "_deployment" not in csv


def test_a_study_stored_before_records_still_reports_and_says_so(tmp_path, capsys):
    spec = real_spec(tmp_path, "old_records", n_trials=6)
    runner.run_study(spec, progress_stream=None)
    # what an older hermes-opt stored: no deployment record (finished trials are read-only
    # through Optuna, so edit the stored JSON)
    with sqlite3.connect(tmp_path / "study.db") as db:
        rows = db.execute("SELECT trial_user_attribute_id, value_json FROM "
                          "trial_user_attributes WHERE key = 'result'").fetchall()
        for row_id, text in rows:
            record = json.loads(text)
            record.pop("deployment", None)
            db.execute("UPDATE trial_user_attributes SET value_json = ? WHERE "
                       "trial_user_attribute_id = ?", (json.dumps(record), row_id))
    study, stored_spec = study_report.load(spec.storage, spec.name)
    paths = study_report.write(study, stored_spec, tmp_path / "report", spec.storage)
    simulated = sum(t.user_attrs["result"]["status"] == "ok" for t in study.trials)
    assert f"{simulated} trials were stored before" in capsys.readouterr().err
    text = paths["md"].read_text()
    assert "deployment records" in text and "deploy llm " in text


def test_a_trial_job_prepares_once_and_runs_every_seed(builds):
    results = run_trial(simulate_overrides, 4, ["workload.num_requests=20"], [0, 1, 2], None)
    assert [r.replicate for r in results] == [0, 1, 2] and len(builds) == 1
    assert all(r.status == "ok" and r.deployment["vendor"] == "NVIDIA" for r in results)
    assert "deployment" not in results[0].summary  # a record, not a metric
    assert results[0].summary["ttft_ms"] != results[1].summary["ttft_ms"]  # seeds differ


def test_an_unpreparable_candidate_is_infeasible_for_every_replicate_without_running(builds):
    results = run_trial(simulate_overrides, 0, ["model=llama3_1_70b", "cluster.tp=1"], [0, 1],
                        None)
    assert [r.status for r in results] == ["infeasible", "infeasible"]
    assert "does not fit" in results[1].reason and len(builds) == 1


def test_the_default_evaluator_pickles_as_the_module_instance():
    import pickle
    assert pickle.loads(pickle.dumps(simulate_overrides)) is simulate_overrides
    assert isinstance(simulate_overrides, Simulate)
