"""Calibration transfer across model sizes on the Vidur operator profiles (docs/validation.md,
"Transfer across model sizes"). Prints one JSON line per (GPU, fit size -> test size) with the
median / p90 absolute % error of the uncalibrated roofline, the plain fit and the shrunk fit.

The shrinkage for one GPU is chosen by leave-one-model-size-out on the *other* GPU's rows
(``fit.choose_shrink``), so no row reported for a GPU influenced its own choice. Sizes are split
by model (hidden size 4096 = 7-8B, 8192 = 70B), never by row.

    python benchmarks/bench_transfer.py            # shipped copies in hermes_opt/data/vidur
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from hermes_opt.calibration import fit
from hermes_opt.calibration import observations as om
from hermes_opt.calibration.observations import ape
from hermes_opt.calibration.predict import model_spec, predict
from hermes_opt.compose import catalog
from sim.cost.roofline import RooflineParams

FILES = {"a100_80g": ["Llama-2-70b-hf", "Meta-Llama-3-70B", "Meta-Llama-3-8B"],
         "h100_sxm": ["Llama-2-70b-hf", "Llama-2-7b-hf"]}


def rows(gpu: str) -> list:
    short = gpu.split("_")[0]
    return [o for m in FILES[gpu] for o in om.load_vidur_compute(
        catalog.DATA_DIR / "vidur" / f"compute__{short}__meta-llama__{m}__mlp.csv") if o.model]


def size_of(o) -> str:
    return "70B" if model_spec(o.model).hidden_size >= 8192 else "7-8B"


def err(test: list, params: RooflineParams) -> list[float]:
    e = ape(predict(test, params), np.asarray([o.measured_s for o in test]))
    return [round(float(np.median(e)), 2), round(float(np.percentile(e, 90)), 2)]


def main() -> None:
    start = time.time()
    data = {gpu: rows(gpu) for gpu in FILES}
    alpha = {}
    for gpu in FILES:
        other = next(g for g in FILES if g != gpu)
        alpha[gpu], scores = fit.choose_shrink(data[other], "operator", RooflineParams(), size_of)
        print(json.dumps({"gpu": gpu, "shrink_chosen_on": other, "shrink": alpha[gpu],
                          "mean_heldout_size_median_ape": {str(a): round(v, 2) for a, v in scores.items()}}))
    for gpu, all_rows in data.items():
        for fit_size in ("7-8B", "70B"):
            train = [o for o in all_rows if size_of(o) == fit_size]
            test = [o for o in all_rows if size_of(o) != fit_size]
            r = fit.fit_rows(train, "operator")
            shrunk = fit.shrink_toward(r.params, RooflineParams(), r.free, alpha[gpu])
            print(json.dumps({"gpu": gpu, "fit": fit_size, "test": "70B" if fit_size == "7-8B" else "7-8B",
                              "n_test": len(test), "roofline": err(test, RooflineParams()),
                              "plain_fit": err(test, r.params),
                              f"shrunk_{alpha[gpu]:g}": err(test, shrunk)}), flush=True)
    print(json.dumps({"wall_s": round(time.time() - start, 1)}), file=sys.stderr)


if __name__ == "__main__":
    main()
