"""Fallback order of calibration profiles (hermes_opt/compose/profile_select.py), calibration=auto
through the CLI, and a size-transfer guard for the shrunk operator fit. Fast; shipped data only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fakes import subprocess_env

from hermes_opt.calibration import fit
from hermes_opt.calibration.observations import OperatorObservation, ape
from hermes_opt.calibration.predict import predict
from hermes_opt.compose.calibration_profile import Profile
from hermes_opt.compose.profile_select import load_generations, parse_generations, select_profile
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError

GEN = {"h100_sxm": "hopper", "h200": "hopper", "gh200_96g": "hopper", "a100_80g": "ampere",
       "l40s": "ada", "b200": "blackwell", "b300": "blackwell_ultra", "mi300x": "cdna3",
       "tpu_v7": "tpu_v7", "mystery": ""}


def prof(name, hardware, precision="fp8", family="dense"):
    return Profile(name=name, hardware=hardware, engine="e", precision=precision, model_family=family)


def pick(profiles, hardware, precision="fp8", family="dense"):
    return select_profile(profiles, hardware=hardware, precision=precision, family=family,
                          generation_of=GEN.get)


def test_fallback_order_exact_same_generation_adjacent_roofline():
    ps = [prof("p_h100", "h100_sxm"), prof("p_h200", "h200"), prof("p_a100", "a100_80g"),
          prof("p_l40s", "l40s")]
    assert pick(ps, "h100_sxm") == (ps[0], "p_h100 (exact: h100_sxm fp8 dense)")
    chosen, why = pick(ps, "gh200_96g")
    assert chosen.name == "p_h100" and why == "p_h100 (nearest generation: gh200_96g is hopper like h100_sxm)"
    chosen, why = pick(ps[1:], "gh200_96g")
    assert chosen.name == "p_h200" and "gh200_96g is hopper like h200" in why
    chosen, why = pick(ps, "b200")  # blackwell: hopper is adjacent
    assert chosen.name == "p_h100" and "adjacent in the nvidia line" in why
    chosen, _ = pick([prof("p_a100", "a100_80g")], "b200")  # ampere is 3 steps away: too far
    assert chosen is None
    chosen, why = pick(ps, "mi300x")
    assert chosen is None and why.startswith("roofline (no profile for mi300x/fp8/dense; "
                                             "nearest-generation search found none")
    chosen, why = pick(ps, "mystery")  # no generation: exact only
    assert chosen is None and "only an exact match applies" in why
    # precision and family must match at every step
    assert pick(ps, "h100_sxm", precision="bf16")[0] is None
    assert pick(ps, "h100_sxm", family="moe")[0] is None


def test_ties_are_deterministic():
    ps = [prof("z_h200", "h200"), prof("b_h200", "h200"), prof("a_h100", "h100_sxm")]
    for order in (ps, ps[::-1], [ps[1], ps[2], ps[0]]):
        assert pick(order, "gh200_96g")[0].name == "a_h100"  # hardware name, then profile name
        assert pick(order, "h200")[0].name == "b_h200"
    # equal distance: the older generation first (ada before blackwell for hopper hardware)
    older, newer = prof("x_l40s", "l40s"), prof("a_b200", "b200")
    assert pick([newer, older], "h100_sxm")[0].name == "x_l40s"


def test_precision_classes():
    ps = [prof("bf", "h100_sxm", "bf16"), prof("f8", "h100_sxm", "fp8")]
    assert pick(ps, "h100_sxm", "int4") == (
        ps[0], "bf (exact: h100_sxm bf16 dense; weight_dtype int4 uses precision class bf16)")
    assert pick(ps, "h100_sxm", "int8")[0].name == "bf"
    assert pick(ps, "h100_sxm", "nvfp4")[0].name == "f8"
    assert pick(ps, "h100_sxm", "mxfp4")[0].name == "f8"
    chosen, why = pick(ps, "h100_sxm", "fp2")
    assert chosen is None and why.startswith("roofline (no profile for h100_sxm/fp2/dense: weight_dtype")


@pytest.mark.parametrize("data, needle", [
    ([1, 2], "must be a mapping"),
    ({"lines": {"nvidia": "hopper"}}, "lines.nvidia='hopper': must be a non-empty list"),
    ({"lines": {"a": ["x"], "b": ["x"]}}, "generation 'x' is already listed under lines.a"),
    ({"lines": {"a": ["x"]}, "max_distance": -1}, "max_distance=-1"),
    ({"lines": {"a": ["x"]}, "precision_classes": {"int4": "int4"}},
     "precision_classes.int4='int4': allowed: bf16, fp8"),
    ({"lines": {"a": ["x"]}, "colour": 1}, "unknown key(s) ['colour']"),
])
def test_malformed_table_is_one_clear_error(data, needle):
    with pytest.raises(ConfigError) as err:
        parse_generations(data, "gens.yaml")
    assert needle in str(err.value) and str(err.value).startswith("gens.yaml: ")


def test_unknown_generation_name_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"hardware\[h100_sxm\]\.generation='hoper': unknown hardware "
                                          r"generation .*allowed: ampere, ada, hopper"):
        select_profile([prof("p", "a100_80g")], hardware="h100_sxm", precision="fp8", family="dense",
                       generation_of=lambda h: "hoper")


def test_shipped_table_covers_the_catalog_generations():
    from hermes_opt.compose import catalog
    table = load_generations()
    for name in catalog.options("hardware"):
        gen = catalog.entry("hardware", name).get("generation")
        if gen is not None:
            table.position(str(gen), f"hardware[{name}].generation")  # raises if unknown


HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]


@pytest.mark.parametrize("overrides, expected", [
    (["hardware=h100_sxm", "cluster.weight_dtype=fp8", "cluster.kv_dtype=fp8"],
     "trtllm017_fp8_h100 (exact: h100_sxm fp8 dense)"),
    (["hardware=mi300x"], "roofline (no profile for mi300x/bf16/dense; nearest-generation search found none"),
])
def test_calibration_auto_via_cli_records_choice(tmp_path, overrides, expected):
    proc = subprocess.run(HERMES_SIM + ["model=llama3_1_8b", "calibration=auto",
                                        "workload.num_requests=5", *overrides],
                          cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["calibration"]["llm"].startswith(expected)


def test_on_mismatch_nearest_via_cli(tmp_path):
    proc = subprocess.run(HERMES_SIM + ["model=llama3_1_8b", "hardware=h200", "cluster.weight_dtype=fp8",
                                        "cluster.kv_dtype=fp8", "calibration=trtllm017_fp8_l40s",
                                        "cost_model.calibration.on_mismatch=nearest",
                                        "workload.num_requests=5"],
                          cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    used = json.loads(proc.stdout)["calibration"]["llm"]
    assert used.startswith("trtllm017_fp8_h200 (exact: h200 fp8 dense)") and "trtllm017_fp8_l40s not applied" in used


# --- size transfer -------------------------------------------------------------------------
def _ops(model, tps=(1, 2, 4, 8), tokens=(1, 4, 16, 64, 256, 1024, 4096), scale=1.0, extra_s=0.0):
    """Synthetic operator rows from a 'true' device: a small model's kernels carry size-specific
    latency (extra_s) that a per-layer constant fitted on it wrongly carries to a larger model."""
    truth = RooflineParams(compute_efficiency=0.7, memory_efficiency=0.85, layer_overhead_s=30e-6)
    base = [OperatorObservation(source="t", model=model, hardware="h100_sxm", tp=tp, num_tokens=n,
                                measured_s=1.0, raw_model=model) for tp in tps for n in tokens]
    times = predict(base, truth)
    return [OperatorObservation(source="t", model=model, hardware="h100_sxm", tp=o.tp,
                                num_tokens=o.num_tokens, measured_s=float(t * scale + extra_s),
                                raw_model=model) for o, t in zip(base, times)]


def test_small_to_large_transfer_no_worse_than_roofline():
    import numpy as np
    small = _ops("llama2_7b", extra_s=25e-6)  # fitted size
    large = _ops("llama2_70b")  # held out: never seen by the fit
    result = fit.fit_rows(small, "operator", num_starts=3)
    shrunk = fit.shrink_toward(result.params, RooflineParams(), result.free, 0.75)
    measured = np.asarray([o.measured_s for o in large])
    med = lambda p: float(np.median(ape(predict(large, p), measured)))  # noqa: E731
    assert med(shrunk) <= med(RooflineParams()) + 1e-9


def test_shrink_endpoints_and_choice():
    fitted = RooflineParams(compute_efficiency=0.9, layer_overhead_s=80e-6, roofline_sharpness=4.0)
    free = ("compute_efficiency", "layer_overhead_s", "roofline_sharpness")
    assert fit.shrink_toward(fitted, RooflineParams(), free, 1.0) == fitted
    assert fit.shrink_toward(fitted, RooflineParams(), free, 0.0) == RooflineParams()
    half = fit.shrink_toward(fitted, RooflineParams(), free, 0.5)
    assert half.compute_efficiency == pytest.approx(0.75) and half.roofline_sharpness == pytest.approx(8.0)
    rows = _ops("llama2_7b", tps=(1, 2), tokens=(1, 64, 1024)) + _ops("llama2_70b", tps=(1, 2), tokens=(1, 64, 1024))
    alpha, scores = fit.choose_shrink(rows, "operator", RooflineParams(), lambda o: o.model)
    assert alpha in fit.SHRINK_GRID and set(scores) == set(fit.SHRINK_GRID)
