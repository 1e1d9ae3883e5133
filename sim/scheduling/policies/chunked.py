"""Chunked prefill (Sarathi-Serve): decodes first, then prompt chunks fill the token budget."""

from __future__ import annotations

from sim.request import Request
from sim.scheduling.policies.mixed import MixedBatching


def admit_chunks(replica, budget: int) -> list[tuple[Request, int]]:
    """Chunked prefill: continue partial prefills first, then admit new prompts in chunks.
    Admission reserves the whole prompt's blocks (``sim.scheduling.replica``'s docstring), so
    chunks allocate none. An admitted request stays in ``replica.prefilling`` until its prefill
    completes (``Replica._end_step``) or it is preempted."""
    chunks: list[tuple[Request, int]] = []
    prefilling = replica.prefilling
    for req in prefilling:
        if budget <= 0:
            break
        chunk = min(req.prefill_target - req.computed, budget)
        budget -= chunk
        chunks.append((req, chunk))
    free = (replica.total_blocks - replica.used_blocks - replica._decode_blocks_needed(1)
            - replica.watermark)
    waiting, admitted, max_seqs = replica.waiting, replica.admitted, replica.max_seqs
    while budget > 0 and waiting and len(admitted) < max_seqs:
        req = waiting[0]
        need = replica._prompt_blocks(req)
        chunk = min(req.prefill_target - req.computed, budget)  # cached tokens: no compute
        if need > free or chunk <= 0:
            break
        waiting.popleft()
        replica._admit(req)
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
