"""Closed-form decode runs are exact.

The replica advances runs of decode steps in closed form and interrupts them at step boundaries.
Here a small step-by-step reference scheduler (one event per engine step, step times from
``step_time_s`` — never ``decode_coefficients``) replays random small workloads, and every
request's admission, first-token and finish times must match to 1e-9. Hypothesis also drives
random small workloads under KV pressure through the invariant harness.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
    LengthKind,
    LengthSpec,
    RouterPolicy,
    TraceRecords,
    simulate,
)
from sim.cost.base import StepShape
from sim.cost.factory import build_cost_model
from sim.cost.roofline import RooflineCostModel
from sim.hardware.speculative import SpecDecodeSpec, SpecMethod
from sim.scheduling import router as router_module

TRACE_LENGTH = LengthSpec(kind=LengthKind.TRACE)
TRACE_ARRIVAL = ArrivalSpec(kind=ArrivalKind.TRACE)
REL = 1e-9


# --- the reference: one engine step at a time ----------------------------------------------


class _Req:
    def __init__(self, rid, arrival, prompt, output):
        self.id, self.arrival, self.prompt, self.output = rid, arrival, prompt, output
        self.target = prompt  # prompt + tokens generated before a preemption
        self.computed = self.ctx = self.generated = 0
        self.gen_start = self.first = self.finish = None


# policies whose step budget is chunk_size_tokens and which serve prompts of any length
CHUNK_BUDGET = (BatchPolicy.CHUNKED, BatchPolicy.PREFILL_FIRST)


def reference_schedule(trace, policy: BatchPolicy, max_seqs: int, budget: int, cost, *,
                       num_blocks: int | None = None, block_size: int = 16,
                       watermark_fraction: float = 0.01):
    """Times of every request on one replica, stepping one engine step at a time. An arrival at
    time t is visible to a batch formed at t. Returns {id: (gen_start, first_token, finish)} for
    served requests; rejected ids map to None.

    ``num_blocks=None`` means unlimited KV. Otherwise the documented KV rule (docs/architecture.md):
    a waiting request is admitted only if all its prompt blocks fit in the free blocks left after
    the decoders' next step with ``int(watermark_fraction * num_blocks)`` blocks to spare, and
    holds them from admission; a decoder whose context fills its last block needs a new one for
    its next step, and when they do not fit the most recently admitted request is preempted
    (recompute: it re-queues at the head with its generated tokens added to its prompt). Mixed and
    chunked make room for the decodes before admitting; static, continuous and prefill_first when a
    decode step is next. Block usage is recounted from the requests every step."""
    unlimited = num_blocks is None
    watermark = 0 if unlimited else int(watermark_fraction * num_blocks)

    def blocks(tokens):
        return -(-tokens // block_size)

    out = {}
    pending, served = deque(), []
    for rid, (arrival, prompt, output) in enumerate(trace):
        if policy not in CHUNK_BUDGET and prompt > budget:
            out[rid] = None  # prompt_exceeds_max_batched_tokens
        elif not unlimited and blocks(prompt + output - 1) > num_blocks - watermark:
            out[rid] = None  # prompt_exceeds_kv_capacity: could never be (re)admitted
        else:
            served.append(_Req(rid, arrival, prompt, output))
    pending.extend(served)
    waiting, admitted, prefilling, decoders = deque(), [], [], []
    t = 0.0

    def free_blocks():
        if unlimited:
            return float("inf")
        held = sum(blocks(r.target) if r.computed < r.target else blocks(r.ctx) for r in admitted)
        return num_blocks - held

    def decode_need():
        return sum(1 for r in decoders if r.ctx % block_size == 0)

    def make_room_for_decodes():
        while decoders and decode_need() > free_blocks():
            victim = admitted.pop()  # LIFO
            if victim in decoders:
                decoders.remove(victim)
                victim.target = victim.prompt + victim.generated
            else:
                prefilling.remove(victim)
            victim.computed = 0
            waiting.appendleft(victim)

    def admit(req):
        admitted.append(req)
        if req.gen_start is None:
            req.gen_start = t

    def admit_whole(room):
        chunks = []
        free = free_blocks() - decode_need() - watermark
        while waiting and len(admitted) < max_seqs:
            req = waiting[0]
            if blocks(req.target) > free or (req.target > room and chunks):
                break
            waiting.popleft()
            admit(req)
            free -= blocks(req.target)
            room -= req.target
            chunks.append((req, req.target))
            if room <= 0:
                break
        return chunks

    def admit_chunks(room):
        chunks = []
        for req in prefilling:
            if room <= 0:
                break
            chunk = min(req.target - req.computed, room)
            room -= chunk
            chunks.append((req, chunk))
        free = free_blocks() - decode_need() - watermark
        while room > 0 and waiting and len(admitted) < max_seqs:
            req = waiting[0]
            if blocks(req.target) > free:
                break
            waiting.popleft()
            admit(req)
            prefilling.append(req)
            free -= blocks(req.target)
            chunk = min(req.target, room)
            room -= chunk
            chunks.append((req, chunk))
        return chunks

    while True:
        while pending and pending[0].arrival <= t:
            waiting.append(pending.popleft())
        if policy in (BatchPolicy.MIXED, BatchPolicy.CHUNKED):
            make_room_for_decodes()
        if policy is BatchPolicy.STATIC:
            chunks = [] if admitted else admit_whole(budget)
        elif policy is BatchPolicy.CONTINUOUS:
            chunks = admit_whole(budget)
        elif policy is BatchPolicy.MIXED:
            chunks = admit_whole(budget - len(decoders))
        elif policy is BatchPolicy.PREFILL_FIRST:  # chunks in prefill-only steps, decodes wait
            chunks = admit_chunks(budget)
        else:
            chunks = admit_chunks(budget - len(decoders))
        with_decode = bool(decoders) and (not chunks or policy in (BatchPolicy.MIXED,
                                                                    BatchPolicy.CHUNKED))
        if with_decode and not chunks and policy in (BatchPolicy.STATIC, BatchPolicy.CONTINUOUS,
                                                     BatchPolicy.PREFILL_FIRST):
            make_room_for_decodes()
            if not decoders:
                continue  # everyone was preempted: plan again at the same time
        if not chunks and not with_decode:
            if not pending:
                break
            t = max(t, pending[0].arrival)
            continue
        shape = StepShape.for_prefill_chunks([(req.computed, chunk) for req, chunk in chunks])
        if with_decode:
            shape = StepShape(prefill_tokens=shape.prefill_tokens,
                              prefill_attention_pairs=shape.prefill_attention_pairs,
                              prefill_context_tokens=shape.prefill_context_tokens,
                              num_prefill_seqs=shape.num_prefill_seqs,
                              num_decode_seqs=len(decoders),
                              decode_context_tokens=sum(r.ctx for r in decoders))
        t += cost.step_time_s(shape)
        if with_decode:
            for req in list(decoders):
                req.ctx += 1
                req.generated += 1
                if req.generated >= req.output:
                    req.finish = t
                    decoders.remove(req)
                    admitted.remove(req)
        for req, chunk in chunks:
            req.computed += chunk
            if req.computed < req.target:
                continue
            if req in prefilling:
                prefilling.remove(req)
            if req.first is None:
                req.first = t
            req.generated += 1
            req.ctx = req.target
            if req.generated >= req.output:
                req.finish = t
                admitted.remove(req)
            else:
                decoders.append(req)
    for req in served:
        out[req.id] = (req.gen_start, req.first, req.finish)
    return out


def trace_config(b, trace, pool):
    records = TraceRecords(arrival_s=tuple(a for a, _, _ in trace),
                           prompt_tokens=tuple(p for _, p, _ in trace),
                           output_tokens=tuple(o for _, _, o in trace))
    return b.make_config(pool=pool, num_requests=len(trace), arrival=TRACE_ARRIVAL,
                         prompt=TRACE_LENGTH, output=TRACE_LENGTH, trace=records)


@st.composite
def small_traces(draw, max_requests=12, max_prompt=600, max_output=200):
    n = draw(st.integers(1, max_requests))
    gaps = draw(st.lists(st.floats(0.0, 0.3, allow_nan=False), min_size=n, max_size=n))
    times, t = [], 0.0
    for gap in gaps:
        times.append(t)
        t += gap
    prompts = draw(st.lists(st.integers(1, max_prompt), min_size=n, max_size=n))
    outputs = draw(st.lists(st.integers(1, max_output), min_size=n, max_size=n))
    return list(zip(times, prompts, outputs))


def assert_times_match(result, expected):
    rows = {row["id"]: row for row in result.requests}
    assert rows.keys() == expected.keys()
    for rid, times in expected.items():
        row = rows[rid]
        if times is None:
            assert row["status"] == "rejected", row
            continue
        assert row["status"] == "completed", row
        got = (row["gen_start_s"], row["first_token_s"], row["finish_s"])
        assert got == pytest.approx(times, rel=REL, abs=1e-12), (rid, got, times)


# --- closed-form runs vs the per-step reference -------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=small_traces(),
       policy=st.sampled_from(list(BatchPolicy)),
       max_seqs=st.integers(1, 6),
       budget=st.integers(16, 1024))
def test_closed_form_runs_match_per_step_reference(sim_build, trace, policy, max_seqs, budget):
    budget = max(budget, max_seqs + 1)  # mixed/chunked need room beyond the decodes
    pool = sim_build.make_pool(policy=policy, max_num_seqs=max_seqs, max_batched_tokens=budget,
                               chunk_size_tokens=budget)
    cfg = trace_config(sim_build, trace, pool)
    result = simulate(cfg, seed=0)
    assert result.summary["preemptions"] == 0  # the reference has unlimited KV
    cost = RooflineCostModel(pool.model, pool.hardware)
    expected = reference_schedule(trace, policy, max_seqs, budget, cost)
    assert_times_match(result, expected)


def random_trace(*, seed: int, n: int, mean_gap_s: float, prompt: tuple[int, int],
                 output: tuple[int, int]) -> list[tuple[float, int, int]]:
    """(arrival_s, prompt_tokens, output_tokens) rows: Poisson arrivals from t=0, uniform lengths
    in [low, high)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(mean_gap_s, n))
    times -= times[0]
    return list(zip(times.tolist(), rng.integers(*prompt, n).tolist(),
                    rng.integers(*output, n).tolist()))


def test_reference_comparison_on_a_busy_workload(sim_build):
    """A larger deterministic instance of the property above, with interrupted decode runs."""
    trace = random_trace(seed=5, n=150, mean_gap_s=0.05, prompt=(1, 800), output=(1, 300))
    for policy in BatchPolicy:
        pool = sim_build.make_pool(policy=policy, max_num_seqs=8, max_batched_tokens=1024,
                                   chunk_size_tokens=256)
        budget = 256 if policy in CHUNK_BUDGET else 1024
        result = simulate(trace_config(sim_build, trace, pool), seed=0)
        expected = reference_schedule(trace, policy, 8, budget,
                                      RooflineCostModel(pool.model, pool.hardware))
        assert_times_match(result, expected)
        # closed-form runs really were used (far fewer events than tokens)
        assert result.summary["num_events"] < sum(o for _, _, o in trace) / 2


def test_speculative_decoding_keeps_the_closed_form_runs_exact(sim_build):
    """A pool that drafts and verifies (EAGLE, 3 draft tokens) against the per-step reference
    with the same speculative cost model: the closed-form runs stay exact."""
    spec = SpecDecodeSpec(method=SpecMethod.EAGLE, draft_tokens=3,
                          acceptance_per_position=(0.8, 0.6, 0.4))
    trace = random_trace(seed=7, n=80, mean_gap_s=0.05, prompt=(1, 800), output=(1, 300))
    for policy in BatchPolicy:
        pool = dataclasses.replace(
            sim_build.make_pool(policy=policy, max_num_seqs=8, max_batched_tokens=1024,
                                chunk_size_tokens=256), spec_decoding=spec)
        budget = 256 if policy in CHUNK_BUDGET else 1024
        result = simulate(trace_config(sim_build, trace, pool), seed=0)
        expected = reference_schedule(trace, policy, 8, budget, build_cost_model(pool))
        assert_times_match(result, expected)
        plain = simulate(trace_config(sim_build, trace, dataclasses.replace(
            pool, spec_decoding=SpecDecodeSpec())), seed=0)
        # it was drafting: tau = 2.47 tokens per small-batch, memory-bound step
        assert result.summary["tpot_ms"]["mean"] < 0.6 * plain.summary["tpot_ms"]["mean"]


# --- under KV pressure: admission watermark, whole-prompt reservation, LIFO preemption ------


def kv_pool(b, policy, *, max_seqs, budget, num_blocks, block_size, watermark):
    return b.make_pool(policy=policy, max_num_seqs=max_seqs, max_batched_tokens=budget,
                       chunk_size_tokens=budget, block_size_tokens=block_size,
                       kv_watermark_fraction=watermark,
                       gpu_memory_utilization=b.utilization_for_blocks(
                           num_blocks, block_size_tokens=block_size))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=small_traces(max_requests=14, max_prompt=400, max_output=300),
       policy=st.sampled_from(list(BatchPolicy)),
       max_seqs=st.integers(1, 6),
       budget=st.integers(16, 1024),
       block_size=st.sampled_from([1, 4, 16]),
       num_blocks_tokens=st.integers(200, 2000),
       watermark=st.sampled_from([0.0, 0.01, 0.1, 0.3]))
def test_kv_pressure_matches_per_step_reference(sim_build, trace, policy, max_seqs, budget,
                                                block_size, num_blocks_tokens, watermark):
    budget = max(budget, max_seqs + 1)
    num_blocks = num_blocks_tokens // block_size
    pool = kv_pool(sim_build, policy, max_seqs=max_seqs, budget=budget, num_blocks=num_blocks,
                   block_size=block_size, watermark=watermark)
    result = simulate(trace_config(sim_build, trace, pool), seed=0)
    expected = reference_schedule(trace, policy, max_seqs, budget,
                                  RooflineCostModel(pool.model, pool.hardware),
                                  num_blocks=num_blocks, block_size=block_size,
                                  watermark_fraction=watermark)
    assert_times_match(result, expected)


@pytest.mark.parametrize("watermark", [0.0, 0.01, 0.05])
def test_kv_pressure_reference_on_a_busy_workload(sim_build, watermark):
    """A larger deterministic instance that certainly preempts (the cache holds ~4 requests of
    the 12 the sequence budget allows), so LIFO preemption and readmission are compared too."""
    trace = random_trace(seed=11, n=120, mean_gap_s=0.02, prompt=(50, 700), output=(20, 400))
    for policy in BatchPolicy:
        pool = kv_pool(sim_build, policy, max_seqs=12, budget=1024, num_blocks=200,
                       block_size=16, watermark=watermark)
        result = simulate(trace_config(sim_build, trace, pool), seed=0)
        expected = reference_schedule(trace, policy, 12, 1024,
                                      RooflineCostModel(pool.model, pool.hardware),
                                      num_blocks=200, block_size=16, watermark_fraction=watermark)
        assert_times_match(result, expected)
        if policy is not BatchPolicy.STATIC:
            assert result.summary["preemptions"] > 0, policy  # the KV path really was exercised


# --- invariants on random small workloads under KV pressure -------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=small_traces(max_requests=16, max_prompt=300, max_output=300),
       policy=st.sampled_from(list(BatchPolicy)),
       router=st.sampled_from([r for r in RouterPolicy
                               if r in getattr(router_module, "ROUTERS", {})]),
       num_replicas=st.integers(1, 3),
       max_seqs=st.integers(1, 8),
       block_size=st.sampled_from([1, 4, 16]),
       num_blocks_tokens=st.integers(64, 1200))
def test_random_workloads_keep_invariants(sim_build, trace, policy, router, num_replicas,
                                          max_seqs, block_size, num_blocks_tokens):
    num_blocks = max(num_blocks_tokens // block_size, 1)
    pool = sim_build.make_pool(
        policy=policy, router=router, num_replicas=num_replicas, max_num_seqs=max_seqs,
        max_batched_tokens=512, chunk_size_tokens=max(64, max_seqs + 1),
        block_size_tokens=block_size,
        gpu_memory_utilization=sim_build.utilization_for_blocks(num_blocks,
                                                                block_size_tokens=block_size))
    cfg = trace_config(sim_build, trace, pool)
    run, result = sim_build.run_checked(cfg, seed=0, every_event=True)
    assert run.pools["llm"].num_blocks == num_blocks
    s = result.summary
    n = len(trace)
    assert s["requests_completed"] + s["requests_rejected"] == n
    rows = result.requests
    assert sorted(row["id"] for row in rows) == list(range(n))
    served_output = 0
    for row in rows:
        arrival, prompt, output = trace[row["id"]]
        assert row["arrival_s"] == pytest.approx(arrival)
        assert (row["prompt_tokens"], row["output_tokens"]) == (prompt, output)
        if row["status"] == "completed":
            assert row["arrival_s"] <= row["gen_start_s"] <= row["first_token_s"] <= row["finish_s"]
            served_output += output
        else:
            admittable = num_blocks - int(0.01 * num_blocks)  # the default watermark's share
            too_big = -(-(prompt + output - 1) // block_size) > admittable or (
                policy not in CHUNK_BUDGET and prompt > 512)
            assert too_big, row  # only requests that can never fit are rejected
    assert sum(r.generated for r in run.collector.completed) == served_output
    assert s["output_tokens_per_s"] * s["duration_s"] == pytest.approx(served_output)


# --- a single request alone: e2e from the cost model directly -----------------------------


@pytest.mark.parametrize("policy", list(BatchPolicy), ids=lambda p: p.value)
@pytest.mark.parametrize("prompt,output", [(1, 1), (700, 1), (1000, 257), (3000, 1500)])
def test_single_request_e2e_from_cost_model(sim_build, policy, prompt, output):
    chunk = 512
    pool = sim_build.make_pool(policy=policy, chunk_size_tokens=chunk)
    cfg = sim_build.make_config(pool=pool, num_requests=1, arrival=sim_build.max_load(),
                                prompt=prompt, output=output)
    row = simulate(cfg, seed=0).requests[0]
    cost = RooflineCostModel(pool.model, pool.hardware)
    if policy in CHUNK_BUDGET:
        prefill = sum(cost.step_time_s(StepShape.for_prefill_chunks([(done, min(chunk, prompt - done))]))
                      for done in range(0, prompt, chunk))
    else:
        prefill = cost.step_time_s(StepShape.for_prefill_chunks([(0, prompt)]))
    decode = 0.0
    for k in range(output - 1):  # context grows by one per step, from the prompt
        context = prompt + k
        base, slope = cost.decode_coefficients(1, context)
        decode += base + slope * context
        assert base + slope * context == pytest.approx(
            cost.step_time_s(StepShape(num_decode_seqs=1, decode_context_tokens=context)), rel=1e-12)
    assert row["arrival_s"] == 0.0
    assert row["ttft_ms"] / 1e3 == pytest.approx(prefill, rel=REL)
    assert row["e2e_ms"] / 1e3 == pytest.approx(prefill + decode, rel=REL)
