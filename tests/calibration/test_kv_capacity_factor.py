"""A profile's measured KV share (``kv_capacity_factor``): validated, applied to the scheduler of
the pools the profile is applied to by name, recorded in the deployment record, 1 otherwise."""

from __future__ import annotations

import dataclasses

import pytest

from hermes_opt.compose import calibration_profile as profile
from hermes_opt.compose import candidate as candidate_mod
from hermes_opt.compose import catalog
from hermes_opt.compose.calibration_profile import Holdout, Profile
from sim.errors import ConfigError

BASE = ["hardware=l40s", "model=llama3_1_8b", "engine=vllm", "workload.num_requests=20"]


def test_the_factor_scales_the_kv_blocks_and_is_validated():
    pool = candidate_mod.compose(BASE).config.pools[0]
    blocks = pool.kv_capacity_blocks()
    half = dataclasses.replace(pool, scheduler=dataclasses.replace(pool.scheduler,
                                                                   kv_capacity_factor=0.5))
    assert half.kv_capacity_blocks() == int(blocks * 0.5)
    for bad in (0.0, -1.0, 1.6, float("nan")):
        with pytest.raises(ConfigError, match="kv_capacity_factor"):
            dataclasses.replace(pool.scheduler, kv_capacity_factor=bad).validate("scheduler")


def test_a_profile_out_of_range_is_one_line():
    with pytest.raises(ConfigError, match=r"calibration\[p\].kv_capacity_factor=2.0: must be a "
                                          r"number in \(0, 1.5\]"):
        Profile(name="p", hardware="l40s", engine="e", precision="bf16", kv_capacity_factor=2.0)


def test_applied_by_name_it_reaches_the_scheduler_and_the_record(tmp_path, monkeypatch):
    root = tmp_path / "catalog"
    (root / "calibration").mkdir(parents=True)
    monkeypatch.setenv(catalog.USER_ROOT_ENV, str(root))
    pool = candidate_mod.compose(BASE).config.pools[0]
    mine = Profile(name="mine", hardware="l40s", engine=pool.engine, precision="bf16",
                   params=pool.cost_model.roofline, kv_capacity_factor=0.6,
                   holdout=Holdout(every=0))
    (root / "calibration" / "mine.yaml").write_text(mine.to_yaml())
    assert profile.load("mine").kv_capacity_factor == 0.6
    calibrated = candidate_mod.compose(BASE + ["calibration=mine"])
    assert calibrated.config.pools[0].scheduler.kv_capacity_factor == 0.6
    assert calibrated.deployment["pools"][0]["scheduler"]["kv_capacity_factor"] == 0.6
    # the engine's own efficiencies (the default) keep the documented rule, and say nothing
    default = candidate_mod.compose(BASE)
    assert default.config.pools[0].scheduler.kv_capacity_factor == 1.0
    assert "kv_capacity_factor" not in default.deployment["pools"][0]["scheduler"]
    assert profile.kv_capacity_factor({"name": "other", "kv_capacity_factor": 0.6}, "mine") == 1.0
