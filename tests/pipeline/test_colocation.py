"""A non-LLM stage placed on the LLM pool's GPUs (``sim.pipeline.colocation``): it costs the LLM
KV memory (its weights come out of the KV cache) and step time (its batches delay the LLM's next
step), and no devices of its own; and the batch timeout of non-LLM pools."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pipeline_builders import hw, model

from sim import PoolRole, PoolSpec, SchedulerSpec, simulate
from sim.errors import ConfigError
from sim.hardware.memory import weight_bytes_per_device
from sim.pipeline import colocation


def _reward(**kw) -> PoolSpec:
    return PoolSpec(name="reward", model=model("reward_8b"), hardware=hw("h100_sxm"),
                    role=PoolRole.REWARD, **kw)


def test_apply_reserves_the_guests_weights_and_shrinks_the_kv_cache(b):
    llm = b.llm_pool(replicas=2, tp=2)
    pools = colocation.apply((llm, _reward(colocate_with="llm")))
    host, guest = pools
    per_device = weight_bytes_per_device(model("reward_8b"), 2, 1, guest.weight_dtype)
    assert host.reserved_bytes_per_device == pytest.approx(per_device)
    assert (guest.num_replicas, guest.tp, guest.hardware.name) == (2, 2, "h100_sxm")
    assert guest.num_devices == 0 and guest.num_accelerators == 0  # it owns no device
    kv_per_block = llm.kv_capacity_blocks()
    fewer = host.kv_capacity_blocks()
    block_bytes = (llm.model.kv_bytes_per_token(llm.kv_dtype) / 2
                   * llm.scheduler.block_size_tokens)
    # 8B of bf16 weights over 2 devices: ~8 GB per device less KV, in whole blocks
    assert kv_per_block - fewer == pytest.approx(per_device / block_bytes, abs=1.0)


def test_a_host_that_does_not_reserve_its_guests_memory_is_refused(b):
    cfg = b.config([b.llm_pool(), _reward(colocate_with="llm")],
                   [b.stage("generate", "llm"), b.stage("reward", "reward")], n=5)
    with pytest.raises(ConfigError, match=r"reserved_bytes_per_device=0: its colocated stages"):
        simulate(cfg, 0)


@pytest.mark.parametrize("host, match", [
    ("nope", r"reward\.colocate_with='nope': must name a colocated LLM pool \(pools: llm\)"),
    ("cpu", r"colocate_with='cpu': must name a colocated LLM pool")])
def test_a_guest_must_name_a_colocated_llm_pool(b, host, match):
    with pytest.raises(ConfigError, match=match):
        colocation.apply((b.llm_pool(), b.cpu_pool(), _reward(colocate_with=host)))


def _gen_then_reward(b, colocated: bool, n: int = 12):
    """Generation then reward scoring; the reward model on the LLM's GPU, or on a GPU of its own
    with the same memory taken from the LLM (so only the time-sharing differs)."""
    pools = colocation.apply((b.llm_pool(), _reward(colocate_with="llm")))
    if not colocated:
        pools = (pools[0], replace(pools[1], colocate_with=""))
    return b.config(pools, [b.stage("generate", "llm"), b.stage("reward", "reward")], n=n,
                    arrival=b.poisson(2.0), prompt=b.fixed(300),
                    output=b.lognormal(200, 150, 8, 800), record_requests=True)


def _busy_s(res, pool: str) -> float:
    return res.summary["pools"][pool]["busy_s"]


def _reward_ms(row: dict) -> float:
    """The reward visit's service time in a request row (``kind@pool:queue/service``)."""
    visit = next(v for v in row["stages"].split(";") if v.startswith("reward@"))
    return float(visit.split(":")[1].split("/")[1])


def test_colocated_stage_time_delays_the_llm_and_is_conserved(b):
    own, shared = simulate(_gen_then_reward(b, False), 0), simulate(_gen_then_reward(b, True), 0)
    extra = _busy_s(shared, "llm") - _busy_s(own, "llm")
    # the LLM's device is busy longer by the reward work it overlapped (never more than all of it)
    assert 0.0 < extra <= _busy_s(shared, "reward") + 1e-9
    rows = {r["id"]: r for r in own.requests}
    later = [r["e2e_ms"] - rows[r["id"]]["e2e_ms"] for r in shared.requests]
    assert min(later) >= -1e-6 and max(later) > 0.0
    # the reward stage itself runs at the device's full speed either way
    assert shared.summary["stages"]["reward@reward"]["service_ms"]["mean"] == pytest.approx(
        own.summary["stages"]["reward@reward"]["service_ms"]["mean"])


def test_a_decode_run_is_delayed_by_exactly_the_stage_batch(b):
    """Two requests at once: the shorter finishes generating and its reward batch runs on the GPU
    while the longer one is still decoding, so the longer one ends later by exactly that batch's
    time (its decode run is cut at the next step boundary and resumes after the stall)."""
    def cfg(colocated):
        c = _gen_then_reward(b, colocated, n=2)
        return replace(c, workload=replace(c.workload, arrival=b.max_load()))
    own, shared = simulate(cfg(False), 0), simulate(cfg(True), 0)
    first, second = sorted(own.requests, key=lambda r: r["output_tokens"])
    assert first["output_tokens"] < second["output_tokens"]
    after = {r["id"]: r for r in shared.requests}
    assert after[first["id"]]["finish_s"] == pytest.approx(first["finish_s"], abs=1e-12)
    delay_ms = (after[second["id"]]["finish_s"] - second["finish_s"]) * 1e3
    assert delay_ms == pytest.approx(_reward_ms(first), abs=1e-3)  # the row rounds to 1 us
    # the tokens after the stall came that much later: the longer one's TPOT grew
    assert after[second["id"]]["tpot_ms"] > second["tpot_ms"]


def _encoder_cfg(b, timeout_s: float):
    embed = PoolSpec(name="embed", model=model("bge_large_en"), hardware=hw("h100_sxm"),
                     role=PoolRole.EMBED, batch_timeout_s=timeout_s,
                     scheduler=SchedulerSpec(max_num_seqs=16, max_batched_tokens=16384))
    return b.config([b.llm_pool(replicas=4), embed],
                    [b.stage("embed", "embed"), b.stage("generate", "llm")], n=300,
                    arrival=b.poisson(100.0), prompt=b.fixed(100), output=b.fixed(4))


def test_a_batch_timeout_forms_fuller_batches_and_bounds_the_wait(b):
    eager, patient = simulate(_encoder_cfg(b, 0.0), 0), simulate(_encoder_cfg(b, 0.02), 0)

    def batches(res):
        return res.summary["pools"]["embed"]["steps"]
    assert batches(patient) < batches(eager) / 2  # fewer, fuller batches
    queue = patient.summary["stages"]["embed@embed"]["queue_ms"]
    assert queue["mean"] > eager.summary["stages"]["embed@embed"]["queue_ms"]["mean"]
    assert queue["p99"] <= 20.0 + 1e-6  # nobody waits past the timeout with a server free


def test_a_full_batch_does_not_wait_for_the_timeout(b):
    cfg = _encoder_cfg(b, 10.0)  # 10 s: only full batches of 16 can go early
    res = simulate(replace(cfg, workload=replace(cfg.workload, num_requests=32,
                                                 arrival=b.max_load())), 0)
    assert res.summary["stages"]["embed@embed"]["queue_ms"]["p99"] < 1000.0


def test_a_colocated_run_is_deterministic(b):
    import json
    first, again = simulate(_gen_then_reward(b, True), 3), simulate(_gen_then_reward(b, True), 3)
    assert json.dumps(first.summary, sort_keys=True) == json.dumps(again.summary, sort_keys=True)
    assert first.requests == again.requests
