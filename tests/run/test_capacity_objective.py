"""Capacity as a study objective (hermes_opt/run/capacity.py CapacityEvaluator / with_capacity):
bisection on the arrival rate per candidate, tokens per dollar at that rate, one bisection per
(candidate, seed)."""

from __future__ import annotations

import pickle

import pytest

from hermes_opt.run.capacity import CapacityEvaluator, with_capacity
from hermes_opt.study.definition import from_dict

RATE = "workload.arrival.rate_per_s"
THRESHOLD = 10.0  # ttft p99 = 100 ms per request/s: the SLO (<= 1000 ms) holds up to 10 req/s
TOKENS_PER_REQUEST = 250.0
USD_PER_HOUR = 36.0  # 0.01 $/s
CALLS: list[tuple[tuple[str, ...], int]] = []


def rate_of(overrides: list[str]) -> float:
    values = [float(o.split("=", 1)[1]) for o in overrides if o.startswith(f"{RATE}=")]
    assert len(values) == 1, overrides  # the bisection replaces the rate, never adds a second
    return values[0]


def linear_ttft(overrides: list[str], seed: int, budget) -> dict:
    """A deployment whose p99 TTFT grows linearly with the offered rate (scaled by ``slow=x``)."""
    CALLS.append((tuple(overrides), seed))
    rate = rate_of(overrides)
    slow = float(dict(o.split("=", 1) for o in overrides).get("slow", 1.0))
    out_tps = rate * TOKENS_PER_REQUEST
    return {"probe_rate": rate, "ttft_ms": {"p99": 1000.0 * slow * rate / THRESHOLD},
            "cost_usd_per_hour": USD_PER_HOUR, "output_tokens_per_s": out_tps,
            "goodput_output_tokens_per_s": out_tps, "requests_per_s": rate,
            "requests_completed": 100}


def spec(**changes):
    raw = {"name": "cap_obj", "base": ["model=llama3_1_8b"],
           "objectives": [{"metric": "capacity_tokens_per_usd"}],
           "constraints": ["ttft_ms.p99 <= 1000"],
           "evaluator": f"{__name__}:linear_ttft",
           "capacity": {"low": 1.0, "high": 64.0, "rel_tol": 0.01}}
    raw.update(changes)
    return from_dict(raw)


@pytest.fixture(autouse=True)
def fresh_calls():
    CALLS.clear()
    yield
    CALLS.clear()


def test_with_capacity_wraps_only_when_a_capacity_metric_is_used():
    wrapped = with_capacity(spec(), linear_ttft)
    assert isinstance(wrapped, CapacityEvaluator) and wrapped.inner is linear_ttft
    assert with_capacity(spec(objectives=[{"metric": "slo_tokens_per_usd"}]), linear_ttft) \
        is linear_ttft
    as_constraint = spec(objectives=[{"metric": "slo_tokens_per_usd"}],
                         constraints=["ttft_ms.p99 <= 1000", "capacity_rate_per_s >= 2"])
    assert isinstance(with_capacity(as_constraint, linear_ttft), CapacityEvaluator)


def test_bisection_finds_the_threshold_rate_within_rel_tol():
    evaluator = with_capacity(spec(), linear_ttft)
    out = evaluator(["model=llama3_1_8b", "cluster.tp=1"], 0, None)
    rate = out["capacity_rate_per_s"]
    assert rate <= THRESHOLD < rate * 1.01  # feasible, and the next rel_tol step is not
    assert out["probe_rate"] == rate  # the summary returned is the one at that rate
    assert out["ttft_ms"]["p99"] <= 1000
    probes = out["capacity_probes"]
    assert probes[:2] == [[1.0, 1.0], [64.0, 0.0]]  # low first, then high
    assert all(ok == (1.0 if r <= THRESHOLD else 0.0) for r, ok in probes)
    assert len(CALLS) == len(probes) and all(seed == 0 for _, seed in CALLS)
    assert all(o[:2] == ("model=llama3_1_8b", "cluster.tp=1") for o, _ in CALLS)


def test_capacity_tokens_per_usd_is_rate_times_tokens_per_request_per_dollar():
    out = with_capacity(spec(), linear_ttft)(["model=llama3_1_8b"], 0, None)
    rate = out["capacity_rate_per_s"]
    assert out["capacity_tokens_per_usd"] == pytest.approx(
        rate * TOKENS_PER_REQUEST / (USD_PER_HOUR / 3600))
    assert out["capacity_tokens_per_usd"] == pytest.approx(rate * 25_000)


def test_the_same_candidate_and_seed_is_bisected_once():
    evaluator = with_capacity(spec(), linear_ttft)
    first = evaluator(["model=llama3_1_8b", "cluster.tp=2"], 3, None)
    calls = len(CALLS)
    assert calls >= 3
    again = evaluator(["model=llama3_1_8b", "cluster.tp=2"], 3, None)
    # a rate in the candidate's overrides is replaced by the bisection: still the same candidate
    with_rate = evaluator(["model=llama3_1_8b", "cluster.tp=2", f"{RATE}=5.0"], 3, None)
    assert len(CALLS) == calls
    assert again == first and with_rate == first and again is not first
    evaluator(["model=llama3_1_8b", "cluster.tp=2"], 4, None)  # another seed: a new bisection
    assert len(CALLS) == 2 * calls
    assert {seed for _, seed in CALLS[calls:]} == {4}


def test_a_pickled_evaluator_starts_with_an_empty_cache():
    evaluator = with_capacity(spec(), linear_ttft)
    expected = evaluator(["model=llama3_1_8b"], 0, None)
    copy = pickle.loads(pickle.dumps(evaluator))
    calls = len(CALLS)
    assert copy(["model=llama3_1_8b"], 0, None) == expected
    assert len(CALLS) == 2 * calls


def test_slos_failing_at_the_low_bound_give_rate_zero():
    evaluator = with_capacity(spec(), linear_ttft)
    out = evaluator(["model=llama3_1_8b", "slow=20"], 0, None)  # p99 = 2000 ms already at 1 req/s
    assert out["capacity_rate_per_s"] == 0.0 and out["capacity_tokens_per_usd"] == 0.0
    assert out["capacity_probes"] == [[1.0, 0.0]] and len(CALLS) == 1


def test_slos_met_at_the_high_bound_give_the_high_bound():
    evaluator = with_capacity(spec(), linear_ttft)
    out = evaluator(["model=llama3_1_8b", "slow=0.1"], 0, None)  # threshold at 100 req/s
    assert out["capacity_rate_per_s"] == 64.0 and out["probe_rate"] == 64.0
    assert out["capacity_probes"] == [[1.0, 1.0], [64.0, 1.0]] and len(CALLS) == 2
