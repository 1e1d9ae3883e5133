"""Search quality: does the optimizer find the best SLO-feasible tokens/$ with few evaluations?

A study small enough to enumerate (6 devices x 4 TP x 4 replica counts x 2 weight precisions x
2 batching policies = 384 candidates, Llama-3.1-70B chat with short workloads) is simulated
exhaustively through the real simulator once (cached in runs/bench_cache/). The optimizer then
runs on the same candidates with a budget of 20% of the evaluations, over several seeds, reading
the cached results (identical to simulating: same overrides, same workload seed).

Figures printed:
* single objective (max SLO-constrained tokens/$): best found / exhaustive best, per seed, and
  the evaluations needed to reach 98% of the exhaustive best;
* two objectives (max tokens/$, min p99 TTFT): hypervolume of the optimizer's feasible front /
  hypervolume of the exhaustive feasible front (same reference point).

    python benchmarks/search_quality.py [--seeds 5] [--budget 0.2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hermes_opt.run import runner
from hermes_opt.run.pool import Pool
from hermes_opt.run.worker import run_job, simulate_overrides
from hermes_opt.study.definition import from_dict
from hermes_opt.study.objective import score
from hermes_opt.study.pareto import hypervolume, pareto_mask, reference_point
from hermes_opt.study.space import to_overrides

SCENARIO = {
    "name": "search_quality",
    "base": ["model=llama3_1_70b", "workload=chat", "workload.num_requests=600",
             "workload.arrival.rate_per_s=8", "slo=interactive", "pricing=ondemand_2026_11"],
    "space": {
        "hardware": {"choices": ["h100_sxm", "h200", "b200", "a100_80g", "l40s", "mi300x"]},
        "cluster.tp": {"choices": [1, 2, 4, 8]},
        "cluster.num_replicas": {"type": "int", "low": 1, "high": 4},
        "cluster.weight_dtype": {"choices": ["bf16", "fp8"]},
        "scheduler": {"choices": ["continuous", "chunked"]},
    },
    "constraints": ["ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50"],
    "replicates": 1, "seed": 0, "batch_size": 4,
}
TWO_OBJECTIVES = [{"metric": "slo_tokens_per_usd", "direction": "maximize"},
                  {"metric": "ttft_ms.p99", "direction": "minimize"}]
CACHE: dict[str, dict | str] = {}


def key(overrides: list[str]) -> str:
    return " ".join(overrides)


def cached_evaluator(overrides: list[str], seed: int, budget) -> dict:
    """The exhaustive results, looked up: what simulate_overrides returned for these overrides."""
    from hermes_opt.run.worker import Infeasible
    value = CACHE[key(overrides)]
    if isinstance(value, str):
        raise Infeasible(value)
    return value


def enumerate_all(spec, jobs: int) -> None:
    digest = hashlib.sha256(json.dumps(SCENARIO, sort_keys=True).encode()).hexdigest()[:12]
    path = Path("runs/bench_cache") / f"search_quality_{digest}.json"
    if path.exists():
        CACHE.update(json.loads(path.read_text()))
        print(f"exhaustive results: {len(CACHE)} candidates from {path}")
        return
    candidates = [list(spec.base) + to_overrides(c) for c in spec.space.enumerate()]
    tic = time.perf_counter()
    work = [(run_job, simulate_overrides, i, 0, o, spec.seed, None) for i, o in enumerate(candidates)]

    class Never:
        requested = False
    with Pool(jobs) as pool:
        for result in pool.run(work, Never()):
            o = candidates[result.trial_number]
            if result.status == "error":
                raise RuntimeError(result.reason)
            CACHE[key(o)] = result.summary if result.status == "ok" else result.reason
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(CACHE))
    print(f"exhaustive results: simulated {len(CACHE)} candidates in "
          f"{time.perf_counter() - tic:.0f} s on {jobs} workers -> {path}")


def exhaustive_values(spec) -> list[tuple[float, ...]]:
    """Objective values of every SLO-feasible candidate."""
    out = []
    for value in CACHE.values():
        if isinstance(value, str):
            continue
        s = score([value], spec.objectives, spec.constraints)
        if s.feasible:
            out.append(s.values)
    return out


def optimizer_values(spec) -> list[tuple[int, tuple[float, ...]]]:
    with tempfile.TemporaryDirectory() as tmp:
        spec = type(spec)(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__},
                             "storage": f"sqlite:///{tmp}/study.db"})
        study, _ = runner.run_study(spec, evaluator=cached_evaluator, n_jobs=1,
                                    progress_stream=None)
        return [(t.number, tuple(t.values)) for t in runner.feasible_trials(study)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.2, help="share of the candidates")
    parser.add_argument("--jobs", type=int, default=2, help="workers for the exhaustive pass")
    parser.add_argument("--mo-sampler", default="auto", choices=["auto", "tpe", "nsga2", "random"],
                        help="sampler of the two-objective study")
    parser.add_argument("--batch-size", type=int, default=SCENARIO["batch_size"])
    args = parser.parse_args()
    single = from_dict(dict(SCENARIO, n_trials=1))
    n_candidates = len(single.space.enumerate())
    enumerate_all(single, args.jobs)
    n_trials = int(args.budget * n_candidates)
    best = max(v[0] for v in exhaustive_values(single))
    print(f"\n{n_candidates} candidates; exhaustive best SLO-feasible tokens/$ = {best:,.0f}; "
          f"optimizer budget {n_trials} evaluations ({n_trials / n_candidates:.0%})")
    ratios, needed = [], []
    for seed in range(args.seeds):
        spec = from_dict(dict(SCENARIO, n_trials=n_trials, seed=seed, sampler="tpe",
                              batch_size=args.batch_size))
        found = optimizer_values(spec)
        top = max((v[0] for _, v in found), default=0.0)
        reach = min((n + 1 for n, v in found if v[0] >= 0.98 * best), default=None)
        ratios.append(top / best)
        needed.append(reach)
        print(f"  seed {seed}: best found {top:,.0f} = {top / best:.1%} of exhaustive; "
              f"98% reached after {reach if reach else '>' + str(n_trials)} evaluations")
    print(f"single objective: mean {np.mean(ratios):.1%}, min {np.min(ratios):.1%} of the "
          f"exhaustive best; seeds reaching >= 98%: {sum(r >= 0.98 for r in ratios)}/{len(ratios)}")

    multi = from_dict(dict(SCENARIO, n_trials=n_trials, objectives=TWO_OBJECTIVES))
    all_values = exhaustive_values(multi)
    ref = reference_point(all_values, multi.directions)
    front = np.asarray(all_values)[pareto_mask(all_values, multi.directions)]
    hv_best = hypervolume(front, multi.directions, ref)
    print(f"\ntwo objectives (max tokens/$, min p99 TTFT): exhaustive front {len(front)} points, "
          f"hypervolume {hv_best:.6g} (reference {[round(r, 3) for r in ref]})")
    hv_ratios = []
    for seed in range(args.seeds):
        spec = from_dict(dict(SCENARIO, n_trials=n_trials, seed=seed, batch_size=args.batch_size,
                              objectives=TWO_OBJECTIVES, sampler=args.mo_sampler))
        values = [v for _, v in optimizer_values(spec)]
        hv = hypervolume(np.asarray(values)[pareto_mask(values, spec.directions)],
                         spec.directions, ref) if values else 0.0
        hv_ratios.append(hv / hv_best)
        print(f"  seed {seed} ({spec.resolved_sampler}): hypervolume {hv:.6g} = "
              f"{hv / hv_best:.1%} of the exhaustive front's")
    print(f"two objectives: mean {np.mean(hv_ratios):.1%}, min {np.min(hv_ratios):.1%} of the "
          f"exhaustive hypervolume")
    sys.exit(0 if min(ratios) >= 0.98 else 1)


if __name__ == "__main__":
    main()
