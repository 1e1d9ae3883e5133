"""Disaggregated serving at a worker's granularity: decode admission waits (sequence slots, KV
blocks), TTFT as the client sees it per engine rule, the KV path per prefill worker (scale-up
domain or NICs) and the prefill router's choice."""

from __future__ import annotations

import dataclasses

import pytest

from sim import (
    ArrivalKind,
    ArrivalSpec,
    LengthKind,
    LengthSpec,
    PoolSpec,
    RequestTypeSpec,
    RouterPolicy,
    SchedulerSpec,
    SimConfig,
    Stage,
    StageKind,
    WorkloadSpec,
    simulate,
)
from sim.config import BatchPolicy, CostModelKind, CostModelSpec, PoolRole
from sim.pipeline.disaggregation import NIC_BYTES_PER_S_PER_DEVICE, handoff_path
from sim.pipeline.specs import FirstToken, LinkSpec

STEP_S = 0.01  # every step of either pool takes 10 ms (constant cost): times are exact


def _pool(sim_build, name, role, *, replicas=1, hardware=None, first=FirstToken.DECODE_ADMIT,
          tp=1, **scheduler):
    return PoolSpec(name=name, model=sim_build.llama_8b(), hardware=hardware or sim_build.h100(),
                    num_replicas=replicas, tp=tp, role=role, first_token=first,
                    router=RouterPolicy.ROUND_ROBIN,
                    scheduler=SchedulerSpec(policy=BatchPolicy.CONTINUOUS, **scheduler),
                    cost_model=CostModelSpec(kind=CostModelKind.CONSTANT, constant_step_s=STEP_S))


def _config(prefill, decode, *, n=2, output=10, prompt=1024, links=()):
    plan = (Stage(kind=StageKind.PREFILL, pool=prefill.name),
            Stage(kind=StageKind.DECODE, pool=decode.name))
    rt = RequestTypeSpec(name="chat", plan=plan, prompt_tokens=_fixed(prompt),
                         output_tokens=_fixed(output))
    return SimConfig(pools=(prefill, decode), links=links, record_requests=True,
                     workload=WorkloadSpec(num_requests=n, request_types=(rt,),
                                           arrival=ArrivalSpec(kind=ArrivalKind.MAX_LOAD)))


def _fixed(n):
    return LengthSpec(kind=LengthKind.FIXED, mean=n)


def _rows(config):
    return sorted(simulate(config, 0).requests, key=lambda r: r["first_token_s"])


def test_a_handed_off_request_waits_for_a_decode_slot_and_ttft_includes_the_wait(sim_build):
    prefill = _pool(sim_build, "p", PoolRole.PREFILL, max_num_seqs=8)
    decode = _pool(sim_build, "d", PoolRole.DECODE, max_num_seqs=1)
    first, second = _rows(_config(prefill, decode))
    # one decode slot: the second request is admitted only when the first has finished
    assert second["first_token_s"] >= first["finish_s"]
    roomy = _pool(sim_build, "d", PoolRole.DECODE, max_num_seqs=8)
    both = _rows(_config(prefill, roomy))
    assert both[1]["first_token_s"] < both[0]["finish_s"]  # no wait when the slot is free
    assert second["ttft_ms"] - both[1]["ttft_ms"] >= (10 - 1) * STEP_S * 1e3 - 1e-6


def test_a_handed_off_request_waits_for_kv_blocks(sim_build):
    prefill = _pool(sim_build, "p", PoolRole.PREFILL)
    # 100 blocks of 16 tokens: room for one 1024-token prompt (64 blocks + growth), not two
    util = sim_build.utilization_for_blocks(100)
    decode = _pool(sim_build, "d", PoolRole.DECODE, max_num_seqs=8, gpu_memory_utilization=util)
    first, second = _rows(_config(prefill, decode))
    assert second["first_token_s"] >= first["finish_s"]  # never over-admitted


def test_first_token_rules_stamp_prefill_admission_or_the_decode_step(sim_build):
    prefill = _pool(sim_build, "p", PoolRole.PREFILL)
    link = LinkSpec(name="pd", src_pool="p", dst_pool="d", bandwidth_bytes_per_s=10e9,
                    latency_s=1e-4)
    rows = {}
    for rule in FirstToken:
        decode = _pool(sim_build, "d", PoolRole.DECODE, first=rule)
        rows[rule] = _rows(_config(prefill, decode, n=1, links=(link,)))[0]
    kv = 1024 * sim_build.llama_8b().kv_bytes_per_token(prefill.kv_dtype)
    transfer_s = 1e-4 + kv / 10e9
    at = {rule: row["first_token_s"] for rule, row in rows.items()}
    assert at[FirstToken.PREFILL] == pytest.approx(STEP_S)  # one prefill step
    assert at[FirstToken.DECODE_ADMIT] - at[FirstToken.PREFILL] == pytest.approx(transfer_s)
    assert at[FirstToken.DECODE_STEP] - at[FirstToken.DECODE_ADMIT] == pytest.approx(STEP_S)
    # decode_step: the decode worker samples all 10 tokens (10 steps); else 9 after the prefill's
    finish = {rule: row["finish_s"] for rule, row in rows.items()}
    assert finish[FirstToken.DECODE_STEP] - at[FirstToken.DECODE_ADMIT] == pytest.approx(10 * STEP_S)
    assert finish[FirstToken.DECODE_ADMIT] - at[FirstToken.DECODE_ADMIT] == pytest.approx(9 * STEP_S)
    assert all(row["output_tokens"] == 10 for row in rows.values())


def test_the_kv_path_is_nvlink_within_a_scaleup_domain_and_the_nics_across(sim_build):
    hgx = dataclasses.replace(sim_build.h100(), scaleup_domain_devices=8,
                              scaleout_bw_bytes_per_s=50e9)
    near = handoff_path(_pool(sim_build, "p", PoolRole.PREFILL, hardware=hgx, replicas=2, tp=2),
                        _pool(sim_build, "d", PoolRole.DECODE, hardware=hgx, replicas=1, tp=4))
    assert near[0] == "scaleup" and near[1] == pytest.approx(2 * 450e9)  # the worker's 2 GPUs
    far = handoff_path(_pool(sim_build, "p", PoolRole.PREFILL, hardware=hgx, replicas=2, tp=2),
                       _pool(sim_build, "d", PoolRole.DECODE, hardware=hgx, replicas=2, tp=4))
    assert far[0] == "nic" and far[1] == pytest.approx(2 * 50e9)  # 4 + 8 devices: two nodes
    unbounded = dataclasses.replace(sim_build.h100(), scaleup_domain_devices=0)
    default = handoff_path(_pool(sim_build, "p", PoolRole.PREFILL, hardware=unbounded),
                           _pool(sim_build, "d", PoolRole.DECODE, hardware=unbounded))
    assert default == ("nic", NIC_BYTES_PER_S_PER_DEVICE, pytest.approx(10e-6))


def test_each_prefill_worker_sends_on_its_own_path_and_the_router_spreads_the_work(sim_build):
    # two prefill workers, round robin: two simultaneous hand-offs leave from different workers
    # and each has its link to itself; one configured link of the same bandwidth is shared
    prefill = _pool(sim_build, "p", PoolRole.PREFILL, replicas=2)
    decode = _pool(sim_build, "d", PoolRole.DECODE, max_num_seqs=8)
    own = simulate(_config(prefill, decode), 0).summary["links"]["p->d"]
    kv = 1024 * sim_build.llama_8b().kv_bytes_per_token(prefill.kv_dtype)
    solo_ms = (10e-6 + kv / NIC_BYTES_PER_S_PER_DEVICE) * 1e3
    assert own["mean_transfer_ms"] == pytest.approx(solo_ms, rel=1e-6)
    shared = LinkSpec(name="p->d", src_pool="p", dst_pool="d",
                      bandwidth_bytes_per_s=NIC_BYTES_PER_S_PER_DEVICE, latency_s=10e-6)
    both = simulate(_config(prefill, decode, links=(shared,)), 0).summary["links"]["p->d"]
    assert both["mean_transfer_ms"] == pytest.approx(10e-3 + 2 * (solo_ms - 10e-3), rel=1e-6)


@pytest.mark.parametrize("rule", list(FirstToken))
def test_kv_blocks_are_conserved_on_a_full_decode_worker_under_every_rule(sim_build, rule):
    # a decode worker with room for ~3 requests' KV: admissions wait, decode growth preempts;
    # blocks are conserved at every event and every request completes, its first token before
    # its last and, when the decode worker samples it, its KV one prompt token short at admission
    prefill = _pool(sim_build, "p", PoolRole.PREFILL, replicas=2)
    util = sim_build.utilization_for_blocks(200)
    decode = _pool(sim_build, "d", PoolRole.DECODE, first=rule, max_num_seqs=8,
                   gpu_memory_utilization=util, block_size_tokens=16)
    config = _config(prefill, decode, n=40, output=300, prompt=700)
    run, result = sim_build.run_checked(config, every_event=True)
    assert run.num_busy_checks > 0
    rows = result.requests
    assert len(rows) == 40 and all(r["first_token_s"] <= r["finish_s"] for r in rows)
    assert result.summary["pools"]["d"]["preemptions"] > 0  # the case this test is about
