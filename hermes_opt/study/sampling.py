"""How a study is sampled and stored: its sampler (re-seeded per batch), its stored definition
(checked on resume) and which trials count toward ``n_trials``. Shared by the driver, the report
and the Hydra sweeper."""

from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from hermes_opt.study import storage as storage_mod
from hermes_opt.study.definition import StudySpec, nsga2_population, to_raw
from sim.errors import ConfigError


def make_sampler(spec: StudySpec, seed: int, kind: str | None = None) -> optuna.samplers.BaseSampler:
    kind = kind or spec.resolved_sampler
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "nsga2":
        # a generation is a whole number of batches, so every parent is told before its
        # children are asked, whatever the number of workers
        return optuna.samplers.NSGAIISampler(population_size=nsga2_population(spec.batch_size),
                                             seed=seed)
    # Random start-up trials: a function of the definition only (never of n_trials, which may
    # grow on resume), so a resumed study samples exactly what an uninterrupted one would.
    startup = max(10, spec.batch_size)
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
    return study


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that count toward n_trials: a re-queued trial replaces the one it retries."""
    replaced = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return [t for t in trials if t.number not in replaced]
