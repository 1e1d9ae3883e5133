"""Capacity mode: the highest request rate a given deployment serves within its SLOs.

Bisection on ``capacity.param`` (default ``workload.arrival.rate_per_s``) in log space between
``capacity.low`` and ``capacity.high`` until the bracket is within ``capacity.rel_tol``. SLO
attainment is taken to be monotone in the rate (more load never lowers p99 latency), which is
what makes bisection valid; each probe averages the study's replicates like a trial does.
"""

from __future__ import annotations

import math

from hermes_opt.study.objective import score
from hermes_opt.run.preflight import resolve_evaluator
from hermes_opt.study.definition import StudySpec
from hermes_opt.run.worker import Infeasible
from sim.errors import ConfigError, require


def find_capacity(spec: StudySpec) -> dict:
    require(len(spec.constraints) > 0, "constraints", [], "capacity mode needs SLO constraints "
            "(e.g. constraints=['ttft_ms.p99 <= 1000'])")
    cap = spec.capacity
    evaluator = resolve_evaluator(spec.evaluator)
    probes: list[dict] = []

    def meets(rate: float) -> bool:
        overrides = [o for o in spec.base if not o.startswith(f"{cap.param}=")]
        overrides.append(f"{cap.param}={rate!r}")
        try:
            summaries = [evaluator(overrides, seed, spec.budget) for seed in spec.replicate_seeds]
        except Infeasible as err:
            raise ConfigError(f"capacity: the deployment cannot run: {err}") from None
        outcome = score(summaries, spec.objectives, spec.constraints)
        probes.append({"rate": rate, "feasible": outcome.feasible,
                       **{c.metric: outcome.metrics.get(c.metric) for c in spec.constraints}})
        return outcome.feasible

    deployment = [o for o in spec.base if not o.startswith(f"{cap.param}=")]
    result = {"deployment": deployment, "param": cap.param, "constraints":
              [c.key for c in spec.constraints], "seeds": spec.replicate_seeds, "probes": probes}
    low, high = cap.low, cap.high
    if not meets(low):
        return {**result, "max_rate": None, "note": f"SLOs not met even at {cap.param}={low}"}
    if meets(high):
        return {**result, "max_rate": high, "note": f"SLOs met at the upper bound {high}; "
                                                    f"raise capacity.high"}
    while high / low - 1 > cap.rel_tol:
        mid = math.sqrt(low * high)
        low, high = (mid, high) if meets(mid) else (low, mid)
    return {**result, "max_rate": low, "bracket": [low, high]}
