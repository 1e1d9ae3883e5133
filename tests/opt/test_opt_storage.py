"""Stale-trial recovery for multi-driver storages, checked on a file RDB with heartbeats on (the
same code path PostgreSQL uses; tests/opt/test_opt_postgres.py runs it end to end)."""

from __future__ import annotations

import datetime as dt
import warnings

import optuna
import pytest
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from hermes_opt import storage as storage_mod

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
