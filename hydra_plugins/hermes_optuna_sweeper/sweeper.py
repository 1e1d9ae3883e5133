"""The sweeper: Optuna ask -> Hydra launcher -> read the task's returned summary -> Optuna tell.

Search space from ``hydra.sweeper.params`` and sweep overrides on the command line:
``choice(a,b)`` or ``a,b`` (categorical), ``range(lo,hi[,step])`` (int/float with step; ``hi`` is
exclusive as in Hydra), ``interval(lo,hi)`` (float; ``tag(int, ...)`` for int, ``tag(log, ...)``
for a log scale). Candidates that cannot run (invalid, does not fit, over budget) are found by
composing each job's config before launching and told to Optuna as infeasible, never launched.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    import optuna

    from hermes_opt.study.definition import StudySpec
    from hermes_opt.study.space import Parameter

log = logging.getLogger(__name__)


def _import_runtime() -> None:
    """Import Optuna and the study code when a sweep is built, not at module load: Hydra's plugin
    scan imports this module on every ``hermes-sim`` start, and these imports are ~0.8 s of it."""
    global optuna, NAN_VIOLATION, KEEPS_UP, score, RUNNABLE, batch_seed, make_sampler, Parameter
    global SearchSpace, to_overrides, StudySpec, from_dict, Infeasible, check_feasible
    global name_objectives
    import optuna  # noqa: F811

    from hermes_opt.run.driver import RUNNABLE
    from hermes_opt.run.worker import Infeasible, check_feasible
    from hermes_opt.study.dashboard import name_objectives
    from hermes_opt.study.definition import StudySpec, from_dict  # noqa: F811
    from hermes_opt.study.objective import KEEPS_UP, NAN_VIOLATION, score
    from hermes_opt.study.sampling import batch_seed, make_sampler
    from hermes_opt.study.space import Parameter, SearchSpace, to_overrides  # noqa: F811


def parameter(override: Override) -> Parameter:
    """One Hydra sweep override -> one search-space parameter (same name: the override key)."""
    _import_runtime()
    key = override.get_key_element()
    value = override.value()
    if isinstance(value, ChoiceSweep):
        return Parameter(name=key, kind="categorical", choices=tuple(value.list))
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step or 1
        is_int = all(float(v).is_integer() for v in (start, stop, step))
        last = stop - step  # Hydra's range excludes stop
        return Parameter(name=key, kind="int" if is_int else "float", low=start, high=last,
                         step=step)
    if isinstance(value, IntervalSweep):
        tags = set(value.tags or ())
        kind = "int" if "int" in tags else "float"
        low, high = value.start, value.end
        return Parameter(name=key, kind=kind, low=int(low) if kind == "int" else float(low),
                         high=int(high) if kind == "int" else float(high), log="log" in tags)
    raise ValueError(f"hermes_optuna sweeper: {key}: unsupported sweep {override.input_line!r}; "
                     f"use choice(...), a,b,c, range(...) or interval(...)")


class HermesOptunaSweeper(Sweeper):
    def __init__(self, n_trials: int, batch_size: int, seed: int, sampler: str,
                 objectives: list[Any], constraints: list[str], budget: dict[str, Any] | None,
                 study_name: str, storage: str | None, params: dict[str, str] | None) -> None:
        _import_runtime()
        self.settings = dict(n_trials=n_trials, batch_size=batch_size, seed=seed, sampler=sampler,
                             objectives=OmegaConf.to_container(OmegaConf.create(list(objectives))),
                             constraints=list(constraints),
                             budget={k: v for k, v in dict(budget or {}).items()
                                     if v is not None} or None, name=study_name)
        self.storage = storage
        self.params = dict(params or {})
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        from hydra.core.plugins import Plugins
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def _spec(self, arguments: list[str]) -> tuple[StudySpec, list[str]]:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        lines = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        fixed, params = [], []
        for override in parser.parse_overrides(lines):
            if override.is_sweep_override():
                params.append(parameter(override))
            else:
                fixed.append(override.input_line)
        spec = from_dict({**self.settings, "base": []})
        return StudySpec(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__},
                            "space": SearchSpace(parameters=tuple(params))}), fixed

    def sweep(self, arguments: list[str]) -> Any:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        spec, fixed = self._spec(arguments)
        study = optuna.create_study(study_name=spec.name, storage=self.storage,
                                    directions=spec.directions, load_if_exists=True)
        name_objectives(study, spec)  # optuna-dashboard: readable names, not "Objective 0"
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns = []
        # sampler grid evaluates every point of the space, whatever n_trials says
        total = spec.space.num_points() if spec.resolved_sampler == "grid" else spec.n_trials
        while True:
            done = len(study.get_trials(deepcopy=False))
            size = min(spec.batch_size, total - done)
            if size <= 0:
                break
            study.sampler = make_sampler(spec, batch_seed(spec, done))
            trials = [study.ask() for _ in range(size)]
            launch, launched = [], []
            for trial in trials:
                overrides = fixed + to_overrides(spec.space.suggest(trial))
                reason = self._infeasible(overrides, spec)
                if reason is not None:
                    self._tell_infeasible(study, spec, trial, reason)
                else:
                    launch.append(overrides)
                    launched.append(trial)
            results = self.launcher.launch(launch, initial_job_idx=self.job_idx) if launch else []
            self.job_idx += len(launch)
            returns.append(results)
            for trial, ret in zip(launched, results):
                self._tell(study, spec, trial, ret)
        self._write_results(study, spec, sweep_dir)
        return returns

    def _tell_infeasible(self, study: optuna.Study, spec: StudySpec, trial: optuna.Trial,
                         reason: str) -> None:
        trial.set_user_attr("infeasible_reason", reason)
        trial.set_constraint(RUNNABLE, 1.0)
        for c in spec.constraints:
            trial.set_constraint(c.key, NAN_VIOLATION)
        trial.set_constraint(KEEPS_UP, NAN_VIOLATION)  # every told trial carries the same keys
        study.tell(trial, [o.worst() for o in spec.objectives])
        log.info(f"trial {trial.number} infeasible: {reason}")

    def _infeasible(self, overrides: list[str], spec: StudySpec) -> str | None:
        try:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            check_feasible(cfg, spec.budget)
        except Infeasible as err:
            return str(err)
        return None

    def _tell(self, study: optuna.Study, spec: StudySpec, trial: optuna.Trial, ret: Any) -> None:
        if ret.status is not JobStatus.COMPLETED or not isinstance(ret._return_value, dict):
            trial.set_user_attr("error", repr(getattr(ret, "_return_value", None))[:500])
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        if ret._return_value.get("status") == "infeasible":  # found only while simulating
            self._tell_infeasible(study, spec, trial, str(ret._return_value.get("reason")))
            return
        outcome = score([ret._return_value], spec.objectives, spec.constraints)
        trial.set_user_attr("metrics", outcome.metrics)
        trial.set_constraint(RUNNABLE, -1.0)
        for key, value in outcome.constraints.items():
            trial.set_constraint(key, value)
        study.tell(trial, list(outcome.values))

    def _write_results(self, study: optuna.Study, spec: StudySpec, sweep_dir: Path) -> None:
        feasible = [t for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
                    if all(v <= 0 for v in t.constraints.values())]
        if spec.multi_objective:
            from hermes_opt.study.pareto import pareto_mask
            mask = pareto_mask([t.values for t in feasible], spec.directions) if feasible else []
            best = [{"number": t.number, "params": t.params, "values": t.values}
                    for t, keep in zip(feasible, mask) if keep]
            results: dict = {"name": "hermes_optuna", "pareto_front": best}
        else:
            pick = max if spec.objectives[0].direction == "maximize" else min
            top = pick(feasible, key=lambda t: t.values[0]) if feasible else None
            results = {"name": "hermes_optuna", "best_params": top.params if top else None,
                       "best_value": top.values[0] if top else None,
                       "best_trial": top.number if top else None}
        results["objectives"] = [f"{o.direction} {o.metric}" for o in spec.objectives]
        results["constraints"] = [c.key for c in spec.constraints]
        results["n_trials"] = len(study.trials)
        results["n_feasible"] = len(feasible)
        results["n_infeasible_not_launched"] = sum(
            "infeasible_reason" in t.user_attrs for t in study.trials)
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        log.info(f"best: {results}")
