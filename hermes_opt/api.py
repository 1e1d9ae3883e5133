"""The Python API: what ``hermes-sim`` and ``hermes-opt`` do, from a notebook or a script.

    from hermes_opt import api
    summary = api.simulate(["model=llama3_1_8b", "workload.arrival.rate_per_s=4"])
    summary["ttft_ms"]["p90"], summary["cost_usd_per_hour"]

* ``compose(overrides)`` -> ``Candidate``: the Hydra config, the ``sim.SimConfig`` (``.config``),
  its price (``.cost``) and deployment record (``.deployment``), composed and checked once;
* ``simulate(overrides, seed)`` / ``simulate_candidate(candidate, seed)`` -> the ``hermes-sim``
  JSON summary as a dict (byte-for-byte the same numbers);
* ``run_study(name, overrides)`` -> the Optuna study of ``hermes-opt study=<name>`` (no report);
  ``load_study(name, storage)`` reads a stored one back; ``trials(study)`` -> one DataFrame row
  per trial (the report's ``trials.csv`` columns and more).

Overrides are ``hermes-sim``'s (docs/cli.md); a bad one raises ``sim.errors.ConfigError`` with
the one line the command-line tools print. docs/api.md is the guide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hermes_opt.compose import candidate as candidate_mod
from hermes_opt.compose import evaluate, to_sim
from hermes_opt.compose.candidate import Candidate

if TYPE_CHECKING:  # optuna and pandas load only for the study calls
    import optuna
    import pandas as pd

__all__ = ["Candidate", "compose", "load_study", "run_study", "simulate", "simulate_candidate",
           "trials"]


def compose(overrides: list[str] | tuple[str, ...] = ()) -> Candidate:
    """The deployment ``hermes-sim <overrides>`` describes, composed, memory-checked, priced."""
    return candidate_mod.compose(list(overrides))


def simulate(overrides: list[str] | tuple[str, ...] = (), seed: int | None = None) -> dict:
    """Simulate ``hermes-sim <overrides>``: its JSON summary as a dict (``seed``: the config's
    ``seed``, 0 unless overridden, when None)."""
    candidate = compose(overrides)
    return simulate_candidate(candidate, to_sim.seed_value(candidate.cfg) if seed is None else seed)


def simulate_candidate(candidate: Candidate, seed: int = 0) -> dict:
    """Simulate an already composed candidate with one workload seed."""
    return evaluate.simulate_candidate(candidate, seed)


def run_study(name: str = "default", overrides: list[str] | tuple[str, ...] = (), *,
              n_jobs: int | None = None) -> optuna.Study:
    """Run (or resume) ``hermes-opt study=<name> <overrides>``; its storage is the study's
    (``runs/<name>/study.db`` unless ``storage=...``). The report is ``hermes-opt report``'s."""
    from hermes_opt.run.runner import run_study as run
    from hermes_opt.study import definition
    return run(definition.load(name, list(overrides)), n_jobs=n_jobs)[0]


def load_study(name: str, storage: str | None = None) -> optuna.Study:
    """A stored study by name (``storage``: its URL, default ``sqlite:///runs/<name>/study.db``)."""
    from hermes_opt.report import study_report
    return study_report.load(storage or f"sqlite:///runs/{name}/study.db", name)[0]


def trials(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: parameters (``param:<key>``), metrics (``metric:<key>``), feasibility,
    outcome and replay command, as the report reads them."""
    from hermes_opt.report.trials import trial_rows
    from hermes_opt.study.definition import from_dict
    return trial_rows(study, from_dict(dict(study.user_attrs["spec"])))

