"""What optuna-dashboard reads of a stored study (hermes_opt/study/dashboard.py): readable objective
names instead of "Objective 0", and the best trial meeting every constraint as a study attribute,
because the dashboard's Best Trial card takes the storage's best value whatever the constraints."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState, create_trial

from hermes_opt.run import runner
from hermes_opt.study.dashboard import BEST_FEASIBLE, best_feasible_line, metric_names
from hermes_opt.study.objective import set_constraints


def test_a_run_names_the_objectives_and_stores_the_best_feasible_trial(fake_spec):
    spec = fake_spec(n_trials=12)
    runner.run_study(spec, progress_stream=None)
    stored = optuna.load_study(study_name=spec.name, storage=spec.storage)
    assert stored.metric_names == ["SLO-meeting tokens per $"]
    best = stored.best_trial  # Optuna's own best_trial skips infeasible trials
    assert stored.user_attrs[BEST_FEASIBLE] == (f"trial {best.number}: SLO-meeting tokens per $ "
                                                f"{best.values[0]:,.0f}")


def test_two_objectives_get_two_names_and_a_feasible_front():
    from hermes_opt.study.definition import from_dict
    spec = from_dict({"name": "two", "objectives": [
        {"metric": "slo_tokens_per_usd"}, {"metric": "ttft_ms.p99", "direction": "minimize"}]})
    assert metric_names(spec) == ["SLO-meeting tokens per $", "p99 TTFT (ms)"]
    trials = [_told(0, [100.0, 50.0], [-1.0]), _told(1, [300.0, 10.0], [0.5]),  # violates
              _told(2, [80.0, 20.0], [-0.1]), _told(3, [60.0, 30.0], [-0.1])]  # 3: dominated
    assert best_feasible_line(trials, spec) == (
        "Pareto front of the trials meeting every constraint: trials 0, 2")


def _told(number, values, constraints):
    trial = create_trial(values=values, state=TrialState.COMPLETE,
                         system_attrs={f"constraints:c{i}": v for i, v in enumerate(constraints)})
    trial.number = number
    return trial


class _Trial:  # what set_constraints needs of an optuna.Trial
    def __init__(self, study, trial_id):
        self.storage, self._trial_id = study._storage, trial_id


def test_the_dashboards_best_trial_ignores_constraints_so_the_study_says_which_is_feasible():
    """The case of issue 23: an SLO-violating trial has the highest objective. The storage's
    best trial (what the dashboard's Best Trial card shows) is that trial; ``best_feasible``
    and Optuna's ``Study.best_trial`` name the feasible one."""
    from hermes_opt.study.definition import from_dict
    spec = from_dict({"name": "one", "constraints": ["tpot_ms.p99 <= 50"]})
    study = optuna.create_study(direction="maximize")
    for value, tpot_violation in ((900.0, -0.2), (1500.0, 0.24), (700.0, -0.5)):
        trial = study.ask()
        set_constraints(_Trial(study, trial._trial_id),
                        {"runnable": -1.0, "tpot_ms.p99 <= 50": tpot_violation})
        study.tell(trial, value)
    assert study._storage.get_best_trial(study._study_id).number == 1  # the violating one
    assert study.best_trial.number == 0
    assert best_feasible_line(study.get_trials(), spec) == "trial 0: SLO-meeting tokens per $ 900"


def test_the_constraints_key_is_optunas():
    from optuna.study._constrained_optimization import _CONSTRAINTS_KEY

    from hermes_opt.study.objective import CONSTRAINTS_KEY
    assert CONSTRAINTS_KEY == _CONSTRAINTS_KEY
