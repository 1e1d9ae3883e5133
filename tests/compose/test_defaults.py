"""Every default in one place: the simulator specs hold the defaults, composition never repeats
them as literals, and the scheduler config group states the shared settings once
(``conf/scheduler_common.yaml``, equal to ``SchedulerSpec``'s defaults), each policy's file only
its own choices."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hermes_opt.compose import catalog, to_sim
from hermes_opt.compose.overrides import hydra_compose
from sim.config import BatchPolicy, SchedulerSpec

COMPOSE = Path(to_sim.__file__).resolve().parent
# what a policy's file may set besides `policy`: its own choice, different from the shared value
OWN_CHOICES = {"chunked": {"chunk_size_tokens"}}


def test_the_shared_scheduler_settings_are_the_spec_defaults():
    common = OmegaConf.load(catalog.CONF_DIR / "scheduler_common.yaml")
    defaults = {f.name: f.default for f in dataclasses.fields(SchedulerSpec)}
    keys = [k for k in common if k != "policy"]
    assert keys and all(common[k] == defaults[k] for k in keys), \
        {k: (common[k], defaults[k]) for k in keys if common[k] != defaults[k]}
    assert set(keys) == set(defaults) - {"policy"}  # every spec field can be overridden


@pytest.mark.parametrize("policy", sorted(p.value for p in BatchPolicy))
def test_a_policy_file_sets_only_its_policy_and_its_own_choices(policy):
    own = OmegaConf.load(catalog.CONF_DIR / "scheduler" / f"{policy}.yaml")
    common = OmegaConf.load(catalog.CONF_DIR / "scheduler_common.yaml")
    assert own.policy == policy and "/scheduler_common@_here_" in own.defaults
    set_here = {k for k in own if k not in ("defaults", "policy")}
    assert set_here == OWN_CHOICES.get(policy, set())
    assert all(own[k] != common[k] for k in set_here)  # a choice, not a repeated default


@pytest.mark.parametrize("policy", sorted(p.value for p in BatchPolicy))
def test_the_composed_scheduler_is_the_spec_unless_the_policy_chooses(policy):
    composed = hydra_compose([f"scheduler={policy}"]).scheduler
    spec = to_sim.scheduler_spec(composed, "scheduler")
    expected = dataclasses.replace(
        SchedulerSpec(policy=BatchPolicy(policy)),
        **{k: composed[k] for k in OWN_CHOICES.get(policy, ())})
    assert spec == expected


def test_composition_holds_no_default_literals():
    """Defaults passed to ``number``/``.get`` in to_sim.py come from the specs
    (``values.spec_default``), never as numbers written again."""
    tree = ast.parse((COMPOSE / "to_sim.py").read_text())
    literals = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.keyword)
                and node.arg == "default" and isinstance(node.value, ast.Constant)
                and node.value.value is not None]
    assert literals == [], f"to_sim.py repeats spec defaults at lines {literals}"


def test_a_missing_key_takes_the_spec_default():
    node = OmegaConf.create({"policy": "chunked", "max_num_seqs": 64, "max_batched_tokens": 4096})
    spec = to_sim.scheduler_spec(node, "scheduler")
    assert spec.chunk_size_tokens == SchedulerSpec().chunk_size_tokens
    assert spec.kv_watermark_fraction == SchedulerSpec().kv_watermark_fraction
