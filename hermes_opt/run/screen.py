"""Multi-fidelity evaluation: the analytical tier (``sim.analytic.estimate``) screens a candidate
before the simulator runs it (study key ``screening``, docs/opt.md "Screening").

A candidate is decided by the estimate alone ("analytic" fidelity) when, with the estimate
moved by the factor ``1 + margin`` in the candidate's favour,

* it still misses an SLO constraint on a latency the tier estimates (``ttft_ms``, ``tpot_ms``,
  ``e2e_ms`` statistics), or
* (one objective the tier estimates; factor ``1 + objective_margin``) its objective still does
  not beat ``incumbent``: the best
  feasible simulated value among the batches told before this batch was asked (the driver fixes
  it per batch, so the decision never depends on which worker finishes first).

Everything else is simulated ("simulator" fidelity), its estimate kept next to the simulated
figures. Scenarios the tier does not model (``sim.analytic.estimate.unsupported``) are always
simulated. The screen runs in the worker, on the config the worker composes anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hermes_opt.compose.candidate import Candidate
from hermes_opt.run.worker import (
    Evaluator,
    Infeasible,
    Simulate,
    TrialEvaluator,
    prepared_candidate,
)
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.execution import ESTIMATED_LATENCIES, ESTIMATED_OBJECTIVES
from hermes_opt.study.objective import Budget, Constraint, Objective, flatten
from sim.analytic.estimate import Estimate, estimate
from sim.errors import ConfigError

SCREENING = "screening"  # summary key: {"fidelity", "decision", ...}
ANALYTIC, SIMULATOR = "analytic", "simulator"


def analytic_summary(est: Estimate, usd_per_hour: float, num_devices: int) -> dict[str, Any]:
    """The estimate as a summary (the metric paths studies name), priced."""
    usd_per_s = usd_per_hour / 3600
    out = est.metrics()
    goodput = est.goodput_output_tokens_per_s
    out.update(cost_usd_per_hour=usd_per_hour, num_devices=num_devices,
               slo_tokens_per_usd=goodput / usd_per_s if usd_per_s else 0.0,
               output_tokens_per_usd=est.output_tokens_per_s / usd_per_s if usd_per_s else 0.0)
    return out


def estimate_candidate(candidate: Candidate) -> tuple[Estimate, dict[str, Any]]:
    """Estimate a candidate; (estimate, priced summary; empty when not supported)."""
    config = candidate.config
    est = estimate(config)
    if not est.supported:
        return est, {}
    return est, analytic_summary(est, candidate.cost.usd_per_hour,
                                 sum(p.num_devices for p in config.pools))


def _value(summary: dict, metric: str) -> float | None:
    node: Any = summary
    for part in metric.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


@dataclass(frozen=True, slots=True)
class Rule:
    """What may prune: the margin, the estimated constraints and the estimated objective."""

    margin: float  # latency constraints
    constraints: tuple[Constraint, ...]
    objective: Objective | None
    objective_margin: float = 0.15

    @classmethod
    def for_spec(cls, spec: StudySpec) -> Rule:
        constraints = tuple(c for c in spec.constraints
                            if c.metric.split(".", 1)[0] in ESTIMATED_LATENCIES)
        objective = (spec.objectives[0] if len(spec.objectives) == 1
                     and spec.objectives[0].metric in ESTIMATED_OBJECTIVES else None)
        return cls(spec.screening.margin, constraints, objective,
                   spec.screening.objective_margin)

    def decide(self, summary: dict, incumbent: float | None) -> str:
        """Why the estimate alone decides this candidate ('' = simulate it)."""
        factor = 1 + self.margin
        for c in self.constraints:
            value = _value(summary, c.metric)
            if value is None:
                continue
            best_case = value / factor if c.op == "<=" else value * factor
            if c.violation(best_case) > 0:
                return (f"screened: estimated {c.metric} {value:.4g} misses {c.key} even if "
                        f"{factor:g}x better")
        factor = 1 + self.objective_margin
        if self.objective is not None and incumbent is not None:
            value = _value(summary, self.objective.metric)
            if value is not None:
                maximize = self.objective.direction == "maximize"
                best_case = value * factor if maximize else value / factor
                if (best_case < incumbent) if maximize else (best_case > incumbent):
                    return (f"screened: estimated {self.objective.metric} {value:.4g} cannot "
                            f"beat the best simulated {incumbent:.4g} even if {factor:g}x better")
        return ""


@dataclass(frozen=True, slots=True)
class Screened:
    """A prepared trial: its candidate, the estimate's verdict, and what the inner evaluator
    prepared (when it is a ``TrialEvaluator``)."""

    candidate: Candidate
    analytic: dict[str, Any]  # the priced estimate ({} when the tier does not model it)
    decision: str  # why the estimate alone decides it ('' = simulate)
    reason: str  # why it was not screened at all ('' = it was)
    overrides: list[str]
    budget: Budget | None
    inner_prepared: Any = None


@dataclass(frozen=True, slots=True)
class ScreenedEvaluator:
    """An evaluator that screens first; picklable (it travels to loky and Dask workers).
    Screening is seed-independent, so a trial is screened once for all its replicates."""

    inner: Evaluator | TrialEvaluator
    rule: Rule
    incumbent: float | None

    def prepare(self, overrides: list[str], budget: Budget | None) -> Screened:
        inner_prepared = None
        if isinstance(self.inner, Simulate):  # the candidate it simulates is the one screened
            candidate = inner_prepared = self.inner.prepare(overrides, budget)
        else:
            candidate = prepared_candidate(overrides, budget)  # Infeasible: never estimated
        try:
            est, analytic = estimate_candidate(candidate)
        except ConfigError as err:
            raise Infeasible(str(err), candidate.deployment) from None
        decision = self.rule.decide(analytic, self.incumbent) if analytic else ""
        if not decision and inner_prepared is None and isinstance(self.inner, TrialEvaluator):
            inner_prepared = self.inner.prepare(overrides, budget)
        return Screened(candidate, analytic, decision, "" if analytic else est.reason,
                        list(overrides), budget, inner_prepared)

    def run(self, prepared: Screened, seed: int) -> dict:
        analytic = prepared.analytic
        if prepared.decision:
            return {**analytic, SCREENING: {"fidelity": ANALYTIC, "decision": prepared.decision}}
        if prepared.inner_prepared is not None:
            summary = dict(self.inner.run(prepared.inner_prepared, seed))
        else:
            summary = dict(self.inner(list(prepared.overrides), seed, prepared.budget))
        summary[SCREENING] = {"fidelity": SIMULATOR,
                              "decision": "" if analytic else f"not screened: {prepared.reason}",
                              **({"estimate": _key_figures(analytic)} if analytic else {})}
        return summary

    def after(self, prepared: Screened, summaries: list[dict], seeds: list[int]) -> dict | None:
        """The inner evaluator's stress checks for a simulated trial (none for a screened one)."""
        after = getattr(self.inner, "after", None)
        if prepared.decision or after is None or prepared.inner_prepared is None:
            return None
        return after(prepared.inner_prepared, summaries, seeds)

    def deployment(self, prepared: Screened) -> dict | None:
        return prepared.candidate.deployment

    def __call__(self, overrides: list[str], seed: int, budget: Budget | None) -> dict:
        return self.run(self.prepare(overrides, budget), seed)


def _key_figures(analytic: dict) -> dict[str, float]:
    return {"ttft_ms_p99": analytic["ttft_ms"]["p99"], "tpot_ms_p99": analytic["tpot_ms"]["p99"],
            "slo_tokens_per_usd": analytic["slo_tokens_per_usd"],
            "capacity_rps": analytic["capacity_rps"]}


def fidelity(summary: dict | None) -> str:
    return ((summary or {}).get(SCREENING) or {}).get("fidelity", SIMULATOR)


def analytic_score(summary: dict, spec: StudySpec) -> tuple[list[float], dict[str, float],
                                                            dict[str, float]]:
    """What a screened trial is told: estimated objectives (the worst value where the tier has
    no estimate), estimated constraint violations (0 where it has none) and flat metrics."""
    values = []
    for o in spec.objectives:
        value = _value(summary, o.metric)
        values.append(o.worst() if value is None else value)
    constraints = {}
    for c in spec.constraints:
        value = _value(summary, c.metric)
        constraints[c.key] = 0.0 if value is None else c.violation(value)
    return values, constraints, flatten(summary)
