"""Calibration profiles: shipped ones load and carry provenance; `calibration=<name>` replaces the
roofline parameters for matching pools, and a mismatch is one clear error or a recorded fallback."""

from __future__ import annotations

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from hermes_opt.compose import calibration_profile as profile
from hermes_opt.compose import catalog, to_sim
from hermes_opt.compose.calibration_profile import Holdout
from sim import simulate
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError

SHIPPED = profile.profile_names()


def sim_config(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="hermes_opt.conf", version_base="1.3"):
        cfg = hydra_compose(config_name="sim", overrides=["workload.num_requests=40", *overrides])
    GlobalHydra.instance().clear()
    return to_sim.sim_config(cfg)


def test_every_shipped_profile_loads_with_provenance_and_errors():
    assert {"splitwise_h100_fp16", "splitwise_a100_fp16", "vidur_h100_fp16"} <= set(SHIPPED)
    for name in SHIPPED:
        p = profile.load(name)
        assert p.hardware in catalog.options("hardware")
        prov = p.provenance
        for key in ("data", "fitted_at", "command", "split", "fit_error_pct", "heldout_error_pct",
                    "uncalibrated_heldout_error_pct", "fitted_params"):
            assert key in prov, (name, key)
        assert prov["heldout_error_pct"], name  # every shipped profile was tested on held-out rows
        assert p.params != RooflineParams()


def test_profile_yaml_round_trips(tmp_path):
    p = profile.Profile(name="x", hardware="h100_sxm", engine="e", precision="fp8",
                        params=RooflineParams(step_overhead_s=0.004, seq_overhead_s=1e-4),
                        holdout=Holdout(batch=(2, 8)), provenance={"split": "s"})
    path = tmp_path / "x.yaml"
    path.write_text(p.to_yaml())
    back = profile.load_path(path)
    assert back.params == p.params and back.holdout == p.holdout and back.precision == "fp8"
    assert path.read_text().startswith("# @package cost_model.calibration")


def test_selected_profile_replaces_roofline_params_and_is_recorded():
    plain = sim_config("model=llama2_70b", "hardware=h100_sxm", "cluster.tp=4", "calibration=none")
    cal = sim_config("model=llama2_70b", "hardware=h100_sxm", "cluster.tp=4",
                     "calibration=splitwise_h100_fp16")
    spec = cal.pools[0].cost_model
    assert spec.calibration == "splitwise_h100_fp16"
    assert spec.roofline == profile.load("splitwise_h100_fp16").params
    assert plain.pools[0].cost_model.calibration == "" and plain.pools[0].cost_model.roofline == RooflineParams()
    # it changes what the simulator predicts
    assert simulate(cal, 0).summary["ttft_ms"]["mean"] != simulate(plain, 0).summary["ttft_ms"]["mean"]


def test_profile_composes_with_another_model_of_the_family():
    cfg = sim_config("model=llama3_1_70b", "hardware=h100_sxm", "cluster.tp=8",
                     "calibration=splitwise_h100_fp16")
    assert cfg.pools[0].cost_model.calibration == "splitwise_h100_fp16"


def test_hardware_mismatch_is_one_clear_error():
    with pytest.raises(ConfigError) as err:
        sim_config("hardware=a100_80g", "calibration=splitwise_h100_fp16")
    msg = str(err.value)
    assert "calibration='splitwise_h100_fp16'" in msg and "'h100_sxm'" in msg and "'a100_80g'" in msg
    assert "\n" not in msg


def test_precision_mismatch_is_an_error():
    with pytest.raises(ConfigError, match="precision 'bf16'.*weight_dtype is 'fp8'"):
        sim_config("hardware=h100_sxm", "cluster.weight_dtype=fp8", "calibration=splitwise_h100_fp16")


def test_on_mismatch_roofline_falls_back_and_says_why():
    cfg = sim_config("hardware=a100_80g", "calibration=splitwise_h100_fp16",
                     "cost_model.calibration.on_mismatch=roofline")
    spec = cfg.pools[0].cost_model
    assert spec.roofline == RooflineParams()
    assert spec.calibration.startswith("none (profile splitwise_h100_fp16 not applied")


def test_calibration_needs_the_roofline_cost_model():
    with pytest.raises(ConfigError, match="calibrates cost_model=roofline"):
        sim_config("cost_model=constant", "calibration=splitwise_h100_fp16")


def test_non_llm_pools_are_left_uncalibrated_with_a_note():
    from omegaconf import OmegaConf
    node = OmegaConf.create({"kind": "roofline", "calibration": profile_mapping("splitwise_h100_fp16")})
    spec = to_sim.cost_model_spec(node, {"tp": 1, "hardware": "xeon_6980p", "role": "cpu",
                                          "field": "cluster.pools.cpu"})
    assert spec.roofline == RooflineParams() and spec.calibration.startswith("none (role cpu")
    llm = to_sim.cost_model_spec(node, {"tp": 4, "hardware": "h100_sxm", "role": "colocated",
                                         "weight_dtype": "bf16", "field": "cluster"})
    assert llm.calibration == "splitwise_h100_fp16"


def profile_mapping(name: str) -> dict:
    import yaml
    return yaml.safe_load((catalog.CONF_DIR / "calibration" / f"{name}.yaml").read_text())
