"""The registry of batching policies: every ``BatchingStrategy``, and the ``BatchPolicy`` enum
(``scheduler.policy`` values) derived from it."""

from __future__ import annotations

import enum

from sim.scheduling.policies.base import BatchingStrategy
from sim.scheduling.policies.chunked import ChunkedPrefill
from sim.scheduling.policies.continuous import ContinuousBatching
from sim.scheduling.policies.mixed import MixedBatching
from sim.scheduling.policies.prefill_first import PrefillFirst
from sim.scheduling.policies.static import StaticBatching

# The registry: every policy, in the order BatchPolicy lists them.
STRATEGIES: tuple[type[BatchingStrategy], ...] = (
    StaticBatching,
    ContinuousBatching,
    MixedBatching,
    ChunkedPrefill,
    PrefillFirst,
)

BatchPolicy = enum.Enum("BatchPolicy", {cls.name.upper(): cls.name for cls in STRATEGIES},
                        module=__name__, qualname="BatchPolicy")
BatchPolicy.__doc__ = "How a replica batches: the name of a registered ``BatchingStrategy``."

_BY_POLICY: dict[BatchPolicy, BatchingStrategy] = {BatchPolicy(cls.name): cls()
                                                   for cls in STRATEGIES}


def strategy_for(policy: BatchPolicy) -> BatchingStrategy:
    """The (stateless, shared) strategy object of a policy."""
    return _BY_POLICY[policy]


__all__ = ["STRATEGIES", "BatchPolicy", "BatchingStrategy", "strategy_for"]
