"""The driver: exact trial counts, infeasible handling, determinism, resume (fake simulator)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from hermes_opt.report.trials import front_quality, trial_rows
from hermes_opt.run import runner
from hermes_opt.run.pool import Pool
from hermes_opt.study.objective import named_constraints
from hermes_opt.study.sampling import counted
from sim.errors import ConfigError


def trials_of(study):
    return [(t.number, t.state.name, t.params, t.values, t.constraints)
            for t in study.get_trials(deepcopy=False)]


def test_runs_exactly_n_trials_and_marks_infeasible(fake_spec):
    study, stats = runner.run_study(fake_spec(n_trials=12, coverage={"min_per_choice": 0}),
                                    progress_stream=None)
    trials = study.get_trials()
    assert len(trials) == 12 and stats.trials_told == 12
    assert all(t.state is TrialState.COMPLETE for t in trials)
    infeasible = [t for t in trials if "infeasible_reason" in t.user_attrs]
    assert infeasible, "the fake space contains candidates that do not fit or are over budget"
    for t in infeasible:
        assert t.constraints["runnable"] > 0
        assert t.user_attrs["result"]["status"] == "infeasible"
    simulated = [t for t in trials if t not in infeasible]
    assert all(t.constraints["runnable"] < 0 for t in simulated)
    assert all(set(named_constraints(t)) == {"runnable", "ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50",
                                             "keeps_up"} for t in trials)
    # the same values as a list in constraint order: what optuna-dashboard reads
    assert all(sorted(t.system_attrs["constraints"]) == sorted(named_constraints(t).values())
               for t in trials)


@pytest.mark.parametrize("in_flight", [1, 2])
def test_same_seed_same_trials_with_one_and_two_workers(fake_spec, tmp_path, in_flight):
    one, _ = runner.run_study(fake_spec(n_trials=12, n_jobs=1, batches_in_flight=in_flight),
                              progress_stream=None)
    two, _ = runner.run_study(fake_spec(n_trials=12, n_jobs=2, name="fake2",
                                        batches_in_flight=in_flight), progress_stream=None)
    assert trials_of(one) == trials_of(two)
    other, _ = runner.run_study(fake_spec(n_trials=12, seed=4, name="fake3"), progress_stream=None)
    assert [t[2] for t in trials_of(other)] != [t[2] for t in trials_of(one)]


class ScrambledPool(Pool):
    """In-process pool that runs queued jobs in a seeded random order, as parallel workers may
    finish them: later batches' trials complete before earlier ones."""

    def next_result(self, stop):
        if stop.requested or not self._queued:
            self._queued.clear()
            return None
        self._queued.rotate(-int(self.rng.integers(len(self._queued))))
        fn, args = self._queued.popleft()
        return fn(*args)


NSGA2 = {"objectives": [{"metric": "slo_tokens_per_usd"},
                       {"metric": "ttft_ms.p99", "direction": "minimize"}], "sampler": "nsga2"}


@pytest.mark.parametrize("in_flight", [1, 2])
@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
@pytest.mark.parametrize("stop_after", [9, 30, 45])
def test_interrupted_study_resumes_exactly_like_an_uninterrupted_run(fake_spec, tmp_path,
                                                                      stop_after, sampler,
                                                                      in_flight, monkeypatch):
    """Ctrl-C at several points (two batches in flight, model-based sampling active, results
    arriving out of order), then the same command again: the same trials as a run never
    interrupted, none lost or repeated."""
    ScrambledPool.rng = np.random.default_rng(stop_after)
    extra = {**(NSGA2 if sampler == "nsga2" else {}), "batches_in_flight": in_flight}
    monkeypatch.setattr(runner, "Pool", ScrambledPool)
    base = ["model=llama3_1_70b", f"fake.log={tmp_path / 'count.log'}",
            f"fake.stop_after={stop_after}"]
    with monkeypatch.context() as fifo:
        fifo.setattr(runner, "Pool", Pool)
        straight, _ = runner.run_study(fake_spec(n_trials=32, base=base[:1], name="straight",
                                                 **extra), progress_stream=None)
    spec = fake_spec(n_trials=32, base=base, evaluator="fakes:interrupting_evaluator",
                     storage=f"sqlite:///{tmp_path / 'resumed.db'}", **extra)
    _, first = runner.run_study(spec, progress_stream=None)
    assert first.interrupted and 0 < first.trials_told < 32
    # what makes the resume exact: no trial of a batch was told while an older batch still had
    # trials running (the sampler saw exactly that when it sampled the next batch)
    left = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    running = [t.number // 4 for t in left if t.state is TrialState.RUNNING]
    assert running and all(t.number // 4 <= min(running) for t in left
                           if t.state is TrialState.COMPLETE)
    resumed, second = runner.run_study(spec, progress_stream=None)
    assert not second.interrupted
    # the sampler's 32, then coverage trials for the hardware kinds simulated fewer than 3 times
    told = len(straight.get_trials())
    assert told > 32 and first.trials_told + second.trials_told == told  # each told once
    assert [t[1:] for t in trials_of(resumed)] == [t[1:] for t in trials_of(straight)]
    assert [t.user_attrs.get("coverage") for t in resumed.get_trials()] == [
        t.user_attrs.get("coverage") for t in straight.get_trials()]


def test_raising_n_trials_continues_a_finished_study(fake_spec, tmp_path):
    off = {"min_per_choice": 0}  # the sampler's trials only
    spec = fake_spec(n_trials=8, storage=f"sqlite:///{tmp_path / 'grown.db'}", coverage=off)
    runner.run_study(spec, progress_stream=None)
    before = trials_of(optuna.load_study(study_name=spec.name, storage=spec.storage))
    grown, stats = runner.run_study(fake_spec(n_trials=20, storage=spec.storage, coverage=off),
                                    progress_stream=None)
    assert stats.trials_told == 12
    assert trials_of(grown)[:8] == before
    assert all(t.state is TrialState.COMPLETE for t in grown.get_trials())


def test_trials_left_running_by_a_dead_driver_are_evaluated_once(fake_spec):
    spec = fake_spec(n_trials=8, coverage={"min_per_choice": 0})
    runner.run_study(fake_spec(n_trials=4, coverage={"min_per_choice": 0}), progress_stream=None)
    # a driver that died after asking two trials (params suggested, never told)
    study = optuna.load_study(study_name=spec.name, storage=spec.storage_url())
    orphans = [study.ask() for _ in range(2)]
    for t in orphans:
        spec.space.suggest(t)
    stored = {t.number: t.params for t in study.get_trials()}
    study, stats = runner.run_study(spec, progress_stream=None)
    trials = study.get_trials()
    assert len(trials) == 8 and all(t.state is TrialState.COMPLETE for t in trials)
    assert {t.number: t.params for t in trials if t.number in stored} == stored
    assert stats.trials_told == 2 + 2  # two orphans re-run, two new trials


def test_simulator_bug_fails_the_trial_not_the_study(fake_spec):
    space = {"cluster.num_replicas": {"type": "int", "low": 1, "high": 4},
             "hardware": {"choices": ["h200"]}, "cluster.tp": {"choices": [2]}}
    study, stats = runner.run_study(
        fake_spec(space=space, n_trials=12, evaluator="fakes:crashing_evaluator"),
        progress_stream=None)
    failed = [t for t in study.get_trials() if t.state is TrialState.FAIL]
    assert failed and all(t.params["cluster.num_replicas"] == 3 for t in failed)
    assert "simulated simulator bug" in failed[0].user_attrs["result"]["reason"]
    assert len(study.get_trials()) == 12 and stats.notes


def test_changed_definition_is_refused_on_resume(fake_spec):
    runner.run_study(fake_spec(n_trials=4), progress_stream=None)
    with pytest.raises(ConfigError, match="different definition"):
        runner.run_study(fake_spec(n_trials=8, seed=99), progress_stream=None)


def test_multi_objective_nsga2_front_and_hypervolume(fake_spec):
    spec = fake_spec(n_trials=24, objectives=[
        {"metric": "slo_tokens_per_usd"}, {"metric": "ttft_ms.p99", "direction": "minimize"}],
        sampler="nsga2")
    study, _ = runner.run_study(spec, progress_stream=None)
    frame = trial_rows(study, spec)
    quality = front_quality(frame, spec)
    assert quality.size >= 1 and quality.hypervolume > 0
    feasible = frame[frame.outcome == "feasible"]
    assert len(feasible) >= quality.size


def test_counted_replaces_retried_trials():
    def frozen(number, **system_attrs):
        return optuna.trial.FrozenTrial(
            number=number, state=TrialState.FAIL, value=None, datetime_start=None,
            datetime_complete=None, params={}, distributions={}, user_attrs={},
            system_attrs=system_attrs, intermediate_values={}, trial_id=number)
    trials = [frozen(0), frozen(1), frozen(2, failed_trial=1, retry_history=[1]),
              frozen(3, failed_trial=1, retry_history=[1, 2])]
    assert [t.number for t in counted(trials)] == [0, 3]


def test_real_simulator_same_trials_with_one_and_two_workers(tmp_path):
    from hermes_opt.study.definition import from_dict
    raw = {"name": "real", "base": ["workload.num_requests=400", "workload.arrival.rate_per_s=10"],
           "space": {"hardware": {"choices": ["h100_sxm", "l40s", "a100_80g"]},
                     "cluster.num_replicas": {"type": "int", "low": 1, "high": 3},
                     "scheduler.max_num_seqs": {"type": "int", "low": 8, "high": 128, "log": True}},
           "constraints": ["ttft_ms.p99 <= 500", "tpot_ms.p99 <= 30"],
           "n_trials": 8, "batch_size": 4, "replicates": 2, "seed": 5}
    runs = []
    for jobs in (1, 2):
        spec = from_dict({**raw, "n_jobs": jobs, "storage": f"sqlite:///{tmp_path / f'{jobs}.db'}"})
        study, _ = runner.run_study(spec, progress_stream=None)
        runs.append([(t.number, t.params, t.values, t.constraints,
                      t.user_attrs["result"].get("metrics")) for t in study.get_trials()])
    assert runs[0] == runs[1]
    assert any(r[4] for r in runs[0])  # really simulated


def test_repeated_candidates_are_not_simulated_again(fake_spec, tmp_path):
    log = tmp_path / "evals.log"
    space = {"hardware": {"choices": ["h200"]}, "cluster.tp": {"choices": [2, 4]}}
    study, stats = runner.run_study(
        fake_spec(space=space, n_trials=8, evaluator="fakes:logging_evaluator",
                  base=["model=llama3_1_70b", f"fake.log={log}"]), progress_stream=None)
    assert len(log.read_text().splitlines()) == 2 * 2  # 2 distinct candidates x 2 replicates
    trials = study.get_trials()
    assert len(trials) == 8 and stats.reused == 6
    by_params = {}
    for t in trials:
        by_params.setdefault(t.params["cluster.tp"], set()).add(tuple(t.values))
    assert all(len(v) == 1 for v in by_params.values())


def test_report_with_conditional_and_multi_objective_parameters(fake_spec, tmp_path):
    from hermes_opt.report import study_report
    from hermes_opt.report.trials import top_configurations, trial_rows
    space = {"hardware": {"choices": ["h200", "h100_sxm"]},
             "cluster.tp": {"choices": [2, 4]},
             "scheduler.max_num_seqs": {"type": "int", "low": 16, "high": 64, "step": 16,
                                        "when": {"hardware": "h200"}},
             "cluster.num_replicas": {"type": "int", "low": 1, "high": 4}}
    for objectives in ([{"metric": "slo_tokens_per_usd"}],
                       [{"metric": "slo_tokens_per_usd"},
                        {"metric": "ttft_ms.p99", "direction": "minimize"}]):
        spec = fake_spec(space=space, n_trials=16, objectives=objectives,
                         name=f"rep{len(objectives)}")
        study, _ = runner.run_study(spec, progress_stream=None)
        paths = study_report.write(study, spec, tmp_path / spec.name, spec.storage_url())
        top = top_configurations(trial_rows(study, spec), spec)
        params = top[[f"param:{n}" for n in spec.space.names]]
        assert len(top) >= 1 and not params.duplicated().any()
        assert paths["md"].read_text().count("hermes-sim ") == len(top)
        assert all(p.exists() for p in paths.values())
