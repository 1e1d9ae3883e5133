"""Study definitions: loading, command-line overrides, validation, stored round trip."""

from __future__ import annotations

import pytest

from hermes_opt.study import definition as study
from sim.errors import ConfigError


def test_default_study_loads_and_is_single_objective_tpe():
    spec = study.load("default")
    assert spec.name == "default"
    assert spec.objectives[0].metric == "slo_tokens_per_usd"
    assert spec.resolved_sampler == "tpe"
    assert spec.storage_url() == "sqlite:///runs/default/study.db"
    assert {"hardware", "cluster.tp", "cluster.num_replicas"} <= set(spec.space.names)


def test_unknown_study_lists_available():
    with pytest.raises(ConfigError, match=r"^study='nope': unknown study; available: .*default"):
        study.load("nope")


def test_overrides_split_into_study_fields_and_sim_overrides():
    spec = study.load("default", ["n_trials=5", "seed=7", "workload.arrival.rate_per_s=20",
                                  "pricing=neocloud_2026_09", "space.cluster.num_replicas.high=3"])
    assert (spec.n_trials, spec.seed) == (5, 7)
    assert {"workload.arrival.rate_per_s=20", "pricing=neocloud_2026_09"} <= set(spec.base)
    keys = [b.split("=")[0] for b in spec.base]
    assert len(keys) == len(set(keys)) == len(study.load("default").base)  # replaced in place
    replicas = next(p for p in spec.space.parameters if p.name == "cluster.num_replicas")
    assert replicas.high == 3


def test_config_hash_ignores_run_settings_but_not_the_problem():
    a = study.load("default")
    assert study.load("default", ["n_trials=999", "n_jobs=1"]).config_hash == a.config_hash
    assert study.load("default", ["seed=1"]).config_hash != a.config_hash
    assert study.load("default", ["workload.arrival.rate_per_s=3"]).config_hash != a.config_hash


def test_round_trip_through_stored_form(fake_spec):
    spec = fake_spec(objectives=[{"metric": "slo_tokens_per_usd"},
                                 {"metric": "ttft_ms.p99", "direction": "minimize"}])
    again = study.from_dict(study.to_raw(spec))
    assert again == spec


@pytest.mark.parametrize("change, message", [
    ({"objectives": [{"metric": "tokens_per_banana"}]}, r"^objectives.metric='tokens_per_banana'"),
    ({"objectives": [{"metric": "ttft_ms.p99", "direction": "up"}]}, r"direction='up'"),
    ({"sampler": "cmaes"}, r"^sampler='cmaes'"),
    ({"sampler": "nsga2"}, r"^sampler='nsga2': nsga2 is for multi-objective"),
    ({"n_trials": 0}, r"^n_trials=0"),
    ({"batches_in_flight": 3}, r"^batches_in_flight=3: must be 1 or 2"),
    ({"budget": {"max_dollars": 3}}, r"^budget="),
    ({"bogus": 1}, r"^study=\['bogus'\]: unknown fields"),
    ({"base": ["cluster.tp=2"]}, r"also a search parameter"),
])
def test_bad_study_fields_are_one_line_errors(fake_spec, change, message):
    with pytest.raises(ConfigError, match=message):
        fake_spec(**change)


def test_malformed_yaml_file_is_config_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("space: {hardware: [unclosed\n")
    with pytest.raises(ConfigError, match="not a valid YAML file"):
        study.load(str(path))
