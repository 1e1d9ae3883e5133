"""The kv_search study's best tier design against the fixed designs, scored the same way.

Loads ``studies/kv_search.yaml``, reads its best feasible trial from the study's storage (run
``hermes-opt study=kv_search`` first), and evaluates, with the study's base scenario, seeds,
objective and constraints: no store at all (``kv_tiers=none``: the pool's router balances load),
the design space with every tier disabled (recompute, each client on its own engine), and every
fixed preset (MIST Table 2 cases A-E; ``hbm_dram``, ``hbm_dram_ssd``, ``remote_store``). Prints one
row per design: tokens/$ (the objective), feasibility, p90/p99 TTFT, hit rate and $/hour.

    python benchmarks/kv_search_baselines.py [--storage sqlite:///runs/kv_search/study.db]
"""

from __future__ import annotations

import argparse
import math
import sys

import optuna

from hermes_opt.run.worker import simulate_overrides
from hermes_opt.study import definition
from hermes_opt.study import storage as storage_mod
from hermes_opt.study.objective import score
from sim.errors import ConfigError

PRESETS = ["mist_a_lpddr", "mist_b_dram", "mist_c_rack_ssd", "mist_d_remote", "mist_e_recompute",
           "hbm_dram", "hbm_dram_ssd", "remote_store", "none"]
NO_TIER = [f"kv_tiers.tiers.{t}.enabled=false" for t in ("hbm", "lpddr", "dram", "rack", "remote")]


def evaluate(spec, overrides: list[str]):
    summaries = [simulate_overrides(overrides, seed, spec.budget) for seed in spec.replicate_seeds]
    return score(summaries, spec.objectives, spec.constraints)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///runs/kv_search/study.db")
    args = parser.parse_args()
    spec = definition.load("kv_search")
    base = [b for b in spec.base if not b.startswith("kv_tiers=")]
    rows = []
    try:
        study = optuna.load_study(study_name=spec.name,
                                  storage=storage_mod.open_storage(args.storage, create=False))
    except (ConfigError, KeyError) as err:  # no study yet: the fixed designs alone
        print(f"kv_search_baselines: {err}; showing the fixed designs only "
              f"(run `hermes-opt study=kv_search` to add the search's best)", file=sys.stderr)
        study = None
    best = None if study is None else max(
        (t for t in study.trials if t.values and t.constraints
         and all(v <= 0 for v in t.constraints.values())),
        key=lambda t: t.values[0], default=None)
    if best is not None:  # the overrides the trial was simulated with, as stored
        params = (best.user_attrs.get("result") or {}).get("overrides") or []
        rows.append((f"search best (trial {best.number})", [*base, "kv_tiers=kv_design", *params]))
    rows.append(("design space, every tier off", [*base, "kv_tiers=kv_design", *NO_TIER]))
    rows += [(f"preset {p}", [*base, f"kv_tiers={p}"]) for p in PRESETS]
    print(f"{'design':<34} {'tokens/$':>9} {'feasible':>8} {'TTFT p90':>9} {'TTFT p99':>9} "
          f"{'hit rate':>8} {'$/hour':>7}")
    for name, overrides in rows:
        s = evaluate(spec, overrides)
        m = s.metrics
        hit = m.get("kv_lookups.llm.hit_rate", math.nan)
        print(f"{name:<34} {s.values[0]:>9.0f} {'yes' if s.feasible else 'no':>8} "
              f"{m['ttft_ms.p90']:>9.0f} {m['ttft_ms.p99']:>9.0f} {hit:>8.3f} "
              f"{m['cost_usd_per_hour']:>7.1f}")
    if best is not None:
        print("search best:", " ".join(f"{k}={v}" for k, v in sorted(best.params.items())))


if __name__ == "__main__":
    main()
