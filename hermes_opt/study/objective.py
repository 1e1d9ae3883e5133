"""Objectives and SLO constraints read from a simulation summary.

The default objective is SLO-constrained tokens per dollar: the steady-state output tokens/s of
requests that met their SLOs (``sim.metrics.steady``: warm-up and drain excluded) divided by the
deployment's cost per second. SLOs are *constraints* (Optuna's
convention: a value <= 0 is feasible), not penalties folded into the objective, so samplers can
tell "infeasible" from "bad". Constraint values are normalised by their bound so that several
constraints are on one scale when a sampler sums their violations.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import ConfigError, require

if TYPE_CHECKING:  # the worker imports this module and must not load Optuna
    import optuna

SLO_TOKENS_PER_USD = "slo_tokens_per_usd"
SLO_ANSWERS_PER_USD = "slo_answers_per_usd"  # final answers: one per request, whatever N
# Constraint every trial carries: the deployment keeps up with its demand (sim.metrics.stability)
KEEPS_UP = "keeps_up"
UNDECIDED_VIOLATION = 1.0  # a run too short to tell, or with nothing completed
# Constraints of the stress checks (hermes_opt.run.checks): "headroom 1.3x", "redundancy n+1"
CHECK_PREFIXES = ("headroom ", "redundancy ")


def check_keys(headroom: float, redundancy: str) -> tuple[str, ...]:
    """The stress checks' constraint names, in the order every trial carries them."""
    return ((f"headroom {headroom:g}x",) if headroom > 1 else ()) + (
        (f"redundancy {redundancy}",) if redundancy != "none" else ())
DIRECTIONS = ("maximize", "minimize")
LATENCIES = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "ttfat_ms")  # ttfat: reasoning workloads
STATS = ("mean", "p50", "p90", "p99")
SCALARS = ("requests_completed", "requests_rejected", "duration_s", "requests_per_s",
           "input_tokens_per_s", "output_tokens_per_s", "total_tokens_per_s",
           "goodput_requests_per_s", "goodput_output_tokens_per_s", "slo_attainment",
           "preemptions", "cost_usd_per_hour", "output_tokens_per_usd", "goodput_tokens_per_usd",
           "num_devices", "num_accelerators", SLO_TOKENS_PER_USD,
           "capacity_tokens_per_usd", "capacity_rate_per_s",  # capacity_*: run.capacity
           SLO_ANSWERS_PER_USD)
# Summary sections whose keys depend on the scenario (pool and stage names, request types):
# checked against the first real summary instead of statically.
DYNAMIC_PREFIXES = ("pools.", "stages.", "stages_by_type.", "request_types.",
                    "cost_breakdown_usd_per_hour.", "kv_tiers.", "kv_lookups.", "links.",
                    "generated_tokens.", "steady_state.")
KNOWN_METRICS = SCALARS + tuple(f"{lat}.{stat}" for lat in LATENCIES for stat in STATS)
# A metric that is NaN (no request completed) violates its constraint by this much.
NAN_VIOLATION = 1e6
# Optuna's system-attribute key of constraints (optuna.study._constrained_optimization
# ._CONSTRAINTS_KEY, checked by a test): the list under it, and one value under "<key>:<name>" each
CONSTRAINTS_KEY = "constraints"
# metric paths may contain stage names like generate@llm and tier names like kv_tier:llm/dram
_CONSTRAINT = re.compile(r"^\s*(?P<metric>[A-Za-z0-9_.@:/\-]+)\s*(?P<op><=|>=)\s*(?P<bound>\S+)\s*$")


def slo_tokens_per_usd(summary: dict) -> float:
    """Steady-state goodput tokens/s (``sim.metrics.steady``) per dollar per second. Summaries
    written before the steady window existed fall back to the whole-run goodput."""
    usd_per_s = summary["cost_usd_per_hour"] / 3600
    steady = summary.get("steady_state")
    rate = (steady["goodput_output_tokens_per_s"] if steady is not None
            else summary["goodput_output_tokens_per_s"])
    return rate / usd_per_s if usd_per_s > 0 else 0.0


def slo_answers_per_usd(summary: dict) -> float:
    """Final answers meeting every SLO per dollar, in the steady window: one per request, however
    many best-of-N samples and thinking tokens it took (``slo_attainment x requests / window_s``
    of ``steady_state``, per $/s). Times the workload's mean answer length, it is the tokens per
    $ of final answers (the answer lengths are the same draws in every candidate)."""
    usd_per_s = summary["cost_usd_per_hour"] / 3600
    steady = summary.get("steady_state") or {}
    if usd_per_s <= 0 or not steady.get("window_s"):
        return 0.0
    return steady["slo_attainment"] * steady["requests"] / steady["window_s"] / usd_per_s


def check_metric(name: Any, field: str) -> str:
    require(isinstance(name, str) and (name in KNOWN_METRICS or name.startswith(DYNAMIC_PREFIXES)),
            field, name, f"unknown metric; allowed: {', '.join(KNOWN_METRICS)} or a path under "
                         f"{', '.join(p.rstrip('.') for p in DYNAMIC_PREFIXES)}")
    return name


def metric(summary: dict, name: str) -> float:
    """Value of a dotted metric path in a summary (``ttft_ms.p99``); KeyError if absent."""
    if name == SLO_TOKENS_PER_USD:
        return slo_tokens_per_usd(summary)
    if name == SLO_ANSWERS_PER_USD:
        return slo_answers_per_usd(summary)
    node: Any = summary
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(name)
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise KeyError(name)
    return float(node)


def metric_or_fail(summary: dict, name: str, field: str) -> float:
    try:
        return metric(summary, name)
    except KeyError:
        pass
    # A wrong name inside a section (a request type, pool or stage that is not in this scenario,
    # a stat that does not exist): list that section's keys, not the whole summary's.
    node: Any = summary
    parts = name.split(".")
    for depth, part in enumerate(parts):  # noqa: B007  depth is read after the loop (how far it matched)
        if not isinstance(node, dict) or part not in node:
            break
        node = node[part]
    else:
        if isinstance(node, dict):
            raise ConfigError(f"{field}={name!r}: names a section of the summary, not a number; "
                              f"under it: {', '.join(name + '.' + k for k in flatten(node))}")
        depth = 0
    if depth > 0 and isinstance(node, dict) and node:
        if depth == 1 and parts[0] == "request_types":
            raise ConfigError(f"{field}={name!r}: this scenario's workload has no request type "
                              f"{parts[1]!r}; its types: {', '.join(node)}")
        raise ConfigError(f"{field}={name!r}: this scenario's summary has no {parts[depth]!r} "
                          f"under {'.'.join(parts[:depth])!r}; it has: {', '.join(sorted(node))}")
    raise ConfigError(f"{field}={name!r}: this scenario's summary has no such metric; it has: "
                      f"{', '.join(sorted(flatten(summary)))}")


def flatten(summary: dict, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf as ``a.b.c -> value`` (for trials.csv and error messages)."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[path] = float(value)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Objective:
    metric: str
    direction: str = "maximize"

    def __post_init__(self) -> None:
        check_metric(self.metric, "objectives.metric")
        require(self.direction in DIRECTIONS, f"objectives[{self.metric}].direction",
                self.direction, f"allowed: {', '.join(DIRECTIONS)}")

    def worst(self) -> float:
        """Placeholder told for a candidate that could not be simulated (it is also marked
        infeasible, so constrained samplers rank it below every feasible one). Summary metrics
        are non-negative, so 0 is the worst value of a maximised one."""
        return 0.0 if self.direction == "maximize" else 1e18


@dataclass(frozen=True, slots=True, kw_only=True)
class Constraint:
    metric: str
    op: str  # "<=" or ">="
    bound: float

    def __post_init__(self) -> None:
        check_metric(self.metric, "constraints")
        require(self.op in ("<=", ">="), f"constraints[{self.metric}]", self.op, "allowed: <=, >=")
        require(math.isfinite(self.bound), f"constraints[{self.metric}]", self.bound,
                "bound must be a finite number")

    @property
    def key(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    def violation(self, value: float) -> float:
        """<= 0 when satisfied; otherwise the excess relative to the bound."""
        if math.isnan(value):
            return NAN_VIOLATION
        excess = value - self.bound if self.op == "<=" else self.bound - value
        return excess / abs(self.bound) if self.bound else excess


def parse_constraint(text: Any, index: int) -> Constraint:
    match = _CONSTRAINT.match(text) if isinstance(text, str) else None
    require(match is not None, f"constraints[{index}]", text,
            "write '<metric> <= <number>' or '<metric> >= <number>', e.g. 'ttft_ms.p99 <= 1000'")
    try:
        bound = float(match["bound"])
    except ValueError:
        raise ConfigError(f"constraints[{index}]={text!r}: bound {match['bound']!r} is not a "
                          f"number") from None
    return Constraint(metric=match["metric"], op=match["op"], bound=bound)


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Checked before simulating: a candidate over budget is infeasible and never simulated."""

    max_usd_per_hour: float | None = None
    max_devices: int | None = None

    def __post_init__(self) -> None:
        if self.max_usd_per_hour is not None:
            require(self.max_usd_per_hour > 0, "budget.max_usd_per_hour", self.max_usd_per_hour,
                    "must be > 0")
        if self.max_devices is not None:
            require(isinstance(self.max_devices, int) and self.max_devices >= 1,
                    "budget.max_devices", self.max_devices, "must be an integer >= 1")

    def violation(self, usd_per_hour: float, num_devices: int) -> str | None:
        if self.max_usd_per_hour is not None and usd_per_hour > self.max_usd_per_hour:
            return (f"over budget: {usd_per_hour:.2f} $/hour > budget.max_usd_per_hour="
                    f"{self.max_usd_per_hour:g}")
        if self.max_devices is not None and num_devices > self.max_devices:
            return f"over budget: {num_devices} devices > budget.max_devices={self.max_devices}"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    """A trial's outcome aggregated over its replicates."""

    values: tuple[float, ...]  # objective values told to Optuna (replicate means)
    constraints: dict[str, float]  # constraint key -> violation (<= 0 feasible)
    metrics: dict[str, float]  # every numeric metric: replicate mean
    spread: dict[str, float]  # objectives and constrained metrics: replicate std

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.constraints.values())


def score(summaries: list[dict], objectives: tuple[Objective, ...],
          constraints: tuple[Constraint, ...]) -> Score:
    """Mean over replicates of every metric; constraints apply to the mean (e.g. the mean of the
    replicates' p99 TTFT), and the spread is reported next to it."""
    flats = [flatten(s) | {SLO_TOKENS_PER_USD: metric(s, SLO_TOKENS_PER_USD)} for s in summaries]
    keys = sorted(set.intersection(*(set(f) for f in flats)))
    means: dict[str, float] = {}
    for key in keys:
        column = np.array([f[key] for f in flats])
        means[key] = float(np.nan if np.isnan(column).all() else np.nanmean(column))
    spread = {}
    # sorted: a set's order follows string hashing, which differs between runs (trials.csv columns)
    for name in sorted({o.metric for o in objectives} | {c.metric for c in constraints}):
        column = np.array([metric_or_fail(s, name, "metric") if name != SLO_TOKENS_PER_USD
                           else f[SLO_TOKENS_PER_USD] for s, f in zip(summaries, flats)])
        spread[name] = float(np.nanstd(column)) if len(column) > 1 and not np.isnan(column).all() \
            else 0.0
        means.setdefault(name, float(np.nanmean(column)) if not np.isnan(column).all() else np.nan)
    values = []
    for obj in objectives:
        value = means[obj.metric]
        values.append(obj.worst() if math.isnan(value) else value)
    violations = {c.key: c.violation(means[c.metric]) for c in constraints}
    violations[KEEPS_UP] = keeps_up_violation(summaries)
    return Score(values=tuple(values), constraints=violations, metrics=means, spread=spread)


def keeps_up_violation(summaries: list[dict]) -> float:
    """The ``keeps_up`` constraint over replicates (the worst one): (1 - tolerance) - completion
    ratio when the run could tell (<= 0: it keeps up), ``UNDECIDED_VIOLATION`` when it could not
    or nothing completed, -1 for a burst (no demand rate) or a summary without the check (a
    custom evaluator's)."""
    worst = -1.0
    for summary in summaries:
        stability = (summary.get("steady_state") or {}).get("stability")
        if not stability or stability["status"] == "burst":
            continue
        if stability["status"] in ("keeps_up", "falls_behind"):
            value = (1 - stability["tolerance"]) - stability["completion_ratio"]
        else:
            value = UNDECIDED_VIOLATION
        worst = max(worst, value)
    return worst


def named_constraints(trial: Any) -> dict[str, float]:
    """A told trial's constraint values by name. ``FrozenTrial.constraints`` also holds the
    numbered copies ("0", "1", ...) written for optuna-dashboard (``set_constraints``)."""
    return {k: v for k, v in (trial.constraints or {}).items() if not k.isdigit()}


def set_constraints(trial: optuna.Trial, constraints: dict[str, float]) -> None:
    """What ``Trial.set_constraint`` stores, without its read-before-write of every system
    attribute (~13 ms per constraint on SQLite, a third of the driver's time per trial). The key
    format is Optuna's; tests read it back through ``FrozenTrial.constraints``. The same values
    also go under the plain key as a list in constraint order, the form optuna-dashboard reads to
    tell feasible trials from SLO-breaking ones (``FrozenTrial.constraints`` then lists them twice,
    once named and once as "0", "1", ...: feasibility and the samplers' ordering of violations are
    unchanged; readers that show names skip the numbered copies, ``named_constraints``)."""
    values = []
    for key, value in constraints.items():
        value = float(value)
        if math.isnan(value):
            raise ValueError(f"constraint {key!r} is NaN")
        trial.storage.set_trial_system_attr(trial._trial_id, f"{CONSTRAINTS_KEY}:{key}", value)
        values.append(value)
    trial.storage.set_trial_system_attr(trial._trial_id, CONSTRAINTS_KEY, values)
