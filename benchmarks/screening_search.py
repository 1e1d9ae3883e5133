"""Multi-fidelity exhaustive search: the grid with screening vs the grid fully simulated.

1. Exhaustive simulation: ``sampler: grid`` over the whole space of ``studies/<study>.yaml``
   (default dse_chat_wide, 2,080 points), every feasible candidate simulated. Stored under
   runs/bench_cache/ and reused when already there (its wall time is then read from the stored
   trials' start and end times).
2. The same grid with ``screening: {enabled: true, margin, objective_margin}``: the analytical tier
   decides candidates that cannot meet an SLO or cannot beat the best simulated value; the
   simulator runs the rest.

Printed: simulations, wall time and best value of each, the reduction in simulations and the
screened best as a share of the exhaustive best. Exit status 1 when the screened best is below
98% of the exhaustive best or the reduction is under 10x.

    python benchmarks/screening_search.py [--study dse_chat_wide] [--margin 0.5]
        [--objective-margin 0.15] [--jobs 2] [--executor loky|dask]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import optuna

from hermes_opt.run import runner
from hermes_opt.study.definition import load
from hermes_opt.study.execution import (
    DEFAULT_MARGIN,
    DEFAULT_OBJECTIVE_MARGIN,
    ExecutorSpec,
    ScreeningSpec,
)


def summarise(study: optuna.Study) -> dict:
    trials = study.get_trials(deepcopy=False)
    records = [t.user_attrs.get("result") or {} for t in trials]
    best_trial = max(runner.feasible_trials(study), key=lambda t: t.values[0], default=None)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    return {
        "points": len(trials),
        "simulated": sum(r.get("status") in ("ok", "error") for r in records),
        "screened": sum(r.get("status") == "screened" for r in records),
        "infeasible": sum(r.get("status") == "infeasible" for r in records),
        "best": best_trial.values[0] if best_trial else math.nan,
        "best_params": best_trial.params if best_trial else {},
        "stored_wall_s": (max(ends) - min(starts)).total_seconds() if starts and ends else math.nan,
    }


def run(spec, name: str, jobs: int, screening: ScreeningSpec, executor: ExecutorSpec,
        fresh: bool) -> tuple[dict, float | None]:
    path = Path("runs/bench_cache") / f"{name}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fresh and path.exists():
        path.unlink()
    grid = dataclasses.replace(spec, name=name, sampler="grid", n_trials=spec.space.num_points(),
                               storage=f"sqlite:///{path}", screening=screening,
                               executor=executor)
    tic = time.perf_counter()
    study, stats = runner.run_study(grid, n_jobs=jobs, progress_stream=sys.stderr)
    wall = time.perf_counter() - tic if stats.jobs else None  # None: everything was stored
    return summarise(study), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="dse_chat_wide")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN)
    parser.add_argument("--objective-margin", type=float, default=DEFAULT_OBJECTIVE_MARGIN)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--executor", default="loky", choices=("loky", "dask"))
    args = parser.parse_args()
    spec = load(args.study)
    executor = ExecutorSpec(kind=args.executor)
    full, full_wall = run(spec, f"{args.study}_exhaustive", args.jobs, ScreeningSpec(),
                          ExecutorSpec(), fresh=False)
    screened, screened_wall = run(spec, f"{args.study}_screened", args.jobs,
                                  ScreeningSpec(enabled=True, margin=args.margin,
                                                objective_margin=args.objective_margin), executor,
                                  fresh=True)
    wall = lambda measured, s: (f"{measured:.0f} s" if measured is not None  # noqa: E731
                                else f"{s['stored_wall_s']:.0f} s (stored run)")
    print(f"{args.study}: {full['points']:,} points, {full['infeasible']} infeasible before "
          f"simulating")
    print(f"  exhaustive simulation: {full['simulated']} simulations, "
          f"{wall(full_wall, full)} on {args.jobs} workers; best {full['best']:,.0f} "
          f"{full['best_params']}")
    print(f"  with screening (margin {args.margin:g}, objective_margin "
          f"{args.objective_margin:g}, {args.executor}): {screened['simulated']} "
          f"simulations, {screened['screened']} decided by the analytical tier, "
          f"{wall(screened_wall, screened)}; best {screened['best']:,.0f} "
          f"{screened['best_params']}")
    reduction = full["simulated"] / max(1, screened["simulated"])
    share = screened["best"] / full["best"]
    print(f"  {reduction:.1f}x fewer simulations; screened best = {share:.2%} of the exhaustive "
          f"best")
    sys.exit(0 if share >= 0.98 and reduction >= 10 else 1)


if __name__ == "__main__":
    main()
