"""The replica keeps the batching strategies' contract (``sim.scheduling.policies.contract``).

* A real replica, built by a simulation run for every policy, provides every ``ReplicaView``
  member: ``isinstance`` against the runtime-checkable protocol, and each method with the
  protocol's parameters.
* The policies use nothing else at run time: driving each one through a view that lets through
  only ``ReplicaView``'s members gives the very same result, under KV pressure (preemptions
  included). ``tests/layout/test_boundaries.py`` checks the same on the source.
"""

from __future__ import annotations

import inspect

import pytest

from sim import BatchPolicy, simulate
from sim.scheduling.policies.contract import ReplicaView
from sim.scheduling.policies.registry import STRATEGIES
from sim.simulation import _Run

MEMBERS = set(ReplicaView.__annotations__) | {
    name for name, value in vars(ReplicaView).items()
    if inspect.isfunction(value) and not name.startswith("_")}
METHODS = {name for name in MEMBERS if inspect.isfunction(vars(ReplicaView).get(name))}


def _config(b, policy: BatchPolicy):
    """A small run under KV pressure: 300 blocks for prompts of up to 1500 tokens."""
    pool = b.make_pool(policy=policy, num_replicas=2, max_num_seqs=32, max_batched_tokens=4096,
                       chunk_size_tokens=512, gpu_memory_utilization=b.utilization_for_blocks(300))
    return b.make_config(pool=pool, num_requests=150, arrival=b.poisson(20.0),
                         prompt=b.uniform(200, 1500), output=b.uniform(20, 400))


@pytest.mark.parametrize("policy", list(BatchPolicy), ids=lambda p: p.value)
def test_a_real_replica_provides_every_member_of_the_view(sim_build, policy):
    run = _Run(_config(sim_build, policy), 0)
    replicas = run.pools["llm"].replicas
    assert replicas
    for replica in replicas:
        assert isinstance(replica, ReplicaView)
        missing = sorted(m for m in MEMBERS if not hasattr(replica, m))
        assert not missing, missing
        for name in METHODS:
            want = list(inspect.signature(vars(ReplicaView)[name]).parameters.values())[1:]
            have = list(inspect.signature(getattr(replica, name)).parameters.values())
            assert [(p.name, p.kind) for p in have] == [(p.name, p.kind) for p in want], name
        for name in MEMBERS - METHODS:
            assert not callable(getattr(replica, name)), name
    assert not any(m.startswith("_") for m in MEMBERS)


class _OnlyTheView:
    """A replica seen through ``ReplicaView``: any other attribute is an error."""

    __slots__ = ("_replica",)

    def __init__(self, replica) -> None:
        object.__setattr__(self, "_replica", replica)

    def __getattr__(self, name: str):
        assert name in MEMBERS, f"a policy read replica.{name}, which ReplicaView does not list"
        return getattr(self._replica, name)

    def __setattr__(self, name: str, value) -> None:
        assert name in MEMBERS, f"a policy set replica.{name}, which ReplicaView does not list"
        setattr(self._replica, name, value)


@pytest.mark.parametrize("policy", list(BatchPolicy), ids=lambda p: p.value)
def test_policies_use_only_the_view_at_run_time(sim_build, monkeypatch, policy):
    cfg = _config(sim_build, policy)
    plain = simulate(cfg, 1)
    for cls in STRATEGIES:
        original = cls.next_step
        monkeypatch.setattr(cls, "next_step",
                            lambda self, replica, _f=original: _f(self, _OnlyTheView(replica)))
    viewed = simulate(cfg, 1)
    assert viewed.summary == plain.summary
    assert viewed.requests == plain.requests
    assert plain.summary["requests_completed"] == 150


def test_the_runs_above_preempt(sim_build):
    """The contract runs cover the preemption path (``reserve_decode_blocks``)."""
    summary = simulate(_config(sim_build, BatchPolicy.MIXED), 1).summary
    assert summary["preemptions"] > 0
