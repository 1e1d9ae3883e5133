"""A thinking budget (``reasoning.budget_tokens``) cuts each request's thinking at the budget and
changes nothing else: the same draws, the longer ones truncated; bad budgets are one error."""

from __future__ import annotations

import numpy as np
import pytest

from sim import simulate
from sim.errors import ConfigError
from sim.pipeline.reasoning import draw_thinking
from sim.pipeline.specs import ReasoningSpec
from sim.random_streams import stream


def _spec(b, budget: int) -> ReasoningSpec:
    return ReasoningSpec(think_short=b.lognormal(400, 200, 16, 4096),
                         think_long=b.lognormal(5000, 2000, 512, 16000), long_fraction=0.4,
                         budget_tokens=budget)


def test_budget_truncates_the_same_draws(b):
    free = draw_thinking(_spec(b, 0), stream(0, "t"), 500)
    capped = draw_thinking(_spec(b, 2048), stream(0, "t"), 500)
    assert capped.max() == 2048 and free.max() > 2048
    assert np.array_equal(capped, np.minimum(free, 2048))


def test_budget_bounds_every_requests_output_and_shortens_the_run(b):
    def run(budget):
        cfg = b.config([b.llm_pool()], [b.stage("generate", "llm")], n=40,
                       arrival=b.poisson(1.0), prompt=b.fixed(200), output=b.fixed(30),
                       reasoning=_spec(b, budget), record_requests=True)
        return simulate(cfg, 0)
    free, capped = run(0), run(1000)
    assert max(r["output_tokens"] for r in capped.requests) <= 1000 + 30
    assert max(r["output_tokens"] for r in free.requests) > 1030
    assert capped.summary["ttfat_ms"]["p99"] < free.summary["ttfat_ms"]["p99"]


@pytest.mark.parametrize("budget", [-1, 1.5, True, 2_000_000])
def test_bad_budget_is_one_error_naming_the_field(b, budget):
    with pytest.raises(ConfigError, match=r"reasoning\.budget_tokens=.*0\.\.1,000,000"):
        _spec(b, budget).validate("reasoning")
