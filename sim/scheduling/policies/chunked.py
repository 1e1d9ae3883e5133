"""Chunked prefill (Sarathi-Serve): decodes first, then prompt chunks fill the token budget."""

from __future__ import annotations

from sim.request import Request
from sim.scheduling.policies.admission import full_sequence_fits
from sim.scheduling.policies.contract import ReplicaView
from sim.scheduling.policies.mixed import MixedBatching


def admit_chunks(replica: ReplicaView, budget: int,
                 decode_blocks: int | None = None) -> list[tuple[Request, int]]:
    """Chunked prefill: continue partial prefills first, then admit new prompts in chunks.
    Admission reserves the whole prompt's blocks (``sim.scheduling.replica``'s docstring), so
    chunks allocate none. An admitted request stays in ``replica.prefilling`` until its prefill
    completes (``Replica._end_step``) or it is preempted. ``decode_blocks``: the decoders' next
    step's new blocks, if the caller has them."""
    chunks: list[tuple[Request, int]] = []
    prefilling = replica.prefilling
    for req in prefilling:
        if budget <= 0:
            break
        chunk = min(req.prefill_target - req.computed, budget)
        budget -= chunk
        chunks.append((req, chunk))
    waiting = replica.waiting
    if budget <= 0 or not waiting:
        return chunks
    if decode_blocks is None:
        decode_blocks = replica.next_step_blocks()
    free = replica.total_blocks - replica.used_blocks - decode_blocks - replica.watermark
    admitted, max_seqs, bs = replica.admitted, replica.max_seqs, replica.bs
    while budget > 0 and waiting and len(admitted) < max_seqs:
        req = waiting[0]
        need = -(-req.prefill_target // bs)
        if req.samples > 1:
            need += replica.fork_blocks(req)
        chunk = min(req.prefill_target - req.computed, budget)  # cached tokens: no compute
        if need > free or chunk <= 0:
            break
        if replica.reserve_full:
            if not full_sequence_fits(replica, req):
                break
            replica.reserved_full_blocks += replica.full_blocks(req)
        waiting.popleft()
        replica.last_admit_seq += 1  # ``replica.admit(req)``, inlined (with the line above)
        req.admit_seq = seq = replica.last_admit_seq
        admitted[seq] = req
        if req.stage_start_s < 0:
            req.stage_start_s = now = replica.engine.now_s
            if req.gen_start_s < 0:
                req.gen_start_s = now
        prefilling.append(req)
        free -= need
        budget -= chunk
        replica.used_blocks += need
        chunks.append((req, chunk))
    return chunks


class ChunkedPrefill(MixedBatching):
    """Mixed batching whose prompts are split: a step carries every decode, then continues
    partial prefills, then admits new prompts, each with as many tokens as the budget
    (``chunk_size_tokens``, Sarathi's "chunk size") has left. A prompt of any length is served."""

    __slots__ = ()
    name = "chunked"
    budget_field = "chunk_size_tokens"
    whole_prompts = False
    admit = staticmethod(admit_chunks)

    def next_step(self, replica: ReplicaView) -> None:
        """``MixedBatching.next_step`` with the decoders' block check done once, inline."""
        decoders = replica.num_decoding  # admission below does not change it
        blocks = 0
        if decoders:
            blocks = replica.phase_counts[-replica.decode_step % replica.bs]
            if blocks > replica.total_blocks - replica.used_blocks:
                replica.reserve_decode_blocks(1)  # preempts
                return replica.start_next_step()  # the batch changed; plan again
        if not replica.waiting and not replica.prefilling:  # nothing to admit or continue
            if decoders:
                replica.start_decode_run()
            return
        budget = replica.token_budget - decoders
        prefilling = replica.prefilling
        if len(prefilling) == 1 and budget > 0 \
                and prefilling[0].prefill_target - prefilling[0].computed >= budget:
            # a long prompt's middle chunk takes the whole budget: nothing else can be admitted
            # (what ``admit_chunks`` returns here, without the call)
            return replica.start_step([(prefilling[0], budget)], with_decode=decoders > 0)
        chunks = admit_chunks(replica, budget, blocks)
        if chunks:
            replica.start_step(chunks, with_decode=decoders > 0)
        elif decoders:
            replica.start_decode_run()
