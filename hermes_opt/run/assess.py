"""After the trials: what a buyer asks of the answer before trusting it (docs/opt.md "The
decision"). Stored with the study (user attribute ``assessment``) so the report reads it.

* **Measured headroom.** For the best distinct configurations (``TOP``) and the best of the
  next ``OTHER_KINDS`` hardware kinds, the highest multiple of the demand at which the SLOs still hold and the
  deployment keeps up: a bisection on the load factor (``sim.variants.with_load``) to
  ``REL_TOL``, starting from the analytical tier's capacity estimate, on the study's first
  workload seed. Capacity / demand is the headroom the report states.
* **Load table.** The lowest-cost deployment at ``MULTIPLES`` x the demand (with the study's
  headroom, and a spare replica per pool under ``redundancy: n+1``): each measured candidate's
  replicas scaled by the load over its measured capacity, priced, and the cheapest verified by
  simulation at that load (a replica added per pool while it fails, ``MAX_SIZING_PROBES``).

Probes are independent simulations, submitted to the study's pool a round at a time (every
unfinished candidate's next probe), so they run in parallel and their results do not depend on
the order they come back in.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import optuna

from hermes_opt.compose import pricing
from hermes_opt.compose.candidate import Candidate, compose, record
from hermes_opt.run.checks import replace_config
from hermes_opt.run.pool import StopFlag
from hermes_opt.run.worker import Infeasible, simulate_overrides
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.objective import KEEPS_UP, Constraint, named_constraints, score
from sim import variants
from sim.analytic.estimate import estimate
from sim.errors import ConfigError

ASSESSMENT = "assessment"  # study user attribute
VERSION = 1
TOP = 3
OTHER_KINDS = 3  # besides the hardware kinds of the TOP configurations
MULTIPLES = (1.0, 2.0, 5.0)
REL_TOL = 0.05
MAX_MULTIPLE = 16.0
MAX_SIZING_PROBES = 4


@dataclass(frozen=True, slots=True)
class Probe:
    """One simulation: a trial's deployment, resized (pool -> replicas) and under load x demand."""

    key: str  # what it is for: "capacity:<trial>" or "size:<multiple>"
    overrides: tuple[str, ...]
    load: float
    replicas: tuple[tuple[str, int], ...] = ()


@functools.lru_cache(maxsize=32)
def _composed(overrides: tuple[str, ...]) -> Candidate:
    """A candidate composed once per process: every probe of it only resizes and re-loads it
    (variants are new configs; the cached one is never changed)."""
    return compose(list(overrides))


def run_probe(probe: Probe, seed: int, constraints: tuple[Constraint, ...]) -> dict[str, Any]:
    """In a worker: simulate the probe; whether it holds (SLOs and keeping up), what it costs."""
    started = time.perf_counter()
    try:
        candidate = _composed(probe.overrides)
        config = candidate.config
        if probe.replicas:
            config = variants.with_replicas(config, dict(probe.replicas))
        if probe.load != 1.0:
            config = variants.with_load(config, probe.load)
        cost = pricing.deployment_cost(config, candidate.cfg.pricing)
        summary = simulate_overrides.run(replace_config(candidate, config), seed)
    except (ConfigError, Infeasible) as err:
        return {"probe": probe, "holds": False, "reason": str(err),
                "sim_s": time.perf_counter() - started}
    outcome = score([summary], (), constraints)
    return {"probe": probe, "holds": outcome.feasible, "usd_per_hour": cost.usd_per_hour,
            "layout": record(config.pools, candidate.cfg)["layout"],
            "devices": sum(p.num_devices for p in config.pools),
            "metrics": {c.metric: outcome.metrics.get(c.metric) for c in constraints},
            "keeps_up": outcome.constraints[KEEPS_UP], "sim_s": time.perf_counter() - started}


@dataclass(slots=True)
class _Bisection:
    """The capacity multiple of one candidate: ``low`` holds, ``high`` does not (None: unknown)."""

    trial: int
    overrides: tuple[str, ...]
    low: float
    guess: float
    high: float | None = None
    probes: int = 0

    def next_load(self) -> float | None:
        if self.high is None:
            if self.low >= MAX_MULTIPLE:
                return None
            return min(MAX_MULTIPLE, max(self.guess, self.low * (1 + 2 * REL_TOL))
                       if self.probes == 0 else self.low * 2)
        if self.high / self.low <= 1 + REL_TOL:
            return None
        return math.sqrt(self.low * self.high)

    def update(self, load: float, holds: bool) -> None:
        self.probes += 1
        if holds:
            self.low = max(self.low, load)
        else:
            self.high = load if self.high is None else min(self.high, load)


def candidates(study: optuna.Study, spec: StudySpec) -> list[dict[str, Any]]:
    """The feasible simulated trials to measure: the best ``TOP`` distinct configurations and
    the best of the next ``OTHER_KINDS`` hardware kinds (by the study's single objective)."""
    objective = spec.objectives[0]
    rows = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        result = t.user_attrs.get("result") or {}
        named = named_constraints(t)
        if result.get("status") != "ok" or not named or any(v > 0 for v in named.values()):
            continue
        deployment = result.get("deployment") or {}
        kinds = tuple(sorted({p["hardware"] for p in deployment.get("pools", [])
                              if p.get("accelerated_model")}))
        rows.append({"trial": t.number, "value": t.values[0], "kinds": kinds,
                     "std": (result.get("spread") or {}).get(objective.metric, 0.0),
                     "overrides": (*spec.base, *result["overrides"]), "deployment": deployment,
                     "metrics": result.get("metrics") or {}})
    sign = -1 if objective.direction == "maximize" else 1
    rows.sort(key=lambda r: (sign * r["value"], r["trial"]))
    chosen: dict[tuple, dict] = {}
    for row in rows:  # distinct as a buyer sees them: layout, engine, precision, batching
        if len(chosen) < TOP:
            chosen.setdefault(_distinct(row["deployment"]), row)
    best_kind: dict[tuple[str, ...], dict] = {}
    for row in rows:
        best_kind.setdefault(row["kinds"], row)
    # the best of the next few hardware kinds (a design-space study has dozens of mixes; the
    # alternatives that matter to the decision are the closest ones)
    taken = {r["kinds"] for r in chosen.values()}
    others = [r for k, r in best_kind.items() if k not in taken][:OTHER_KINDS]
    for row in others:
        chosen.setdefault(_distinct(row["deployment"]), row)
    return sorted(chosen.values(), key=lambda r: (sign * r["value"], r["trial"]))


def _distinct(deployment: dict) -> tuple:
    return (deployment.get("layout"), *((p.get("engine"), p.get("weight_dtype"), p.get("batching"))
                                        for p in deployment.get("pools", [])))


def price_facts(row: dict) -> dict[str, Any]:
    """What the robustness analysis varies (hermes_opt.report.robustness): the $/hour of each
    pool and of the rest, and each device's price with its provenance, as this candidate was
    priced (a price set on the command line included)."""
    prices = _composed(row["overrides"]).cfg.pricing.usd_per_hour
    metrics = row["metrics"]
    pools, skus = {}, {}
    for p in row["deployment"].get("pools", []):
        usd = metrics.get(f"cost_breakdown_usd_per_hour.{p['name']}", 0.0)
        pools[p["name"]] = {"hardware": p["hardware"], "devices": p["devices"], "usd_per_hour": usd}
        entry = prices[p["hardware"]]
        skus[p["hardware"]] = {"usd_per_hour": float(entry.value),
                               **{k: str(entry.get(k)) for k in ("trust", "provider",
                                                                  "date_observed")
                                  if entry.get(k) is not None}}
    other = metrics.get("cost_usd_per_hour", 0.0) - sum(p["usd_per_hour"] for p in pools.values())
    return {"usd_per_hour": metrics.get("cost_usd_per_hour"), "pools": pools, "prices": skus,
            "other_usd_per_hour": max(other, 0.0),
            "objective": row["value"], "objective_std": row["std"],
            "error_band": row["deployment"].get("error_band"),
            "efficiency_entries": sorted({(p.get("efficiency") or {}).get("entry") or
                                          f"none:{p['hardware']}"
                                          for p in row["deployment"].get("pools", [])
                                          if p.get("accelerated_model")})}


def _guess(overrides: tuple[str, ...], demand: float) -> float:
    """The analytical tier's capacity over the demand (2 when it does not model the scenario)."""
    try:
        est = estimate(_composed(overrides).config)
    except ConfigError:
        return 2.0
    if not est.supported or demand <= 0 or est.capacity_rps <= 0:
        return 2.0
    return est.capacity_rps / demand


def _round(pool: Any, stop: StopFlag, jobs: list[Probe], seed: int,
            constraints: tuple[Constraint, ...]) -> dict[tuple, dict] | None:
    """One round of probes on the pool; results keyed by (key, load, replicas); None when
    stopped."""
    for probe in jobs:
        pool.submit(run_probe, probe, seed, constraints)
    out = {}
    for _ in jobs:
        result = pool.next_result(stop)
        if result is None:
            return None
        p = result["probe"]
        out[(p.key, p.load, p.replicas)] = result
    return out


def measure_capacity(rows: list[dict], spec: StudySpec, pool: Any, stop: StopFlag,
                     demand: float) -> dict[int, dict] | None:
    """Each candidate's capacity as a multiple of the demand: {trial: {low, high, probes}}.
    Trials passed the study's own headroom check, so the bisection starts above it."""
    seed = spec.replicate_seeds[0]
    runs = {r["trial"]: _Bisection(r["trial"], r["overrides"], low=spec.headroom,
                                   guess=_guess(r["overrides"], demand)) for r in rows}
    while True:
        jobs = [Probe(f"capacity:{b.trial}", b.overrides, load) for b in runs.values()
                if (load := b.next_load()) is not None]
        if not jobs:
            break
        results = _round(pool, stop, jobs, seed, spec.constraints)
        if results is None:
            return None
        for job in jobs:
            runs[int(job.key.split(":")[1])].update(job.load,
                                                    results[(job.key, job.load, ())]["holds"])
    return {t: {"low": b.low, "high": b.high, "probes": b.probes} for t, b in runs.items()}


def _sized(row: dict, capacity_low: float, need: float, spare: int) -> dict[str, Any]:
    """A candidate resized for ``need`` x the demand: replicas per pool, estimated $/h."""
    scale = need / capacity_low
    replicas = {p["name"]: p["replicas"] if scale <= 1 else
                math.ceil(p["replicas"] * scale - 1e-9) + spare
                for p in row["deployment"].get("pools", [])}
    return _priced(row, replicas)


def _priced(row: dict, replicas: dict[str, int]) -> dict[str, Any]:
    """The trial's cost and devices with its pools at ``replicas`` (a pool's cost and devices
    scale with its replicas; KV tiers and other parts are kept as they are)."""
    metrics, pools = row["metrics"], row["deployment"].get("pools", [])
    usd = sum(v for k, v in metrics.items() if k.startswith("cost_breakdown_usd_per_hour.")
              and k.split(".", 1)[1] not in replicas)
    devices = 0
    for p in pools:
        ratio = replicas[p["name"]] / p["replicas"]
        usd += metrics.get(f"cost_breakdown_usd_per_hour.{p['name']}", 0.0) * ratio
        devices += round(p["devices"] * ratio)
    return {"trial": row["trial"], "replicas": replicas, "usd_per_hour": usd, "devices": devices}


def size_for_loads(rows: list[dict], capacity: dict[int, dict], spec: StudySpec, pool: Any,
                   stop: StopFlag) -> list[dict] | None:
    """The load table (module docstring): one row per multiple of the demand."""
    seed = spec.replicate_seeds[0]
    spare = 1 if spec.redundancy == "n+1" else 0
    best = rows[0]
    table = [{"multiple": 1.0, "trial": best["trial"],
              "layout": best["deployment"].get("layout"), "verified": True,
              "usd_per_hour": best["metrics"].get("cost_usd_per_hour"),
              "devices": best["deployment"].get("num_devices"), "basis": "the recommendation"}]
    state = {}
    for m in MULTIPLES[1:]:
        options = sorted((_sized(r, capacity[r["trial"]]["low"], m * spec.headroom, spare)
                          for r in rows), key=lambda o: (o["usd_per_hour"], o["trial"]))
        budget = spec.budget
        options = [o for o in options if budget is None or not budget.violation(
            o["usd_per_hour"], o["devices"])]
        state[m] = {"options": options, "tries": 0, "done": None}
    by_trial = {r["trial"]: r for r in rows}
    while True:
        jobs = {}
        for m, s in state.items():
            if s["done"] is None and s["options"] and s["tries"] < MAX_SIZING_PROBES:
                o = s["options"][0]
                jobs[m] = Probe(f"size:{m:g}", by_trial[o["trial"]]["overrides"],
                                m * spec.headroom, tuple(sorted(o["replicas"].items())))
        if not jobs:
            break
        results = _round(pool, stop, list(jobs.values()), seed, spec.constraints)
        if results is None:
            return None
        for m, job in jobs.items():
            s, got = state[m], results[(job.key, job.load, job.replicas)]
            s["tries"] += 1
            if got["holds"]:
                s["done"] = {"multiple": m, "trial": s["options"][0]["trial"],
                             "layout": got["layout"], "usd_per_hour": got["usd_per_hour"],
                             "devices": got["devices"], "verified": True,
                             "basis": f"trial {s['options'][0]['trial']} resized, simulated at "
                                      f"{m * spec.headroom:g}x the demand"}
            else:  # one more replica per pool, unless another option is now cheaper
                o = s["options"][0]
                s["options"][0] = _priced(by_trial[o["trial"]],
                                          {k: v + 1 for k, v in o["replicas"].items()})
                s["options"].sort(key=lambda x: (x["usd_per_hour"], x["trial"]))
    for m, s in state.items():
        if s["done"] is not None:
            table.append(s["done"])
        else:
            why = ("no candidate fits the budget" if not s["options"] else
                   f"no resized candidate held the SLOs within {MAX_SIZING_PROBES} simulations")
            table.append({"multiple": m, "trial": None, "layout": None, "usd_per_hour": None,
                          "devices": None, "verified": False, "basis": why})
    return table


def assess(spec: StudySpec, study: optuna.Study, pool: Any, stop: StopFlag) -> dict | None:
    """Measure and store the assessment (module docstring); the stored one when the study has
    not changed since. None when interrupted (the trials are safe; the next run measures)."""
    trials = len(study.get_trials(deepcopy=False))
    stored = study.user_attrs.get(ASSESSMENT)
    if stored and stored.get("version") == VERSION and stored.get("trials") == trials:
        return stored
    base = {"version": VERSION, "trials": trials, "seed": spec.replicate_seeds[0],
            "headroom_required": spec.headroom, "redundancy": spec.redundancy}
    if spec.multi_objective or spec.evaluator is not None:
        why = ("several objectives: no single recommendation to measure"
               if spec.multi_objective else "a custom evaluator: the simulator is not what runs")
        result = {**base, "skipped": why}
        study.set_user_attr(ASSESSMENT, result)
        return result
    rows = candidates(study, spec)
    if not rows:
        result = {**base, "skipped": "no feasible trial"}
        study.set_user_attr(ASSESSMENT, result)
        return result
    demand = rows[0]["deployment"].get("offered_rate_per_s") or 0.0
    started = time.perf_counter()
    capacity = measure_capacity(rows, spec, pool, stop, demand)
    table = size_for_loads(rows, capacity, spec, pool, stop) if capacity is not None else None
    if table is None:
        return None
    result = {**base, "demand_rate_per_s": demand,
              "candidates": [{"trial": r["trial"], "kinds": list(r["kinds"]),
                              "layout": r["deployment"].get("layout"),
                              "capacity_multiple": capacity[r["trial"]],
                              **price_facts(r)} for r in rows],
              "load_table": table, "wall_s": time.perf_counter() - started}
    study.set_user_attr(ASSESSMENT, result)
    return result
