"""Static batching: a batch forms when the replica is idle and runs until every member ends."""

from __future__ import annotations

from sim.scheduling.policies.admission import admit_whole
from sim.scheduling.policies.base import BatchingStrategy
from sim.scheduling.policies.contract import ReplicaView


class StaticBatching(BatchingStrategy):
    """Request-level batching (FasterTransformer-style): whole prompts are admitted only into an
    empty replica, prefilled in one step, then decoded together until the last one finishes.
    Nothing joins a running batch, so arrivals never interrupt its decode run."""

    __slots__ = ()
    name = "static"
    interruptible = False

    def next_step(self, replica: ReplicaView) -> None:
        if replica.admitted:
            replica.start_decode_run()
        else:
            replica.start_step(admit_whole(replica, replica.token_budget), with_decode=False)
