"""The shipped Splitwise recipes fit what the shipped profiles were fitted on (Llama2-70B only),
although BLOOM-176B, in the same Splitwise file, is now a catalog model (`--models llama2_70b`)."""

from __future__ import annotations

import pytest

from hermes_opt.calibration import calibrate
from hermes_opt.calibration.recipes import recipe_argv
from hermes_opt.cli.calibrate_command import calibrate_main, parser, request_from
from hermes_opt.compose import calibration_profile as profile
from hermes_opt.compose import catalog
from sim.errors import ConfigError


def test_recipe_refit_gives_the_shipped_profiles_numbers(tmp_path, capsys):
    out = tmp_path / "sw.yaml"
    calibrate_main([*recipe_argv("splitwise_h100_fp16"), "--out", str(out)])
    capsys.readouterr()
    refit = profile.load_path(out)
    assert refit.params == profile.load("splitwise_h100_fp16").params
    filt = next(d for d in refit.provenance["data"] if d["kind"] == "model filter")
    assert filt == {"kind": "model filter", "models": ["llama2_70b"], "left_out": ["bloom_176b"]}


@pytest.mark.parametrize("name", ["splitwise_a100_fp16", "splitwise_h100_fp16", "splitwise_h100_pcap_fp16"])
def test_every_splitwise_recipe_fits_llama2_70b_rows_only(name):
    argv = recipe_argv(name)
    req = request_from(parser().parse_args(argv), argv)
    assert req.models == ("llama2_70b",)
    rows, data, _excluded = calibrate._step_rows(req)
    assert rows and {o.model for o in rows} == {"llama2_70b"}
    # without the filter the BLOOM rows of the same file would be fitted too
    every = calibrate._step_rows(calibrate.Request(name="x", hardware=req.hardware, engine="e",
                                                   variant=req.variant, splitwise=req.splitwise))[0]
    assert {o.model for o in every} == {"llama2_70b", "bloom_176b"}


def test_models_filter_errors_name_the_option():
    with pytest.raises(ConfigError, match="--models: 'gpt5' is not a catalog model; allowed: "):
        calibrate.Request(name="x", hardware="h100_sxm", engine="e", splitwise="s.csv",
                          models=("gpt5",)).validate()
    with pytest.raises(ConfigError, match="--models applies to step data"):
        calibrate.Request(name="x", hardware="h100_sxm", engine="e", serving="s.csv",
                          models=("llama2_70b",)).validate()
    assert "bloom_176b" in catalog.options("model")
