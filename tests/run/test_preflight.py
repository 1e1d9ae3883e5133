"""Preflight (hermes_opt/run/preflight.py): a space key must exist in the sim config, either in
the base scenario or under one of the space's own group choices (``kv_tiers.tiers.remote.*``
exists only when ``kv_tiers=mist_d_remote``)."""

from __future__ import annotations

import pytest

from hermes_opt.run.preflight import check_base
from hermes_opt.study.definition import from_dict
from sim.errors import ConfigError

REMOTE_BW = "kv_tiers.tiers.remote.link.bandwidth_gb_per_s"


def spec(space, base=("workload=kv_shared",)):
    return from_dict({"name": "pre", "base": list(base), "space": space,
                      "objectives": [{"metric": "e2e_ms.p99", "direction": "minimize"}]})


def test_a_key_under_one_group_choice_of_the_space_is_accepted():
    check_base(spec({"kv_tiers": {"choices": ["mist_c_rack_ssd", "mist_d_remote"]},
                     REMOTE_BW: {"choices": [1, 128], "when": {"kv_tiers": "mist_d_remote"}}}))


def test_a_key_under_the_base_choice_is_accepted():
    check_base(spec({REMOTE_BW: {"choices": [1, 128]}},
                    base=("workload=kv_shared", "kv_tiers=mist_d_remote")))


def test_a_key_under_no_choice_is_one_error():
    with pytest.raises(ConfigError, match=rf"^space.{REMOTE_BW}: not a key of the sim config"):
        check_base(spec({"kv_tiers": {"choices": ["mist_a_lpddr", "mist_b_dram"]},
                         REMOTE_BW: {"choices": [1, 128]}}))


def test_a_bad_group_choice_names_the_parameter_and_the_options():
    with pytest.raises(ConfigError, match=r"^space.kv_tiers.choices='mist_z': unknown kv_tiers; "
                                          r"allowed: .*mist_d_remote"):
        check_base(spec({"kv_tiers": {"choices": ["mist_a_lpddr", "mist_z"]},
                         REMOTE_BW: {"choices": [1, 128]}}))
