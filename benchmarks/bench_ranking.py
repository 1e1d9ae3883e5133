"""Ranking benchmark: does the simulator order MLPerf systems the way the measured results do?

    python benchmarks/bench_ranking.py [--shared-dir ../shared] [--fast] [--json FILE]
    python benchmarks/bench_ranking.py --records FILE      # figures again from saved records

Every MLPerf submission of ``<shared>/reference/mlperf*.csv`` (Offline and Server; ``--fast``:
Offline only) is simulated through ``mlperf_sim.predict``, the path ``hermes-sim validate`` uses.
The figure per accelerator is Offline output tokens/s / GPUs and Server SLO capacity / GPUs (the
submitted target QPS is the measured capacity). Columns:

* ``roofline``: the uncalibrated roofline (it also chooses the layout, as in validation);
* ``calibrated``: the profile validation chooses (``mlperf_validate.calibrated_profile``) with the
  roofline's layout; the roofline where it chooses none (Mixtral, MI300X), as ``calibration=auto``;
* ``peak_flops`` / ``hbm_bw``: no simulation, systems ranked by the accelerator's peak GEMM rate in
  the weight dtype and by its HBM bandwidth: what a simulator has to beat to be worth running.

How parameters are chosen per submission is ``parameter_sources`` (one function): a
leave-submitters-out fit plugs in there, returning parameters not fitted on ``sub.submitter``.
Progress goes to stderr, figures to stdout; ``--json`` writes records and figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hermes_opt.calibration import mlperf_engine, mlperf_rows, mlperf_sim
from hermes_opt.calibration.mlperf_rows import Submission
from hermes_opt.calibration.predict import hardware_spec
from hermes_opt.compose.calibration_profile import all_profiles
from hermes_opt.validation import mlperf_validate, ranking
from hermes_opt.validation.ranking import Record
from sim.cost.roofline import RooflineParams

# A column's prediction for a submission, given the roofline's prediction (its layout)
Predictor = Callable[[Submission, "mlperf_sim.Prediction"], "mlperf_sim.Prediction | str"]
SIMULATED = ("roofline", "calibrated", "engine")
COLUMNS = (*SIMULATED, "peak_flops", "hbm_bw")


def parameter_sources(profiles, entries_for=None) -> dict[str, Predictor]:
    """How each simulated column predicts a submission. ``engine`` is the default model (the
    submission's serving engine and the efficiency table); ``entries_for(sub)``, when given,
    returns the table entries to use for ``sub`` (a leave-submitters-out fit), so no entry that
    saw the submission's own rows predicts it."""
    sims: dict[str, mlperf_sim.Simulator] = {}
    engine_sims: dict[object, mlperf_engine.EngineSimulators] = {}

    def roofline(sub, roof):
        return roof

    def calibrated(sub, roof):
        family = mlperf_validate._family(sub.model)
        prof, _ = mlperf_validate.calibrated_profile(profiles, hardware=sub.hardware,
                                                     precision=roof.layout.weights.value,
                                                     family=family)
        if prof is None:
            return roof
        sim = sims.setdefault(prof.name, mlperf_sim.Simulator(prof.params))
        return mlperf_sim.predict(sub, sim, fixed_tp=roof.layout.tp)

    def engine(sub, roof):
        entries = entries_for(sub) if entries_for is not None else None
        key = id(entries) if entries is not None else None
        sims_for = engine_sims.setdefault(key, mlperf_engine.EngineSimulators(entries))
        return sims_for.predict(sub)[0]

    return {"roofline": roofline, "calibrated": calibrated, "engine": engine}


def default_shared_dir() -> str:
    return "../shared" if Path("../shared/reference").is_dir() else "/work/shared"


def submissions(shared_dir: str, fast: bool) -> list[Submission]:
    tables = sorted((Path(shared_dir) / "reference").glob("mlperf*.csv"))
    if not tables:
        sys.exit(f"bench_ranking: no reference/mlperf*.csv under --shared-dir {shared_dir}")
    subs = [s for t in tables for s in mlperf_rows.read_table(t)[0]]
    for s in subs:
        if s.reason:
            print(f"skip {s.key}: {s.reason}", file=sys.stderr)
    wanted = ("Offline",) if fast else ("Offline", "Server", "Interactive")
    return [s for s in subs if not s.reason and s.scenario in wanted]


def _record(sub: Submission, predicted_per_gpu: float) -> Record:
    _, measured = mlperf_validate.headline(sub, "")
    return mlperf_validate.ranking_record(sub, predicted_per_gpu, measured / sub.num_gpus)


def hardware_figures(sub: Submission) -> dict[str, float]:
    """Per-accelerator datasheet figures: peak GEMM FLOP/s in the weight dtype the simulator
    would run (its tensor cores, else bf16) and HBM bytes/s."""
    hw = hardware_spec(sub.hardware)
    weights, _ = mlperf_sim.dtypes(sub.weights, sub.hardware)
    return {"peak_flops": hw.peak_flops_per_s(weights), "hbm_bw": hw.mem_bw_bytes_per_s}


def simulate_records(subs: list[Submission], sources: dict[str, Predictor]
                     ) -> dict[str, list[Record]]:
    """Records per column: the simulated ones (``sources``) and the datasheet rankings."""
    sims: dict[str, mlperf_sim.Simulator] = {}
    out: dict[str, list[Record]] = {c: [] for c in (*sources, "peak_flops", "hbm_bw")}
    start = time.perf_counter()
    for i, sub in enumerate(subs, 1):
        roof = mlperf_sim.predict(sub, sims.setdefault("roofline", mlperf_sim.Simulator(RooflineParams())))
        line = []
        for column, source in sources.items():
            pred = roof if isinstance(roof, str) else source(sub, roof)
            rec = _record(sub, mlperf_validate.headline(sub, pred)[0] / sub.num_gpus)
            out[column].append(rec)
            line.append(f"{column} {rec.predicted / rec.measured:.2f}x")
        for column, value in hardware_figures(sub).items():
            out[column].append(_record(sub, value))
        print(f"[{i}/{len(subs)} {time.perf_counter() - start:.0f}s] {sub.key}: "
              + ", ".join(line), file=sys.stderr, flush=True)
    return out


def _share(t: dict) -> str:
    if not t["pairs"]:
        return "   n/a (0 pairs)"
    return (f"{100 * t['share']:5.1f} % ({t['correct']}/{t['pairs']}; ties {t['tied']}, "
            f"ties-half {100 * t['share_ties_half']:.1f} %)")


def report(columns: dict[str, list[Record]], min_gap: float) -> tuple[str, dict]:
    """Printable text and the figures (JSON-able) of every column."""
    figures = {c: ranking.summary(rs, min_gap) for c, rs in columns.items()}
    lines = [f"pairs within (benchmark, scenario) whose measured figure per accelerator differs by "
             f"> {100 * min_gap:g} %; share = predicted order == measured order (ties count wrong)"]
    for c, f in figures.items():
        p, rho = f["pairwise"], f["spearman"]["median"]
        lines.append(f"\n== {c}")
        for flt in ranking.PAIR_FILTERS:
            lines.append(f"  {flt:21s} pooled {_share(p[flt]['pooled'])}")
        lines.append(f"  Spearman median over groups: {'n/a' if rho is None else f'{rho:.3f}'}")
        for scen, e in f["errors"].items():
            if c in SIMULATED:  # a datasheet figure has no unit in common with the measurement
                lines.append(f"  {scen:8s} |error| median {e['median_pct']:.1f} %, p90 "
                             f"{e['p90_pct']:.1f} %, median predicted/measured "
                             f"{e['median_ratio']:.2f} (n={e['n']})")
        for g, t in p["all"]["groups"].items():
            cv = p["cross_vendor"]["groups"][g]
            r = f["spearman"]["groups"][g]
            lines.append(f"    {g:28s} n={r['n']:2d} rho="
                         f"{'  n/a' if r['rho'] is None else format(r['rho'], '5.2f')}  all "
                         f"{_share(t)}  cross-vendor {_share(cv)}")
    for c in SIMULATED:
        if c in columns:
            lines.append(f"\ncross-vendor pairs {c} gets wrong or tied (measured faster > slower):")
            lines += _wrong_pairs(columns[c], min_gap)
    return "\n".join(lines), figures


def wrong_cross_vendor(records: list[Record], min_gap: float) -> list[ranking.PairOutcome]:
    return [p for p in ranking.scored_pairs(records, min_gap)
            if p.outcome != "correct" and p.a.vendor != p.b.vendor]


def _wrong_pairs(records: list[Record], min_gap: float) -> list[str]:
    """Compact: one line per (group, measured-faster GPU, slower GPU), the pairs and their spread
    (the same GPU pair recurs once per submitter, so the list of pairs is mostly repetition)."""
    agg: dict[tuple, list[ranking.PairOutcome]] = {}
    for p in wrong_cross_vendor(records, min_gap):
        agg.setdefault(("/".join(p.group), p.a.gpu, p.b.gpu, p.outcome), []).append(p)
    out = []
    for (g, fast, slow, outcome), ps in sorted(agg.items()):
        meas = [100 * p.measured_gap for p in ps]
        pred = [100 * (p.a.predicted / p.b.predicted - 1) for p in ps]
        who = sorted({f"{_who(p.a)}>{_who(p.b)}" for p in ps})
        out.append(f"  {g}: {fast} > {slow}: {len(ps)} {outcome} (measured +{min(meas):.0f}..+"
                   f"{max(meas):.0f} %, predicted {min(pred):+.0f}..{max(pred):+.0f} %) "
                   f"[{', '.join(who)}]")
    return out or ["  none"]


def _who(r: Record) -> str:
    return f"{r.submitter}:{r.gpu}x{r.num_gpus}"


def _pair_dict(p: ranking.PairOutcome) -> dict:
    return {"group": list(p.group), "faster": p.a.to_dict(), "slower": p.b.to_dict(),
            "measured_gap": p.measured_gap, "outcome": p.outcome}


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared-dir", default=None, help="default ../shared, else /work/shared")
    p.add_argument("--fast", action="store_true", help="Offline submissions only")
    p.add_argument("--json", help="write records and figures to this file")
    p.add_argument("--records", help="recompute the figures from a --json file (no simulation)")
    p.add_argument("--min-gap", type=float, default=0.05)
    args = p.parse_args(argv)
    start = time.perf_counter()
    if args.records:
        saved = json.loads(Path(args.records).read_text())["records"]
        columns = {c: [Record.from_dict(d) for d in rs] for c, rs in saved.items()}
    else:
        subs = submissions(args.shared_dir or default_shared_dir(), args.fast)
        print(f"{len(subs)} submissions to simulate", file=sys.stderr)
        columns = simulate_records(subs, parameter_sources(all_profiles()))
    text, figures = report(columns, args.min_gap)
    wall = time.perf_counter() - start
    print(text)
    print(f"\nwall time {wall:.0f} s ({'from records' if args.records else 'simulated'})")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"records": {c: [r.to_dict() for r in rs] for c, rs in columns.items()},
             "figures": figures,
             "wrong_cross_vendor": {c: [_pair_dict(p) for p in wrong_cross_vendor(columns[c], args.min_gap)]
                                    for c in SIMULATED if c in columns},
             "wall_s": round(wall, 1), "fast": args.fast}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
