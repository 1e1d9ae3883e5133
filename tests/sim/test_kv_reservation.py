"""KV reservation at admission (``SchedulerSpec.kv_reservation``): 'full_sequence' is TensorRT-LLM's
GUARANTEED_NO_EVICT (a request starts only if its prompt and all its output fit beside every
running request's), 'prompt' vLLM's rule (decode growth may preempt).

Scenario: Llama-3.1-70B on one TP4 H100 replica whose KV holds ~5.7k blocks of 16 tokens, 200
requests of 3000 prompt + 512 output tokens arriving at once (as test_sim_kv_pressure).
"""

from __future__ import annotations

import pytest

from sim import BatchPolicy, ConfigError, SchedulerSpec

PROMPT, OUTPUT, BLOCK, N = 3000, 512, 16, 200


def starved(b, policy, reservation):
    model, hw = b.llama_70b(), b.h100()
    pool = b.make_pool(model=model, tp=4, policy=policy, max_num_seqs=256,
                       max_batched_tokens=8192, chunk_size_tokens=2048, block_size_tokens=BLOCK,
                       kv_reservation=reservation,
                       gpu_memory_utilization=b.utilization_for_blocks(
                           5700, model=model, hardware=hw, tp=4, block_size_tokens=BLOCK))
    return b.make_config(pool=pool, num_requests=N, arrival=b.max_load(), prompt=PROMPT,
                         output=OUTPUT)


@pytest.mark.parametrize("policy", [BatchPolicy.MIXED, BatchPolicy.CHUNKED,
                                    BatchPolicy.PREFILL_FIRST], ids=lambda p: p.value)
def test_full_sequence_never_preempts_and_bounds_the_batch(sim_build, policy):
    """Every admitted request's final blocks fit together (checked at every event by
    ``run_checked``), so decode growth never runs the cache dry: no preemption, and at most
    floor((T - W) / ceil(3512 / 16)) requests run at once; under 'prompt' the same load preempts."""
    run, result = sim_build.run_checked(starved(sim_build, policy, "full_sequence"),
                                        every_event=True)
    rep = run.pools["llm"].replicas[0]
    assert result.summary["requests_completed"] == N
    assert result.summary["preemptions"] == 0
    fit = (rep.total_blocks - rep.watermark) // -(-(PROMPT + OUTPUT) // BLOCK)
    # the most requests holding KV at once, from their admission (first chunk) to their finish
    events = sorted([(r["gen_start_s"], 1) for r in result.requests]
                    + [(r["finish_s"], -1) for r in result.requests])
    live = peak = 0
    for _, step in events:
        live += step
        peak = max(peak, live)
    assert 0 < peak <= fit
    loose = sim_build.run_checked(starved(sim_build, policy, "prompt"))[1].summary
    assert loose["preemptions"] > 0
    # clients beyond what fits wait in the queue: the first token comes later than under 'prompt'
    assert result.summary["ttft_ms"]["mean"] > loose["ttft_ms"]["mean"]


def test_bad_reservation_is_one_config_error():
    with pytest.raises(ConfigError, match=r"llm\.scheduler\.kv_reservation.*allowed: prompt, "
                                          r"full_sequence"):
        SchedulerSpec(kv_reservation="max_utilization").validate("llm.scheduler")


def test_only_colocated_replicas_reserve_whole_sequences(sim_build):
    """A prefill-only replica holds a prompt until its first token and a decode-only one admits
    arrived KV by its own rule: 'full_sequence' applies to colocated replicas only."""
    from array import array

    from sim.cost.factory import build_cost_model
    from sim.engine import Engine
    from sim.metrics.collector import ReplicaStats
    from sim.scheduling.replica import (
        MODE_COLOCATED,
        MODE_DECODE_ONLY,
        MODE_PREFILL_ONLY,
        Replica,
    )

    spec = SchedulerSpec(policy=BatchPolicy.MIXED, kv_reservation="full_sequence")
    cost = build_cost_model(sim_build.make_pool(cost=sim_build.constant_cost(0.01)))
    flags = [Replica(Engine(), "llm/0", cost, spec, 1000, lambda r: None,
                     ReplicaStats(label="llm/0", pool="llm", itl_runs=array("d"), spans=None),
                     mode=mode).reserve_full
             for mode in (MODE_COLOCATED, MODE_PREFILL_ONLY, MODE_DECODE_ONLY)]
    assert flags == [True, False, False]
