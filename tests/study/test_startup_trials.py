"""``n_startup_trials``: TPE's random start-up trials, part of what a study computes."""

from __future__ import annotations

import math

import pytest

from hermes_opt.study import definition as study
from hermes_opt.study.sampling import make_sampler
from sim.errors import ConfigError


def spec(**raw):
    return study.from_dict({"name": "startup", "batch_size": 8, **raw})


def test_default_is_max_of_ten_and_the_batch():
    s = spec()
    assert s.n_startup_trials is None
    assert make_sampler(s, 0, "tpe")._n_startup_trials == 10
    assert make_sampler(spec(batch_size=16), 0, "tpe")._n_startup_trials == 16


def test_a_set_value_reaches_tpe_and_changes_the_config_hash():
    s = spec(n_startup_trials=48)
    assert make_sampler(s, 0, "tpe")._n_startup_trials == 48
    assert s.config_hash != spec().config_hash  # a resumed study cannot silently switch it
    assert study.from_dict(study.to_raw(s)).n_startup_trials == 48


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "many", math.nan, 10**9])
def test_bad_values_are_one_config_error(bad):
    with pytest.raises(ConfigError, match="n_startup_trials"):
        spec(n_startup_trials=bad)
