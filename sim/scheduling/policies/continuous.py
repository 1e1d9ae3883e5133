"""Continuous (iteration-level) batching: prefill-only steps take priority over decode."""

from __future__ import annotations

from sim.scheduling.policies.admission import admit_whole
from sim.scheduling.policies.base import BatchingStrategy
from sim.scheduling.policies.contract import ReplicaView


class ContinuousBatching(BatchingStrategy):
    """Orca / vLLM V0 default: at every step boundary, admit whole prompts (FCFS, up to the token
    budget) and run them as a prefill-only step, the decoders waiting; with nothing to admit,
    decode. An arrival that could join interrupts a decode run at the next step boundary."""

    __slots__ = ()
    name = "continuous"

    def next_step(self, replica: ReplicaView) -> None:
        chunks = admit_whole(replica, replica.token_budget)
        if chunks:
            replica.start_step(chunks, with_decode=False)
        elif replica.num_decoding:
            replica.start_decode_run()
