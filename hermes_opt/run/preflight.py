"""Before a study runs: its sampler, its stored definition, its evaluator, its base scenario.

Kept apart from the driver loop (runner.py) so the Hydra sweeper can share the sampler rules.
"""

from __future__ import annotations

import importlib

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from hermes_opt import storage as storage_mod
from hermes_opt.study import StudySpec, nsga2_population, to_raw
from hermes_opt.worker import Evaluator, simulate_overrides
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


def resolve_evaluator(path: str | None) -> Evaluator:
    if path is None:
        return simulate_overrides
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"evaluator={path!r}: cannot import: {err}") from None


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


def check_base(spec: StudySpec) -> None:
    """Fail fast (one line, exit 2) if the base scenario or a parameter path is wrong, instead of
    marking every trial infeasible. Skipped for custom evaluators, whose keys may differ."""
    if spec.evaluator is not None:
        return
    from omegaconf import OmegaConf
    from hermes_opt.worker import hydra_compose
    try:
        cfg = hydra_compose(list(spec.base))
    except Exception as err:  # Hydra raises several types; all mean a bad override
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise ConfigError(f"base {list(spec.base)}: {' '.join(lines[:2])}") from None
    for param in spec.space.parameters:
        if param.is_group:
            continue
        if OmegaConf.select(cfg, param.name, default="__missing__") == "__missing__":
            raise ConfigError(f"space.{param.name}: not a key of the sim config; parameter names "
                              f"are hermes-sim override paths such as cluster.tp, "
                              f"scheduler.max_num_seqs or workload.arrival.rate_per_s")
