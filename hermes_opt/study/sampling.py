"""How a study is sampled and stored: its sampler (re-seeded per batch), its stored definition
(checked on resume) and which trials count toward ``n_trials``. Shared by the driver, the report
and the Hydra sweeper."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

from hermes_opt.study import dashboard
from hermes_opt.study import storage as storage_mod
from hermes_opt.study.definition import StudySpec, nsga2_population, to_raw
from hermes_opt.study.space import SearchSpace
from sim.errors import ConfigError

GRID_POINT = "grid_point"  # trial system attribute: the trial's point number (sampler grid)


class ExhaustiveSampler(optuna.samplers.BaseSampler):
    """``sampler: grid``: every point of the space once, in the order of
    ``SearchSpace.enumerate()`` (conditional keys only where their condition holds).

    When a trial is created (``before_trial``, inside ``ask``: under the ask lock with several
    drivers) it claims the first point no trial of the study holds and records its number as
    the system attribute ``grid_point``; its parameters are then read from that point. Which
    point a trial gets depends only on the trials before it, never on timing or the number of
    workers, and a point is held for ever by the trial that claimed it (running, failed or
    complete), so no point is evaluated twice. A trial that already holds a point (a RUNNING
    trial re-run on resume, a re-queued copy, which inherits its original's attributes) keeps
    it. Optuna's GridSampler enumerates a flat product (wrong with conditional keys) and its
    BruteForceSampler picks at random among the unvisited branches and, once everything is
    running or done, repeats a point and calls ``study.stop()``, which raises outside
    ``optimize()``. The caller asks at most ``num_points()`` trials (``hermes_opt.run.runner``
    caps ``n_trials``); asking beyond that is a ConfigError."""

    def __init__(self, space: SearchSpace) -> None:
        space.check_enumerable()
        self.space = space
        self.size = space.num_points()
        self._taken: set[int] | None = None  # points held by some trial (read once, then kept)
        self._next = 0  # every point below this is taken
        self._of_trial: dict[int, int] = {}  # trial id -> its point
        self._points: dict[int, dict[str, Any]] = {}

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        index = trial.system_attrs.get(GRID_POINT)
        if index is None:
            if "fixed_params" in trial.system_attrs:
                return  # enqueued with its parameters: Optuna never asks the sampler for them
            index = self._claim(study)
            study._storage.set_trial_system_attr(trial._trial_id, GRID_POINT, index)
        self._of_trial[trial._trial_id] = int(index)

    def _claim(self, study: optuna.Study) -> int:
        if self._taken is None:
            trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
            self._taken = {int(t.system_attrs[GRID_POINT]) for t in trials
                           if GRID_POINT in t.system_attrs}
        while self._next in self._taken:
            self._next += 1
        if self._next >= self.size:
            raise ConfigError(f"sampler grid: all {self.size:,} points of the space are taken; "
                              f"n_trials must be at most {self.size:,}")
        self._taken.add(self._next)
        return self._next

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        index = self._of_trial.get(trial._trial_id)
        if index is None:  # created under another sampler instance
            index = int(study._storage.get_trial_system_attrs(trial._trial_id)[GRID_POINT])
            self._of_trial[trial._trial_id] = index
        if index not in self._points:
            self._points[index] = self.space.point(index)
        point = self._points[index]
        if param_name not in point:
            raise RuntimeError(f"sampler grid: trial {trial.number} suggests {param_name!r}, "
                               f"which is not active in its point {point}")
        return point[param_name]


def make_sampler(spec: StudySpec, seed: int, kind: str | None = None) -> optuna.samplers.BaseSampler:
    kind = kind or spec.resolved_sampler
    if kind == "grid":  # no randomness: the point of a trial is fixed by the trials before it
        return ExhaustiveSampler(spec.space)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "nsga2":
        # a generation is a whole number of batches, so every parent is told before its
        # children are asked, whatever the number of workers
        return optuna.samplers.NSGAIISampler(population_size=nsga2_population(spec.batch_size),
                                             seed=seed)
    # Random start-up trials: a function of the definition only (never of n_trials, which may
    # grow on resume), so a resumed study samples exactly what an uninterrupted one would.
    startup = spec.n_startup_trials or max(10, spec.batch_size)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True,
                                      group=True, constant_liar=True)


def batch_seed(spec: StudySpec, trials_so_far: int) -> int:
    return int(np.random.SeedSequence([spec.seed, trials_so_far]).generate_state(1)[0])


def open_study(spec: StudySpec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study, or load it and check it still computes the same thing."""
    study = optuna.create_study(study_name=spec.name, storage=storage,
                                directions=spec.directions, load_if_exists=True,
                                sampler=make_sampler(spec, batch_seed(spec, 0)))
    stored = study.user_attrs.get("config_hash")
    if stored is None:
        study.set_user_attr("definition", spec.definition())
        study.set_user_attr("config_hash", spec.config_hash)
        study.set_user_attr("name", spec.name)
        study.set_user_attr("sampler", spec.resolved_sampler)
    elif stored != spec.config_hash:
        raise ConfigError(
            f"study={spec.name!r}: storage {storage_mod.mask(spec.storage_url())} holds this study "
            f"with a different definition (config hash {stored}, now {spec.config_hash}); only "
            f"n_trials, n_jobs and storage may change on resume. Use name=<new name> or remove "
            f"{spec.run_dir()}")
    if [d.name.lower() for d in study.directions] != spec.directions:
        raise ConfigError(f"study={spec.name!r}: stored directions {study.directions} differ")
    study.set_user_attr("spec", to_raw(spec))  # the latest run settings, for `hermes-opt report`
    dashboard.name_objectives(study, spec)  # optuna-dashboard: readable names, not "Objective 0"
    return study


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that count toward n_trials: a re-queued trial replaces the one it retries."""
    replaced = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return [t for t in trials if t.number not in replaced]
