"""Time to first *answer* token (``ttfat_ms``): reasoning workloads only, after the thinking."""

from __future__ import annotations

import pytest

from sim import RequestTypeSpec, SimConfig, Stage, StageKind, WorkloadSpec, simulate
from sim.pipeline.specs import ReasoningSpec

STEP_S = 0.01


def reasoning_config(sim_build, *, thinking: int, answer: int, rounds: int,
                     num_requests: int = 1) -> SimConfig:
    pool = sim_build.make_pool(cost=sim_build.constant_cost(STEP_S))
    think = sim_build.fixed(thinking)
    rt = RequestTypeSpec(name="math", plan=(Stage(kind=StageKind.GENERATE, pool="llm"),),
                         prompt_tokens=sim_build.fixed(128), output_tokens=sim_build.fixed(answer),
                         reasoning=ReasoningSpec(think_short=think, think_long=think,
                                                 num_rounds=rounds))
    return SimConfig(pools=(pool,), workload=WorkloadSpec(
        num_requests=num_requests, arrival=sim_build.poisson(0.01), request_types=(rt,)))


def test_one_round_answer_starts_after_the_thinking_tokens(sim_build):
    # one request alone, every step STEP_S: token k of the round is at first + (k - 1) * STEP_S,
    # so the first answer token (token thinking + 1) is thinking * STEP_S after the first token
    summary = simulate(reasoning_config(sim_build, thinking=300, answer=40, rounds=1)).summary
    gap_ms = summary["ttfat_ms"]["mean"] - summary["ttft_ms"]["mean"]
    assert gap_ms == pytest.approx(300 * STEP_S * 1e3, rel=1e-9)
    assert summary["ttfat_ms"]["mean"] < summary["e2e_ms"]["mean"]


def test_several_rounds_answer_in_the_last_round(sim_build):
    # 2 rounds of 150 thinking tokens each; the answer is the tail of round 2. From the first
    # token: round 1's other 149 tokens, round 2's prefill step (its first token), then its 150
    # thinking tokens: 300 steps to the first answer token
    summary = simulate(reasoning_config(sim_build, thinking=300, answer=40, rounds=2)).summary
    e2e, ttfat = summary["e2e_ms"]["mean"], summary["ttfat_ms"]["mean"]
    # from the first answer token to the last: the answer's 40 tokens = 39 steps
    assert e2e - ttfat == pytest.approx(39 * STEP_S * 1e3, rel=1e-9)
    assert ttfat - summary["ttft_ms"]["mean"] == pytest.approx(300 * STEP_S * 1e3, rel=1e-9)


def test_workloads_without_reasoning_have_no_ttfat(sim_build):
    assert "ttfat_ms" not in simulate(sim_build.make_config(num_requests=20)).summary
