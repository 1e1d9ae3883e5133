"""Whole-prompt admission, shared by the static, continuous and mixed policies.

KV admission (module docstring of ``sim.scheduling.replica``): a request is admitted only if all
its prompt's blocks (plus its samples' fork blocks) fit in the free blocks left after the running
decoders' next step, with the watermark still free afterwards; the blocks are reserved here.
"""

from __future__ import annotations

from sim.request import Request
from sim.scheduling.policies.contract import ReplicaView


def full_sequence_fits(replica: ReplicaView, req: Request) -> bool:
    """Under 'full_sequence' reservation (``replica.reserve_full``, ``SchedulerSpec.kv_reservation``:
    TensorRT-LLM's default capacity scheduler, GUARANTEED_NO_EVICT, which schedules a request only
    with the KV it needs to its last token): do ``req``'s final blocks fit beside every running
    request's final blocks, above the watermark? Running requests are then never evicted, and
    clients beyond what fits wait in the queue."""
    return (replica.reserved_full_blocks + replica.full_blocks(req)
            <= replica.total_blocks - replica.watermark)


def admit_whole(replica: ReplicaView, budget: int) -> list[tuple[Request, int]]:
    """FCFS admission of whole prompts; a prompt longer than the budget may run alone.
    Returns the step's ``[(request, prefill tokens)]`` (empty: nothing admitted)."""
    chunks: list[tuple[Request, int]] = []
    free = (replica.total_blocks - replica.used_blocks - replica.next_step_blocks()
            - replica.watermark)
    waiting, admitted, max_seqs = replica.waiting, replica.admitted, replica.max_seqs
    bs = replica.bs
    while waiting and len(admitted) < max_seqs:
        req = waiting[0]
        tokens = req.prefill_target - req.computed  # cached prefix tokens need no compute
        if tokens <= 0 and req.generated:
            break  # its KV arrived from a prefill worker: the decode-only replica admits it
            # itself (``Replica._admit_decoders``), never as a zero-token prompt
        need = -(-req.prefill_target // bs)
        if req.samples > 1:
            need += replica.fork_blocks(req)
        if need > free or (tokens > budget and chunks):
            break
        if replica.reserve_full and not full_sequence_fits(replica, req):
            break
        waiting.popleft()
        free -= need
        budget -= tokens
        replica.admit(req)
        replica.used_blocks += need
        chunks.append((req, tokens))
        if budget <= 0:
            break
    return chunks
