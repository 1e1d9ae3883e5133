"""What a trial must survive beyond its SLOs at today's demand (docs/opt.md "Headroom,
redundancy and stability").

* **Stability, always.** A run too short to tell whether the deployment keeps up
  (``sim.metrics.stability``: ``too_short``) is simulated again with as many requests as the
  verdict asks for, at most ``MAX_EXTENDED_REQUESTS`` (or 4x the run, if larger); if it still
  cannot tell, the summary says so and the ``keeps_up`` constraint fails it
  (``hermes_opt.study.objective``). Trace workloads replay a fixed set of requests: never extended.
* **Headroom** (study key ``headroom``, e.g. 1.3): the SLOs (and keeping up) also hold at
  ``headroom`` x the demand, simulated with the study's first workload seed.
* **Redundancy** (``redundancy: n+1``): they hold at the demand with one replica of every pool
  down. A pool of one replica has no spare and fails the check without a simulation.

The extra simulations run only for a trial that is feasible at the demand (the others fail
anyway), in the worker that simulated it, so they parallelise like trials. Each check becomes one
constraint (<= 0 feasible): the worst normalised violation of the study's constraints and
``keeps_up`` under that stress; ``NOT_CHECKED`` when the trial already fails at the demand.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hermes_opt.compose.candidate import Candidate
from hermes_opt.study.objective import Constraint, Objective, check_keys, score
from sim import variants

MAX_EXTENDED_REQUESTS = 20_000
MAX_EXTENSIONS = 2
NOT_CHECKED = 1.0  # the check's constraint value when the trial fails at the demand already
REDUNDANCY_CHOICES = ("none", "n+1")


def needs_longer_run(summary: dict) -> int:
    """Requests a longer run needs to tell whether it keeps up (0: this one could tell)."""
    stability = (summary.get("steady_state") or {}).get("stability") or {}
    return int(stability.get("requests_to_tell", 0)) if stability.get("status") == "too_short" \
        else 0


def extended(candidate: Candidate, summary: dict, simulate_config) -> dict:
    """``summary``, or that of a longer run when it could not tell whether the deployment keeps
    up; ``simulate_config(config) -> summary`` runs the same seed."""
    config = candidate.config
    workload = config.workload
    if workload.trace is not None:
        return summary
    start = workload.num_requests
    cap = max(MAX_EXTENDED_REQUESTS, 4 * start)
    for _ in range(MAX_EXTENSIONS):
        wanted = needs_longer_run(summary)
        if not wanted or workload.num_requests >= cap:
            break
        n = min(cap, max(wanted, 2 * workload.num_requests))
        config = variants.with_num_requests(config, n)
        workload = config.workload
        summary = simulate_config(config)
    if workload.num_requests != start:
        summary = dict(summary)
        steady = dict(summary["steady_state"])
        steady["stability"] = {**steady["stability"], "extended_from_requests": start,
                               "extended_to_requests": workload.num_requests}
        summary["steady_state"] = steady
    return summary


@dataclass(frozen=True, slots=True, kw_only=True)
class Checks:
    """The study's stress checks (picklable: it travels to loky and Dask workers)."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    headroom: float = 1.0
    redundancy: str = "none"

    @property
    def keys(self) -> tuple[str, ...]:
        """Constraint names, in the order every trial carries them."""
        return check_keys(self.headroom, self.redundancy)

    def run(self, candidate: Candidate, summaries: list[dict], seeds: list[int],
            simulate_config) -> dict[str, Any]:
        """``{"constraints": {key: violation}, "<key>": {what was simulated}}``; the demand's
        summaries decide whether the stresses are simulated at all."""
        out: dict[str, Any] = {"constraints": {}}
        if not self.keys:
            return out
        if not score(summaries, self.objectives, self.constraints).feasible:
            for key in self.keys:
                out["constraints"][key] = NOT_CHECKED
                out[key] = {"checked": False, "reason": "fails at the demand already"}
            return out
        stresses = ([variants.with_load(candidate.config, self.headroom)] if self.headroom > 1
                    else []) + ([variants.one_replica_down(candidate.config)]
                                if self.redundancy != "none" else [])
        for key, config in zip(self.keys, stresses, strict=True):
            if isinstance(config, str):  # nothing to spare
                out["constraints"][key] = NOT_CHECKED
                out[key] = {"checked": False, "reason": config}
                continue
            # the first workload seed only: a pass/fail check on a long run, at a third of the
            # cost of every replicate (docs/opt.md)
            stressed = [simulate_config(config, seed) for seed in seeds[:1]]
            outcome = score(stressed, self.objectives, self.constraints)
            worst = max(outcome.constraints.values())
            out["constraints"][key] = worst
            out[key] = {"checked": True, "feasible": worst <= 0, "violation": worst,
                        "metrics": {c.metric: outcome.metrics.get(c.metric)
                                    for c in self.constraints},
                        "keeps_up": outcome.constraints.get("keeps_up")}
        return out


def replace_config(candidate: Candidate, config) -> Candidate:
    return dataclasses.replace(candidate, config=config)


def stability_record(summaries: list[dict]) -> dict[str, Any]:
    """What the report says about keeping up: the worst replicate's verdict."""
    verdicts = [(s.get("steady_state") or {}).get("stability") for s in summaries]
    verdicts = [v for v in verdicts if v]
    if not verdicts:
        return {}
    order = {"none_completed": 0, "too_short": 1, "falls_behind": 2, "keeps_up": 3, "burst": 4}
    worst = min(verdicts, key=lambda v: (order.get(v["status"], 0), v["completion_ratio"]))
    return {k: worst[k] for k in ("status", "completion_ratio", "requests_to_tell",
                                  "extended_to_requests") if k in worst}
