"""The analytical tier against the simulator: speed per candidate and error, on the simulated
candidates of a study's stored trials (e.g. the exhaustive grid benchmarks/screening_search.py
runs, or any study's storage).

For every trial the simulator ran, the candidate's config is composed again and estimated
(``sim.analytic.estimate``), and the estimate is compared with the simulated figures:

* Spearman rank correlation of the objective (slo_tokens_per_usd) and of p99 TTFT / p99 TPOT;
* the ratio simulated / estimated (median, 5th-95th percentile, min, max) of each;
* SLO agreement: how often the estimate and the simulation agree that the candidate meets each
  constraint, and the ratios that matter for pruning: the largest estimated / simulated latency
  among candidates the simulation found feasible (pruning on an SLO is safe while the margin
  covers it) and the largest simulated / estimated objective among feasible ones;
* the time per candidate of the estimate alone and of composing + estimating.

    python benchmarks/analytic_error.py [--study dse_chat_wide]
        [--storage sqlite:///runs/bench_cache/dse_chat_wide_exhaustive.db]
        [--name dse_chat_wide_exhaustive]
    python benchmarks/analytic_error.py --study dse_chat --sample 60   # simulate 60 first
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import numpy as np
import optuna

from hermes_opt.compose.candidate import compose
from hermes_opt.run import runner
from hermes_opt.run.screen import Rule, estimate_candidate
from hermes_opt.study.definition import load
from hermes_opt.study.space import to_overrides
from sim.analytic.estimate import estimate


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def ratio_line(name: str, sim: np.ndarray, est: np.ndarray) -> str:
    ok = (est > 0) & (sim > 0) & np.isfinite(est) & np.isfinite(sim)
    r = sim[ok] / est[ok]
    return (f"  {name:<22} spearman {spearman(sim[ok], est[ok]):.3f}; sim/est median "
            f"{np.median(r):.2f}, p5-p95 {np.percentile(r, 5):.2f}-{np.percentile(r, 95):.2f}, "
            f"min {r.min():.2f}, max {r.max():.2f} (n={ok.sum()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="dse_chat_wide")
    parser.add_argument("--storage", default="sqlite:///runs/bench_cache/dse_chat_wide_exhaustive.db")
    parser.add_argument("--name", default="dse_chat_wide_exhaustive")
    parser.add_argument("--replay", default="0.5:0.5,0.5:0.15,0.25:0.1",
                        help="margin:objective_margin pairs to replay the screened grid with "
                             "(offline, from the stored simulations and these estimates); '' = "
                             "none")
    parser.add_argument("--sample", type=int, default=0,
                        help="first simulate this many random candidates of the study (stored "
                             "in runs/bench_cache/<study>_sample.db) and compare on those")
    args = parser.parse_args()
    spec = load(args.study)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.sample:
        args.name = f"{args.study}_sample"
        args.storage = f"sqlite:///runs/bench_cache/{args.name}.db"
        runner.run_study(dataclasses.replace(spec, name=args.name, storage=args.storage,
                                             sampler="random", n_trials=args.sample,
                                             replicates=1, n_jobs=2), progress_stream=None)
    study = optuna.load_study(study_name=args.name, storage=args.storage)
    rows, est_s, total_s, replay = [], [], [], []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        record = t.user_attrs.get("result") or {}
        if record.get("status") != "ok":
            continue
        m = record["metrics"]
        tic = time.perf_counter()
        candidate = compose(list(spec.base) + to_overrides(t.params))
        est, summary = estimate_candidate(candidate)
        total_s.append(time.perf_counter() - tic)
        config = candidate.config
        tic = time.perf_counter()
        estimate(config)
        est_s.append(time.perf_counter() - tic)
        if not est.supported:
            continue
        replay.append((t.number, summary, m, t.values[0] if all(
            v <= 0 for v in t.constraints.values()) else None))
        rows.append((m["slo_tokens_per_usd"], summary["slo_tokens_per_usd"],
                     m["ttft_ms.p99"], summary["ttft_ms"]["p99"],
                     m["tpot_ms.p99"], summary["tpot_ms"]["p99"]))
    data = np.array(rows, dtype=float)
    obj_s, obj_e, ttft_s, ttft_e, tpot_s, tpot_e = data.T
    bounds = {c.metric: c.bound for c in spec.constraints}
    print(f"{args.study}: {len(data)} simulated candidates estimated")
    print(f"  estimate alone: {1e3 * np.median(est_s):.2f} ms per candidate (median; p95 "
          f"{1e3 * np.percentile(est_s, 95):.2f} ms); compose + price + estimate "
          f"{1e3 * np.median(total_s):.1f} ms")
    print(ratio_line("slo_tokens_per_usd", obj_s, obj_e))
    print(ratio_line("ttft_ms.p99", ttft_s, ttft_e))
    print(ratio_line("tpot_ms.p99", tpot_s, tpot_e))
    feas_s = (ttft_s <= bounds.get("ttft_ms.p99", np.inf)) & (tpot_s <= bounds.get("tpot_ms.p99", np.inf))
    feas_e = (ttft_e <= bounds.get("ttft_ms.p99", np.inf)) & (tpot_e <= bounds.get("tpot_ms.p99", np.inf))
    print(f"  SLO verdict agrees on {np.mean(feas_s == feas_e):.1%} (simulated feasible "
          f"{feas_s.sum()}, estimated feasible {feas_e.sum()})")
    if feas_s.any():
        print(f"  pruning safety over simulated-feasible candidates: max est/sim p99 TTFT "
              f"{np.max(ttft_e[feas_s] / ttft_s[feas_s]):.2f}, p99 TPOT "
              f"{np.max(tpot_e[feas_s] / tpot_s[feas_s]):.2f}; max sim/est objective "
              f"{np.max(obj_s[feas_s] / np.maximum(obj_e[feas_s], 1e-9)):.2f}")
        print(ratio_line("objective (feasible)", obj_s[feas_s], obj_e[feas_s]))
    exhaustive_best = max((v for *_, v in replay if v is not None), default=math.nan)
    for pair in [m for m in args.replay.split(",") if m]:
        margin, objective_margin = (float(v) for v in pair.split(":"))
        sims, best = replay_screening(replay, spec, margin, objective_margin)
        print(f"  replayed screening, margin {margin:g}, objective_margin {objective_margin:g}: "
              f"{sims} of {len(replay)} simulated "
              f"({len(replay) / max(1, sims):.1f}x fewer), best {best:,.0f} = "
              f"{best / exhaustive_best:.2%} of the exhaustive best")


def replay_screening(replay, spec, margin: float, objective_margin: float) -> tuple[int, float]:
    """What ``screening: {margin}`` would simulate on the grid (batches of ``batch_size``, the
    incumbent fixed per batch as the driver does), from stored simulations and estimates."""
    base = Rule.for_spec(spec)
    rule = Rule(margin, base.constraints, base.objective, objective_margin)
    incumbent, sims, best, batch, pending = None, 0, -math.inf, -1, []
    for number, summary, _metrics, value in replay:
        if number // spec.batch_size != batch:
            for v in pending:
                incumbent = v if incumbent is None else max(incumbent, v)
            batch, pending = number // spec.batch_size, []
        if rule.decide(summary, incumbent):
            continue
        sims += 1
        if value is not None:
            pending.append(value)
            best = max(best, value)
    return sims, best


if __name__ == "__main__":
    main()
