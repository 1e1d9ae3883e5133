"""One registry of batching policies, and the names ``sim.config`` re-exports (import cycles and
the policies' own imports are checked in tests/layout)."""

from __future__ import annotations

import pickle

import pytest

import sim
import sim.config
import sim.roles
from sim import BatchPolicy, ConfigError, SchedulerSpec
from sim.scheduling.policies.registry import STRATEGIES, BatchingStrategy, strategy_for


def test_batch_policy_is_derived_from_the_one_registry():
    assert [p.value for p in BatchPolicy] == [cls.name for cls in STRATEGIES] \
        == ["static", "continuous", "mixed", "chunked", "prefill_first"]
    assert [p.name for p in BatchPolicy] == ["STATIC", "CONTINUOUS", "MIXED", "CHUNKED",
                                             "PREFILL_FIRST"]
    assert sim.config.BatchPolicy is BatchPolicy and BatchPolicy("chunked") is BatchPolicy.CHUNKED
    for policy in BatchPolicy:
        strategy = strategy_for(policy)
        assert isinstance(strategy, BatchingStrategy) and strategy.name == policy.value
        assert pickle.loads(pickle.dumps(policy)) is policy
    assert not strategy_for(BatchPolicy.STATIC).interruptible
    assert [strategy_for(p).whole_prompts for p in BatchPolicy] == [True, True, True, False, False]


def test_token_budget_is_the_chunk_size_for_chunked_and_max_batched_tokens_otherwise():
    spec = SchedulerSpec(max_batched_tokens=4096, chunk_size_tokens=768)
    assert [strategy_for(p).token_budget(spec) for p in BatchPolicy] == [4096, 4096, 4096, 768, 768]


@pytest.mark.parametrize("policy,field", [(BatchPolicy.MIXED, "max_batched_tokens"),
                                          (BatchPolicy.CHUNKED, "chunk_size_tokens")],
                         ids=lambda v: getattr(v, "value", v))
def test_decode_sharing_policies_need_a_budget_above_max_num_seqs(policy, field):
    spec = SchedulerSpec(policy=policy, max_num_seqs=64, **{field: 64})
    with pytest.raises(ConfigError) as err:
        spec.validate("scheduler")
    assert str(err.value) == (f"scheduler.{field}=64: must exceed max_num_seqs=64 so every decode "
                              "fits in a step with room for prompt tokens")
    for other in (BatchPolicy.STATIC, BatchPolicy.CONTINUOUS):
        SchedulerSpec(policy=other, max_num_seqs=64, max_batched_tokens=64).validate("scheduler")


def test_config_keeps_re_exporting_the_roles():
    for name in ("PoolRole", "LLM_ROLES", "MODEL_ROLES", "STAGE_ROLES", "ROUTED_POOL"):
        assert getattr(sim.config, name) is getattr(sim.roles, name)


def test_a_policy_that_is_not_a_registered_one_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"scheduler.policy='chunky': allowed: static, continuous"):
        SchedulerSpec(policy="chunky").validate("scheduler")
