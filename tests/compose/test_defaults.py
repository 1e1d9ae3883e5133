"""Every default in one place: the simulator specs hold the defaults, composition never repeats
them as literals, and the scheduler config group states the shared settings once
(``conf/scheduler_common.yaml``: null = the pool's engine's value, every other value equal to
``SchedulerSpec``'s default), each policy's file only its own choices; the engine's values fill
the nulls (``conf/engine/<name>.yaml``)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hermes_opt.compose import catalog, engines, to_sim
from hermes_opt.compose.overrides import hydra_compose
from sim.config import BatchPolicy, SchedulerSpec

COMPOSE = Path(to_sim.__file__).resolve().parent
# what a policy's file may set besides `policy`: its own choice, different from the shared value
OWN_CHOICES: dict[str, set[str]] = {}


def test_the_shared_scheduler_settings_are_the_spec_defaults():
    common = OmegaConf.load(catalog.CONF_DIR / "scheduler_common.yaml")
    defaults = {f.name: f.default for f in dataclasses.fields(SchedulerSpec)}
    keys = [k for k in common if k != "policy"]
    stated = [k for k in keys if common[k] is not None]  # null: the engine's value
    assert stated and all(common[k] == defaults[k] for k in stated), \
        {k: (common[k], defaults[k]) for k in stated if common[k] != defaults[k]}
    assert set(keys) == set(defaults) - {"policy"}  # every spec field can be overridden


def test_every_null_shared_setting_is_stated_by_every_engine():
    common = OmegaConf.load(catalog.CONF_DIR / "scheduler_common.yaml")
    nulls = {k for k in common if k != "policy" and common[k] is None}
    hardware = catalog.entry("hardware", "h100_sxm")
    for name in catalog.options("engine"):
        engine = engines.resolve(catalog.entry("engine", name), hardware, "bf16", "engine")
        filled = engines.with_engine_defaults(OmegaConf.create({}), engine)
        filled["activation_reserve_fraction"] = filled.pop("activation_reserve_bytes")
        assert nulls <= set(filled), (name, nulls - set(filled))


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
    """Without an engine (CPU, retrieval, embedding pools) a policy's composed scheduler is the
    spec's defaults plus the policy's own choices."""
    composed = hydra_compose([f"scheduler={policy}"]).scheduler
    spec = to_sim.scheduler_spec(composed, "scheduler")
    expected = dataclasses.replace(
        SchedulerSpec(policy=BatchPolicy(policy)),
        **{k: composed[k] for k in OWN_CHOICES.get(policy, ())})
    assert spec == expected


def test_the_engine_fills_what_the_scheduler_group_leaves_null():
    cfg = hydra_compose(["engine=trtllm", "hardware=h200"])
    spec = to_sim.pools(cfg)[0].scheduler
    assert (spec.kv_memory_rule, spec.gpu_memory_utilization, spec.block_size_tokens) == \
        ("free_fraction", 0.9, 32)
    mine = to_sim.pools(hydra_compose(["engine=trtllm", "hardware=h200",
                                       "scheduler.max_num_seqs=77"]))[0].scheduler
    assert mine.max_num_seqs == 77 and spec.max_num_seqs == 2048


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
