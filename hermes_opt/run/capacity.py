"""Capacity mode: the highest request rate a given deployment serves within its SLOs.

Bisection on ``capacity.param`` (default ``workload.arrival.rate_per_s``) in log space between
``capacity.low`` and ``capacity.high`` until the bracket is within ``capacity.rel_tol``. SLO
attainment is taken to be monotone in the rate (more load never lowers p99 latency), which is
what makes bisection valid; each probe averages the study's replicates like a trial does.
"""

from __future__ import annotations

import math

from hermes_opt.run.preflight import resolve_evaluator
from hermes_opt.run.worker import Infeasible
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.objective import score
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


# --- capacity as a study objective ---------------------------------------------------------
CAPACITY_METRICS = ("capacity_tokens_per_usd", "capacity_rate_per_s")


def needs_capacity(spec: StudySpec) -> bool:
    return any(o.metric in CAPACITY_METRICS for o in spec.objectives) or any(
        c.metric in CAPACITY_METRICS for c in spec.constraints)


class CapacityEvaluator:
    """Wraps a study's evaluator: one replicate of a candidate is a bisection on its arrival rate
    (``capacity.*`` of the study), and the summary returned is the one at the highest rate that
    met every constraint, plus

    - ``capacity_rate_per_s``: that rate (0 when the SLOs fail even at ``capacity.low``);
    - ``capacity_tokens_per_usd``: rate x that summary's output tokens per completed request /
      (cost in $/s), i.e. the tokens per dollar the deployment sells when driven at the most
      load its SLOs allow (Vidur-Search's "capacity per dollar").

    Results are cached per (candidate, seed) in the process, so a sampler that proposes the same
    candidate twice (TPE does on discrete spaces) pays one bisection. Picklable: the pool ships it
    to the workers like the plain evaluator."""

    def __init__(self, inner, constraints, capacity) -> None:
        self.inner, self.constraints, self.capacity = inner, tuple(constraints), capacity
        self._cache: dict[tuple, dict] = {}

    def __getstate__(self) -> dict:
        return {"inner": self.inner, "constraints": self.constraints, "capacity": self.capacity}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["inner"], state["constraints"], state["capacity"])

    def __call__(self, overrides: list[str], seed: int, budget) -> dict:
        cap = self.capacity
        base = [o for o in overrides if not o.startswith(f"{cap.param}=")]
        key = (tuple(base), int(seed))
        if key not in self._cache:
            self._cache[key] = self._bisect(base, seed, budget)
        return dict(self._cache[key])

    def _bisect(self, base: list[str], seed: int, budget) -> dict:
        cap = self.capacity
        probes: list[list[float]] = []

        def run(rate: float) -> tuple[bool, dict]:
            summary = self.inner(base + [f"{cap.param}={rate!r}"], seed, budget)
            ok = score([summary], (), self.constraints).feasible
            probes.append([rate, 1.0 if ok else 0.0])
            return ok, summary

        low, high = cap.low, cap.high
        ok, best = run(low)
        rate = low
        if not ok:
            rate = 0.0
        else:
            ok_high, at_high = run(high)
            if ok_high:
                rate, best = high, at_high
            else:
                while high / low - 1 > cap.rel_tol:
                    mid = math.sqrt(low * high)
                    ok_mid, at_mid = run(mid)
                    if ok_mid:
                        low, best = mid, at_mid
                    else:
                        high = mid
                rate = low
        usd_per_s = best["cost_usd_per_hour"] / 3600
        done = best.get("requests_completed") or 0
        tokens_per_request = (best["output_tokens_per_s"] / best["requests_per_s"]
                              if done and best.get("requests_per_s") else 0.0)
        return {**best, "capacity_rate_per_s": rate, "capacity_probes": probes,
                "capacity_tokens_per_usd": (rate * tokens_per_request / usd_per_s
                                            if usd_per_s > 0 else 0.0)}


def with_capacity(spec: StudySpec, evaluator):
    """The evaluator a study runs: wrapped for bisection when a capacity metric is used."""
    return CapacityEvaluator(evaluator, spec.constraints, spec.capacity) if needs_capacity(spec) \
        else evaluator
