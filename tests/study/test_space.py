"""Search space: parsing errors name the field; conditional parameters; override formatting."""

from __future__ import annotations

import pytest

from hermes_opt.study.space import parse_space, to_overrides
from sim.errors import ConfigError


def test_enumerate_expands_conditional_parameters_only_when_active():
    space = parse_space({
        "scheduler": {"choices": ["continuous", "chunked"]},
        "scheduler.chunk_size_tokens": {"type": "int", "low": 512, "high": 2048, "step": 512,
                                        "when": {"scheduler": "chunked"}},
        "cluster.tp": {"choices": [1, 2]},
    })
    candidates = space.enumerate()
    # continuous: 2 (tp); chunked: 4 chunk sizes x 2 tp
    assert len(candidates) == 2 + 8
    assert all(("scheduler.chunk_size_tokens" in c) == (c["scheduler"] == "chunked")
               for c in candidates)


@pytest.mark.parametrize("node, field", [
    ({"cluster.tp": {"type": "integer", "low": 1, "high": 2}}, "space.cluster.tp.type"),
    ({"cluster.tp": {"type": "int", "low": 4, "high": 2}}, "space.cluster.tp.high"),
    ({"x.y": {"type": "float", "low": 0, "high": 1, "log": True}}, "space.x.y.low"),
    ({"hardware": {"choices": ["h100_sxm", "h900"]}}, "space.hardware.choices"),
    ({"a.b": {"type": "int", "low": 1, "high": 2, "when": {"c.d": 1}}}, "space.a.b.when"),
    ({"a.b": {"type": "int", "low": 1, "high": 2, "bounds": [1, 2]}}, "space.a.b"),
    ({"a.b": {"type": "int", "low": 1.5, "high": 2}}, "space.a.b.low"),
])
def test_malformed_space_is_one_config_error_naming_the_field(node, field):
    with pytest.raises(ConfigError) as err:
        parse_space(node)
    assert str(err.value).startswith(field), str(err.value)


def test_overrides_round_trip_through_hydras_grammar():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    params = {"cluster.tp": 2, "workload.arrival.rate_per_s": 12.5, "hardware": "h200",
              "x.flag": True, "x.small": 1e-05}
    parser = OverridesParser.create()
    parsed = {o.key_or_group: o.value() for o in parser.parse_overrides(to_overrides(params))}
    assert parsed == params
    assert all(type(parsed[k]) is type(v) for k, v in params.items())


def test_a_string_choice_the_override_grammar_cannot_read_bare_is_quoted():
    """'a<b' bare is a grammar error: every trial proposing it failed at run time."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from hermes_opt.study.space import to_overrides
    parser = OverridesParser.create()
    for value in ("a<b", "it's <ok>", "plain_name", "x y"):
        (override,) = to_overrides({"k": value})
        assert parser.parse_override(override).value() == value
    assert to_overrides({"k": "plain_name", "n": 2, "f": 0.5, "b": True}) == [
        "k=plain_name", "n=2", "f=0.5", "b=true"]


def test_every_trial_of_a_study_with_such_a_choice_runs(fake_spec):
    from hermes_opt.run.runner import run_study
    spec = fake_spec(space={"hardware": {"choices": ["h100_sxm"]},
                            "fake.tag": {"choices": ["a<b", "c>d"]}},
                     n_trials=4, replicates=1)
    study, _ = run_study(spec, progress_stream=None)
    results = [t.user_attrs["result"] for t in study.trials]
    assert all(r["status"] != "error" for r in results), results
    assert {o for r in results for o in r["overrides"] if o.startswith("fake.tag=")} <= {
        "fake.tag='a<b'", "fake.tag='c>d'"}
