"""Prefill first, chunked (SGLang's default schedule): prompt chunks run in prefill-only steps."""

from __future__ import annotations

from sim.scheduling.policies.base import BatchingStrategy
from sim.scheduling.policies.chunked import admit_chunks
from sim.scheduling.policies.contract import ReplicaView


class PrefillFirst(BatchingStrategy):
    """SGLang without ``--enable-mixed-chunk`` (its default): at every step boundary the
    scheduler first forms a prefill batch (``Scheduler.get_next_batch_to_run`` ->
    ``get_new_batch_prefill``): the partial prompt being chunked, then waiting prompts FCFS, cut
    to ``chunked_prefill_size`` tokens (``chunk_size_tokens``); that batch runs alone while the
    decodes wait, and a decode step runs only when there is nothing to prefill. So a prompt of any
    length is served (in chunks, unlike ``continuous``), a new prompt never waits behind decode
    steps, and the decodes' TPOT carries every prefill that arrives while they run (unlike
    ``chunked``, where the chunk shares the decodes' step)."""

    __slots__ = ()
    name = "prefill_first"
    budget_field = "chunk_size_tokens"
    whole_prompts = False

    def next_step(self, replica: ReplicaView) -> None:
        chunks = admit_chunks(replica, replica.token_budget)
        if chunks:
            replica.start_step(chunks, with_decode=False)
        elif replica.num_decoding:
            replica.start_decode_run()
