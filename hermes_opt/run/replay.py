"""Resume after a driver was killed (SQLite): the trials it left RUNNING, as whole batches.

The driver asks a whole batch (its trials are created RUNNING, without parameters), then samples
every trial's parameters in trial-number order from a sampler seeded for that batch, and only
then submits jobs (``Driver.start``). A driver killed in between leaves a batch whose first
trials have parameters and whose others have none or some. Sampling the missing ones on resume
with a fresh sampler would not give what the killed driver would have sampled: the seeded
sampler's random state had moved on with every parameter it drew. So the batch's sampling is
replayed from the start on an in-memory copy of the study as it was when the batch was asked
(every earlier trial, which nothing has changed since: the driver died), and the parameters the
killed driver did not store are stored from the replay. Samplers are deterministic given their
seed and the trials they see, so the replay draws the stored parameters again, and the missing
ones are those an uninterrupted run draws. A kill can also land while a batch's trials are being
created: the missing trials are created first (``recover``), so batches keep their size and
every later batch its seed.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial, TrialState

from hermes_opt.study import coverage
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.sampling import GRID_POINT, batch_seed, make_sampler

ASKED_WITH = ("fixed_params", GRID_POINT)  # system attributes a trial is created with


def recover(study: optuna.Study, spec: StudySpec, sampler_kind: str,
            ask: Callable[[], optuna.Trial]) -> list[list[optuna.Trial]]:
    """The RUNNING trials of a dead driver (``DriverLock`` guarantees it is dead), as the
    batches they were asked in: contiguous runs of ``batch_size`` trial numbers, and the
    coverage batch (asked alone, after every earlier trial was told). A main batch cut short
    while its trials were created is completed by ``ask`` to the size it was asked with;
    every trial's parameters are then stored (``complete_params``)."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    batches: dict[int, list[optuna.Trial]] = {}
    for t in running:
        index = -1 if coverage.COVERAGE in t.user_attrs else t.number // spec.batch_size
        batches.setdefault(index, []).append(optuna.trial.Trial(study, t._trial_id))
    out = []
    last = max((t.number for t in study.get_trials(deepcopy=False)), default=-1)
    for index, batch in sorted(batches.items(), key=lambda item: item[1][0].number):
        # sized as Driver.ask_batch sized it: n_trials bounds the last batch
        end = index * spec.batch_size + min(spec.batch_size,
                                            spec.n_trials - index * spec.batch_size)
        # the newest trial is in this batch (numbers stay contiguous) and the batch is short
        while index >= 0 and last // spec.batch_size == index and last + 1 < end:
            batch.append(ask())
            last = batch[-1].number
        out.append(complete_params(study, spec, batch, sampler_kind))
    return out


def missing(spec: StudySpec, trial: FrozenTrial) -> bool:
    """True when ``trial`` lacks a parameter its own stored choices make active."""
    chosen: dict = {}
    for param in spec.space.parameters:
        if param.active(chosen):
            if param.name not in trial.params:
                return True
            chosen[param.name] = trial.params[param.name]
    return False


def complete_params(study: optuna.Study, spec: StudySpec, batch: list[optuna.Trial],
                    sampler_kind: str) -> list[optuna.Trial]:
    """Store the parameters a killed driver did not store for ``batch`` (trials asked
    together, in number order). Returns the batch to run: itself when nothing was missing (the
    usual case), else the same trials read again (an ``optuna.Trial`` suggests from the copy
    it read when built)."""
    frozen = [study._storage.get_trial(t._trial_id) for t in batch]
    todo = [t for t in frozen if missing(spec, t)]
    if not todo:
        return batch
    first = frozen[0].number
    mirror = _mirror(study, spec, first, sampler_kind,
                     alone=coverage.COVERAGE in frozen[0].user_attrs)
    replayed = []
    for real in frozen:  # created first, all of them, as ask_batch does; then sampled in order
        # what the trial held when it was created (a coverage trial's pinned parameters, a grid
        # point), not what sampling added since (NSGA-II's generation)
        created = {k: real.system_attrs[k] for k in ASKED_WITH if k in real.system_attrs}
        template = FrozenTrial(number=-1, state=TrialState.RUNNING, value=None,
                               datetime_start=real.datetime_start, datetime_complete=None,
                               params={}, distributions={}, user_attrs=dict(real.user_attrs),
                               system_attrs=created, intermediate_values={},
                               trial_id=-1)
        trial_id = mirror._storage.create_new_trial(mirror._study_id, template_trial=template)
        replayed.append(optuna.trial.Trial(mirror, trial_id))
    storage = study._storage
    for real, trial in zip(frozen, replayed):
        params = spec.space.suggest(trial)
        if real not in todo:
            continue
        dists = trial.distributions
        for name, value in params.items():
            if name not in real.params:
                storage.set_trial_param(real._trial_id, name,
                                        dists[name].to_internal_repr(value), dists[name])
        # what sampling records besides the parameters (NSGA-II: the trial's generation, which
        # later batches count)
        added = mirror._storage.get_trial_system_attrs(trial._trial_id)
        for key, value in added.items():
            if key not in real.system_attrs:
                storage.set_trial_system_attr(real._trial_id, key, value)
    return [optuna.trial.Trial(study, t._trial_id) for t in batch]


def _mirror(study: optuna.Study, spec: StudySpec, first: int, sampler_kind: str,
            alone: bool) -> optuna.Study:
    """An in-memory study holding every trial numbered below ``first`` as stored, with the
    sampler the driver made for the batch starting at ``first`` (``Driver.ask_batch``, or
    ``ask_coverage`` for a coverage batch)."""
    seed = batch_seed(spec, first)  # on SQLite the trials so far number exactly `first`
    sampler = (optuna.samplers.RandomSampler(seed=seed) if alone
               else make_sampler(spec, seed, sampler_kind))
    mirror = optuna.create_study(storage=InMemoryStorage(), sampler=sampler,
                                 directions=spec.directions)
    for key, value in study.user_attrs.items():
        mirror.set_user_attr(key, value)
    for key, value in study._storage.get_study_system_attrs(study._study_id).items():
        mirror._storage.set_study_system_attr(mirror._study_id, key, value)
    earlier = [t for t in study.get_trials(deepcopy=True) if t.number < first]
    mirror.add_trials(sorted(earlier, key=lambda t: t.number))
    return mirror
