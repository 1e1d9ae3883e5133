"""Mixed batching: decodes and whole new prompts in one step under the token budget."""

from __future__ import annotations

from sim.errors import require
from sim.scheduling.policies.admission import admit_whole
from sim.scheduling.policies.base import BatchingStrategy
from sim.scheduling.policies.contract import ReplicaView


class MixedBatching(BatchingStrategy):
    """Every step carries every decode (one token each), then whole prompts admitted FCFS in what
    is left of the token budget. ``ChunkedPrefill`` is this with prompts split into chunks."""

    __slots__ = ()
    name = "mixed"
    # ``admit(replica, budget) -> [(request, tokens)]``: fills the budget the decodes leave.
    admit = staticmethod(admit_whole)

    def validate(self, spec, prefix: str) -> None:
        budget = self.token_budget(spec)
        require(budget > spec.max_num_seqs, f"{prefix}.{self.budget_field}", budget,
                f"must exceed max_num_seqs={spec.max_num_seqs} so every decode fits in a step "
                f"with room for prompt tokens")

    def next_step(self, replica: ReplicaView) -> None:
        decoders = replica.num_decoding  # admission below does not change it
        if decoders and not replica.reserve_decode_blocks(1):
            return replica.start_next_step()  # a preemption changed the batch; plan again
        chunks = self.admit(replica, replica.token_budget - decoders)
        if chunks:
            replica.start_step(chunks, with_decode=decoders > 0)
        elif decoders:
            replica.start_decode_run()
