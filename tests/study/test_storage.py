"""Stale-trial recovery for multi-driver storages, checked on a file RDB with heartbeats on (the
same code path PostgreSQL uses; tests/run/test_postgres_drivers.py runs it end to end)."""

from __future__ import annotations

import datetime as dt
import warnings

import optuna
import pytest
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from hermes_opt.study import storage as storage_mod

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")


@pytest.fixture
def study(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = RDBStorage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=1, grace_period=5,
                         heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(3))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=rdb, study_name="hb")


def later(monkeypatch, seconds):
    """Move this process's clock (not the database's) forward."""
    real = dt.datetime

    class Clock(real):
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + dt.timedelta(seconds=seconds)
    monkeypatch.setattr(storage_mod, "datetime", Clock)


def states(study):
    return [t.state for t in study.get_trials(deepcopy=False)]


def test_a_trial_whose_driver_died_before_its_first_heartbeat_is_requeued(study, monkeypatch):
    dead = study.ask()  # no record_heartbeat: the driver was killed right after asking
    dead.suggest_int("x", 0, 9)
    alive = study.ask()
    study._storage.record_heartbeat(alive._trial_id)

    storage_mod.fail_stale(study)  # within the grace period: both stay
    assert states(study) == [TrialState.RUNNING, TrialState.RUNNING]

    later(monkeypatch, 6)
    storage_mod.fail_stale(study)
    trials = study.get_trials(deepcopy=False)
    # the beating trial's heartbeat is fresh by the database clock, so it is left alone
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING]
    assert trials[2].system_attrs["failed_trial"] == dead.number
    assert trials[2].params == {"x": trials[0].params["x"]}

    storage_mod.fail_stale(study)  # idempotent: the failed trial is not re-queued twice
    assert len(study.get_trials(deepcopy=False)) == 3


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_single_driver_cache_samples_exactly_what_full_rereads_would(fake_spec, monkeypatch,
                                                                    sampler):
    """The cache applies each write to its copy instead of re-reading the database; the study
    it produces (and what is stored) must be the one Optuna's own re-reading cache gives."""
    from hermes_opt.run import runner
    extra = {} if sampler == "tpe" else {"sampler": "nsga2", "objectives": [
        {"metric": "slo_tokens_per_usd"}, {"metric": "ttft_ms.p99", "direction": "minimize"}]}

    def stored(name):
        spec = fake_spec(n_trials=28, name=name, **extra)
        runner.run_study(spec, progress_stream=None)
        study = optuna.load_study(study_name=name, storage=spec.storage_url())  # from the file
        trials = study.get_trials()
        for t in trials:  # the evaluator's wall time is the one thing that varies
            t.user_attrs["result"].pop("sim_s")
        return [(t.number, t.state, t.params, t.distributions, t.values, t.user_attrs,
                 t.system_attrs) for t in trials]

    cached = stored("cached")
    with monkeypatch.context() as m:
        m.setattr(storage_mod, "SingleDriverCache", lambda rdb: rdb)  # Optuna's default cache
        plain = stored("plain")
    assert cached == plain
    assert any("constraints" in str(t[6]) for t in cached)


def test_single_driver_cache_shows_every_write_to_a_running_trial(tmp_path):
    from optuna.distributions import FloatDistribution
    rdb = storage_mod.open_storage(f"sqlite:///{tmp_path / 'c.db'}")
    cache = storage_mod.SingleDriverCache(rdb)
    study = optuna.create_study(storage=cache, study_name="c")
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    cache.set_trial_param(trial._trial_id, "y", 0.25, FloatDistribution(0.0, 1.0))
    cache.set_trial_user_attr(trial._trial_id, "u", {"a": 1})
    cache.set_trial_system_attr(trial._trial_id, "s", [1, 2])
    cache.set_trial_intermediate_value(trial._trial_id, 3, 0.5)

    def view(t):
        return (t.state, t.params, t.distributions, t.user_attrs, t.system_attrs,
                t.intermediate_values, t.values, t.datetime_start, t.datetime_complete)
    assert view(cache.get_trial(trial._trial_id)) == view(rdb.get_trial(trial._trial_id))
    assert view(study.get_trials()[0]) == view(rdb.get_trial(trial._trial_id))
    study.tell(trial, 0.75)
    assert view(study.get_trials()[0]) == view(rdb.get_trial(trial._trial_id))
