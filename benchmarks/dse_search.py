"""Cluster-mix search quality: TPE vs the exhaustive grid on a shipped design-space study.

1. ``sampler: grid`` enumerates the whole space of ``studies/<study>.yaml`` (default dse_chat:
   architecture x SKU per pool x P:D split x TP) through the real simulator, with the real study
   machinery (SQLite storage under runs/bench_cache/, resumable: re-running continues the grid).
2. TPE then runs the same study with a budget of ``--budget`` (20%) of the grid's points, over
   ``--seeds`` seeds, reading the grid's results for the candidates it proposes (the same
   overrides and workload seed, so identical to simulating them). The budget counts distinct
   candidates: TPE re-proposes candidates in discrete spaces, and the driver answers a repeat
   from its cache without simulating it, so repeats cost nothing but a sampler step.

Figures printed: the space size, the grid optimum and its wall time, and per seed the best TPE
value as a share of the grid optimum, the distinct candidates (and trials) it used, and the
distinct candidates it needed to reach 98% of it.

    python benchmarks/dse_search.py [--study dse_chat] [--seeds 3] [--budget 0.2] [--jobs 2]

Exit status 1 when a seed ends below 98% of the optimum.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hermes_opt.run import runner
from hermes_opt.study.definition import load
from hermes_opt.study.space import to_overrides

CACHE: dict[str, dict | str] = {}
BASE_LEN = [0]


def unflatten(flat: dict[str, float]) -> dict:
    """A summary rebuilt from a trial's flat metric means (one replicate: the values)."""
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[leaf] = value
    return out


def cached_evaluator(overrides: list[str], seed: int, budget) -> dict:
    from hermes_opt.run.worker import Infeasible
    value = CACHE[" ".join(sorted(overrides[BASE_LEN[0]:]))]
    if isinstance(value, str):
        raise Infeasible(value)
    return value


def run_grid(spec, jobs: int):
    points = spec.space.num_points()
    grid = dataclasses.replace(spec, sampler="grid", n_trials=points, replicates=1,
                               n_startup_trials=None, storage=None, name=f"{spec.name}_grid")
    path = Path("runs/bench_cache") / f"{spec.name}_grid_{grid.config_hash[:12]}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = dataclasses.replace(grid, storage=f"sqlite:///{path}")
    tic = time.perf_counter()
    study, _ = runner.run_study(grid, n_jobs=jobs, progress_stream=sys.stderr)
    wall = time.perf_counter() - tic
    for t in study.get_trials(deepcopy=False):
        record = t.user_attrs.get("result") or {}
        key = " ".join(sorted(to_overrides(t.params)))
        if record.get("status") == "ok":
            CACHE[key] = unflatten(record.get("metrics") or {})
        else:
            CACHE[key] = record.get("reason") or "infeasible"
    best = max((t.values[0] for t in runner.feasible_trials(study)), default=math.nan)
    return points, best, wall, path


def tpe_run(spec, seed: int, n_trials: int) -> list[tuple[int, str, float | None]]:
    """(trial number, candidate key, objective if feasible) of every trial, in order."""
    with tempfile.TemporaryDirectory() as tmp:
        tpe = dataclasses.replace(spec, sampler="tpe", seed=seed, n_trials=n_trials,
                                  replicates=1, storage=f"sqlite:///{tmp}/study.db")
        study, _ = runner.run_study(tpe, evaluator=cached_evaluator, n_jobs=1,
                                    progress_stream=None)
        feasible = {t.number: t.values[0] for t in runner.feasible_trials(study)}
        return [(t.number, " ".join(sorted(to_overrides(t.params))), feasible.get(t.number))
                for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)]


def within(trials, best: float, budget: int) -> tuple[float, int | None, int]:
    """Best value among the trials up to the ``budget``-th distinct candidate (repeats are
    answered from the driver's cache, never simulated again), the distinct evaluations needed
    to reach 98% of ``best``, and the trials that took."""
    seen: set[str] = set()
    top, reach, used = 0.0, None, 0
    for _, key, value in trials:
        if key not in seen:
            if len(seen) == budget:
                break
            seen.add(key)
        used += 1
        if value is not None:
            top = max(top, value)
            if reach is None and value >= 0.98 * best:
                reach = len(seen)
    return top, reach, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="dse_chat")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.2, help="share of the grid's points")
    parser.add_argument("--jobs", type=int, default=2, help="workers for the grid")
    parser.add_argument("--trial-cap", type=int, default=1000,
                        help="most TPE trials per seed (repeats included)")
    args = parser.parse_args()
    spec = load(args.study)
    BASE_LEN[0] = len(spec.base)
    points, best, wall, path = run_grid(spec, args.jobs)
    simulated = sum(not isinstance(v, str) for v in CACHE.values())
    print(f"{args.study}: {points} points, {simulated} simulated ({points - simulated} "
          f"infeasible); grid optimum {spec.objectives[0].metric} = {best:,.0f}; grid wall "
          f"time {wall:.0f} s on {args.jobs} workers (cached in {path})")
    budget = max(1, int(args.budget * points))
    ratios = []
    for seed in range(args.seeds):
        # the driver answers repeated candidates from its cache, so the budget is counted in
        # distinct candidates simulated; trials run until that many distinct ones (or a cap)
        trials = tpe_run(spec, seed, args.trial_cap)
        top, reach, used = within(trials, best, budget)
        distinct = len({key for _, key, _ in trials[:used]})
        ratios.append(top / best)
        print(f"  TPE seed {seed}: best {top:,.0f} = {top / best:.1%} of the grid optimum after "
              f"{distinct} distinct candidates ({distinct / points:.0%} of the grid; {used} "
              f"trials, repeats reused); 98% reached after "
              f"{reach if reach else '>' + str(distinct)} distinct candidates")
    print(f"TPE: mean {np.mean(ratios):.1%}, min {np.min(ratios):.1%} of the grid optimum within "
          f"{budget} distinct candidates ({args.budget:.0%}); seeds >= 98%: "
          f"{sum(r >= 0.98 for r in ratios)}/{len(ratios)}")
    sys.exit(0 if min(ratios) >= 0.98 else 1)


if __name__ == "__main__":
    main()
