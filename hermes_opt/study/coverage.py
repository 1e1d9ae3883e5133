"""Coverage: after the sampler's ``n_trials``, a few more trials for every hardware, engine and
architecture choice of the space that has fewer than ``min_per_choice`` simulated candidates.

A model-based sampler settles on a region early, so a study can end with a hardware kind
proposed once and never simulated, and its report cannot say whether that kind was bad or never
tried (issue 23: H100, the SKU buyers compare against, simulated once). Study key::

    coverage: {min_per_choice: 3}     # the default; 0 turns it off

* **Which keys:** categorical parameters named ``hardware``, ``engine`` or
  ``deployment.architecture``, or ending in ``.hardware`` / ``.engine``
  (``deployment.prefill.hardware``, ``cluster.pools.<name>.hardware``).
* **Simulated candidates** of a choice: distinct parameter sets with that value whose trial was
  simulated (status ok: not infeasible before simulating, not screened, not failed). The target
  is ``min_per_choice``, or the number of points with that value when the space has fewer.
* **Coverage trials** pin the choice (and, for a conditional key, the earlier parameters its
  ``when`` needs, at the first value allowed). A choice's first one is the best feasible
  trial's configuration with the choice swapped in ("the winner on this hardware"), when that
  configuration exists in the pinned sub-space and was not tried; the others leave every other
  parameter to a random sampler (seeded per batch). Not the study's TPE: it samples the free
  parameters from the region that is good for the choices it favours and the pin then
  replaces only the choice, so on the fake study 11 of 12 such trials did not fit or broke the
  budget (TP 1 on an L40S). When the pinned sub-space has at most ``2 x min_per_choice``
  points, its untried points are taken instead, in enumeration order. At most
  ``2 x min_per_choice`` coverage trials per choice over the study's life.
* **Batches:** asked once every earlier trial is told, at most ``batch_size`` each, choices
  taking turns in space order; planned from stored trials only, so they do not depend on the
  number of workers, and an interrupted study resumes them (``hermes_opt.run.driver``).
* Each coverage trial carries the user attribute ``coverage`` (``"hardware=l40s"``) and does not
  count toward ``n_trials``. A run setting, like ``n_trials``: it may change on resume.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hermes_opt.study.space import Parameter, SearchSpace, format_value
from sim.errors import require

COVERAGE = "coverage"  # trial user attribute of a coverage trial: "<key>=<choice>"
DEFAULT_MIN_PER_CHOICE = 3
ATTEMPTS_PER_CANDIDATE = 2  # coverage trials allowed per choice: 2 x min_per_choice
KEY_NAMES = ("hardware", "engine", "deployment.architecture")
KEY_SUFFIXES = (".hardware", ".engine")


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageSpec:
    min_per_choice: int = DEFAULT_MIN_PER_CHOICE

    def __post_init__(self) -> None:
        value = self.min_per_choice
        require(isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100,
                "coverage.min_per_choice", value, "must be an integer in 0..100 (simulated "
                "candidates per hardware, engine or architecture choice; 0 turns coverage off)")

    @property
    def max_attempts(self) -> int:
        return ATTEMPTS_PER_CANDIDATE * self.min_per_choice

    def to_raw(self) -> dict[str, Any]:
        return {"min_per_choice": self.min_per_choice}


def parse_coverage(raw: Any) -> CoverageSpec:
    if raw is None:
        return CoverageSpec()
    require(isinstance(raw, dict), "coverage", raw, "must be {min_per_choice: <int>}")
    unknown = sorted(set(raw) - {"min_per_choice"})
    require(not unknown, "coverage", unknown, "allowed: min_per_choice")
    return CoverageSpec(min_per_choice=raw.get("min_per_choice", DEFAULT_MIN_PER_CHOICE))


def keys(space: SearchSpace) -> list[Parameter]:
    """The parameters coverage looks after, in space order."""
    return [p for p in space.parameters if p.kind == "categorical"
            and (p.name in KEY_NAMES or p.name.endswith(KEY_SUFFIXES))]


def label(name: str, value: Any) -> str:
    return f"{name}={format_value(value)}"


def pin(space: SearchSpace, name: str, value: Any) -> dict[str, Any] | None:
    """``{name: value}`` plus, for a conditional key, the earlier parameters its conditions need
    (each at the first value it allows), in space order; None when no point has that value."""
    params = {p.name: p for p in space.parameters}
    fixed, todo = {name: value}, [name]
    while todo:
        for parent, allowed in params[todo.pop()].when:
            if parent in fixed:
                if fixed[parent] not in allowed:
                    return None
                continue
            options = [v for v in allowed if _takes(params[parent], v)]
            if not options:
                return None
            fixed[parent] = options[0]
            todo.append(parent)
    if not all(params[n].active(fixed) for n in fixed):
        return None
    return {n: fixed[n] for n in space.names if n in fixed}


def _takes(param: Parameter, value: Any) -> bool:
    if param.kind == "categorical" or param.enumerable:
        return param.index_of(value) is not None
    return isinstance(value, (int, float)) and param.low <= value <= param.high


def subspace(space: SearchSpace, fixed: dict[str, Any]) -> SearchSpace:
    """The space with the ``fixed`` parameters reduced to their one value."""
    return SearchSpace(parameters=tuple(
        dataclasses.replace(p, kind="categorical", choices=(fixed[p.name],), low=None, high=None,
                            step=None, log=False) if p.name in fixed else p
        for p in space.parameters))


def _frozen(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


@dataclass(slots=True)
class _Tally:
    simulated: set[tuple] = field(default_factory=set)  # distinct simulated parameter sets
    attempts: int = 0  # coverage trials asked for this choice


@dataclass(frozen=True, slots=True)
class Need:
    """Coverage trials one choice gets now: the fixed parameters of each (a whole point, or the
    pinned parameters with the others left to the sampler)."""

    label: str  # "hardware=l40s"
    trials: tuple[tuple[dict[str, Any], bool], ...]  # (fixed parameters, a whole point?)
    simulated: int  # distinct simulated candidates so far


def needs(space: SearchSpace, spec: CoverageSpec, trials: Sequence[FrozenTrial],
          best: dict[str, Any] | None = None) -> list[Need]:
    """What each choice still lacks, from the study's trials (those that count, finished);
    ``best``: the parameters of the best feasible trial, transferred to each choice once."""
    watched = keys(space)
    if spec.min_per_choice <= 0 or not watched:
        return []
    tally: dict[str, _Tally] = {}
    tried: set[tuple] = set()
    for t in trials:
        params = t.params or t.system_attrs.get("fixed_params", {})
        tried.add(_frozen(params))
        ok = t.state is TrialState.COMPLETE and (t.user_attrs.get("result") or {}).get(
            "status") == "ok"
        for p in watched:
            if ok and p.name in params:
                tally.setdefault(label(p.name, params[p.name]), _Tally()).simulated.add(
                    _frozen(params))
        if COVERAGE in t.user_attrs:
            tally.setdefault(str(t.user_attrs[COVERAGE]), _Tally()).attempts += 1
    out = []
    for p in watched:
        for choice in dict.fromkeys(p.choices):
            need = _need(space, spec, p.name, choice, tally.get(label(p.name, choice), _Tally()),
                         tried, best)
            if need is not None:
                out.append(need)
    return out


def _need(space: SearchSpace, spec: CoverageSpec, name: str, choice: Any, seen: _Tally,
          tried: set[tuple], best: dict[str, Any] | None) -> Need | None:
    fixed = pin(space, name, choice)
    if fixed is None:
        return None
    sub = subspace(space, fixed)
    points = None if sub.continuous else sub.num_points()
    target = spec.min_per_choice if points is None else min(spec.min_per_choice, points)
    count = min(target - len(seen.simulated), spec.max_attempts - seen.attempts)
    if points is not None and points <= spec.max_attempts:
        planned = [(pt, True) for pt in sub.enumerate() if _frozen(pt) not in tried]
    else:
        moved = transfer(space, best, fixed) if best is not None and not seen.attempts else None
        planned = [(moved, True)] if moved is not None and _frozen(moved) not in tried else []
        planned += [(fixed, False)] * max(0, count - len(planned))
    if min(count, len(planned)) <= 0:
        return None
    return Need(label=label(name, choice), trials=tuple(planned[:count]),
                simulated=len(seen.simulated))


def transfer(space: SearchSpace, params: dict[str, Any],
             fixed: dict[str, Any]) -> dict[str, Any] | None:
    """``params`` with the ``fixed`` values swapped in, as a point of the space (parameters
    active there only); None when that point needs a parameter ``params`` lacks (another
    branch of a conditional space) or holds a value the space no longer offers."""
    chosen: dict[str, Any] = {}
    for p in space.parameters:
        if not p.active(chosen):
            continue
        value = fixed.get(p.name, params.get(p.name, _MISSING))
        if value is _MISSING or not _takes(p, value):
            return None
        chosen[p.name] = value
    return chosen


_MISSING = object()


def plan(space: SearchSpace, spec: CoverageSpec, trials: Sequence[FrozenTrial],
         batch_size: int, best: dict[str, Any] | None = None,
         ) -> tuple[list[tuple[dict[str, Any], str]], list[Need]]:
    """The next coverage batch: (fixed parameters, label) per trial, choices taking turns, and
    the needs it serves. Empty while any trial is unfinished (other drivers' batches: their
    results decide what is still missing) or when nothing is missing."""
    if any(not t.state.is_finished() for t in trials):
        return [], []
    wanted = needs(space, spec, trials, best)
    batch: list[tuple[dict[str, Any], str]] = []
    served: dict[str, Need] = {}
    points: set[tuple] = set()  # whole points already in the batch (another choice's need)
    taken = [0] * len(wanted)
    while len(batch) < batch_size and any(k < len(n.trials) for k, n in zip(taken, wanted)):
        for i, need in enumerate(wanted):
            if taken[i] < len(need.trials) and len(batch) < batch_size:
                params, whole = need.trials[taken[i]]
                taken[i] += 1
                if whole and _frozen(params) in points:
                    continue  # simulated once, counted for both choices
                points.update([_frozen(params)] if whole else [])
                batch.append((params, need.label))
                served[need.label] = need
    return batch, list(served.values())


def ask_pinned(study: optuna.Study, params: dict[str, Any], name: str) -> optuna.Trial:
    """A new RUNNING trial with ``params`` fixed and its coverage label, created in one storage
    write (``enqueue_trial`` then ``ask`` would leave a WAITING trial behind if the driver died
    between the two). ``Trial`` reads ``fixed_params`` when it is built: the pinned parameters
    are suggested as given, the others by the study's sampler."""
    template = FrozenTrial(number=-1, state=TrialState.RUNNING, value=None,
                           datetime_start=datetime.now(), datetime_complete=None, params={},
                           distributions={}, user_attrs={COVERAGE: name},
                           system_attrs={"fixed_params": dict(params)}, intermediate_values={},
                           trial_id=-1)
    study._thread_local.cached_all_trials = None  # what ask() does: sync once per trial
    return optuna.trial.Trial(study, study._storage.create_new_trial(study._study_id,
                                                                     template_trial=template))


def main_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that count toward ``n_trials`` (coverage trials do not)."""
    return [t for t in trials if COVERAGE not in t.user_attrs]


def note(needs_served: list[Need], batch_size: int, spec: CoverageSpec) -> str:
    """The progress line of a coverage batch."""
    parts = ", ".join(f"{n.label} ({n.simulated} simulated)" for n in needs_served)
    return (f"coverage: {batch_size} more trial{'s' * (batch_size != 1)} for choices with fewer "
            f"than {spec.min_per_choice} simulated candidates: {parts}")
