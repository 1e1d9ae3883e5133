"""Study definitions: ``studies/<name>.yaml`` plus command-line overrides -> ``StudySpec``.

A study is a base scenario (``hermes-sim`` overrides), a search space whose parameter names are
override paths, objectives, SLO constraints, an optional budget and the run settings. Command-line
``key=value`` pairs set study fields (``n_trials=100``); any other key is a ``hermes-sim``
override added to the base scenario (``workload.arrival.rate_per_s=20``, ``pricing=...``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hermes_opt.compose import catalog
from hermes_opt.study import study_file
from hermes_opt.study.args import apply_override, merge_overrides
from hermes_opt.study.coverage import CoverageSpec, parse_coverage
from hermes_opt.study.execution import (
    CapacitySpec,
    ExecutorSpec,
    ScreeningSpec,
    parse_executor,
    parse_price_ranges,
    parse_screening,
)
from hermes_opt.study.objective import (
    SLO_TOKENS_PER_USD,
    Budget,
    Constraint,
    Objective,
    check_metric,
    parse_constraint,
)
from hermes_opt.study.space import SearchSpace, parse_space
from sim.errors import ConfigError, require

SAMPLERS = ("auto", "tpe", "nsga2", "random", "grid")
# Fields that change how a study runs but not what it computes: they may differ on resume.
RUN_FIELDS = ("n_trials", "n_jobs", "storage", "report", "heartbeat_interval_s", "grace_period_s",
              "description", "executor", "coverage", "price_ranges")
STUDY_FIELDS = ("name", "description", "base", "space", "objectives", "constraints", "budget",
                "n_trials", "batch_size", "batches_in_flight", "seed", "replicates", "sampler",
                "n_jobs", "storage", "report", "evaluator", "heartbeat_interval_s",
                "grace_period_s", "capacity", "n_startup_trials", "screening", "executor",
                "headroom", "redundancy", "coverage", "price_ranges")
MAX_HEADROOM = 10.0
# Upper bounds of a study's counts: a million trials is weeks of simulation on a workstation, a
# thousand replicates is beyond any spread estimate, a heartbeat once a day is none.
COUNT_LIMITS = {"n_trials": 1_000_000, "batch_size": 10_000, "replicates": 1_000, "top_k": 10_000,
                "heartbeat_interval_s": 86_400}
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
REDUNDANCY_CHOICES = ("none", "n+1")


def nsga2_population(batch_size: int) -> int:
    """NSGA-II generation size: whole batches, at least 16 (smaller populations measured worse
    than random search in benchmarks/search_quality.py)."""
    return batch_size * max(1, -(-16 // batch_size))


def available() -> list[str]:  # the package's studies and the user catalog's (catalog.roots)
    return catalog.options(catalog.STUDIES_GROUP)


def kind(name: str) -> str:
    """``optimization`` (the default) or what a study file's ``kind:`` says (e.g. validation)."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else \
        catalog.path(catalog.STUDIES_GROUP, name)  # may raise: an unreadable user catalog
    if path is None or not path.is_file():
        return "optimization"  # load() reports the unknown study with the list of valid ones
    try:
        node = study_file.read(path)
    except ConfigError:  # a bad file: load() gives the precise message
        return "optimization"
    return str(node.get("kind", "optimization")) if isinstance(node, DictConfig) else "optimization"


@dataclass(frozen=True, slots=True, kw_only=True)
class StudySpec:
    name: str
    description: str = ""
    base: tuple[str, ...] = ()
    space: SearchSpace = field(default_factory=SearchSpace)
    objectives: tuple[Objective, ...] = (Objective(metric=SLO_TOKENS_PER_USD),)
    constraints: tuple[Constraint, ...] = ()
    budget: Budget | None = None
    n_trials: int = 32
    batch_size: int = 8
    # 2: the next batch is sampled while the previous one still runs (no idle workers at batch
    # boundaries, but the sampler learns one batch later: worse trials per evaluation on the
    # default study, see docs/opt.md). Part of the definition: it changes which trials are asked.
    batches_in_flight: int = 1
    # TPE's random start-up trials; None = max(10, batch_size). Small discrete spaces with a
    # sharp optimum need more (benchmarks/dse_search.py: 10 -> 88.5% of the grid optimum on
    # dse_codegen, 48 -> 100%)
    n_startup_trials: int | None = None
    seed: int = 0
    replicates: int = 1
    sampler: str = "auto"
    n_jobs: int | None = None  # None: every core
    storage: str | None = None  # None: sqlite file runs/<name>/study.db
    top_k: int = 5
    # report.pareto: two metrics whose feasible Pareto front the report draws (single-objective
    # studies too), e.g. (ttft_ms.p99, slo_tokens_per_usd); () = the objectives / cost
    report_pareto: tuple[str, ...] = ()
    # report.compare: metrics shown for every distinct simulated design (a case table, e.g. the
    # kv_storage study's E2E p50/p90/p99 per tier design); () = no such table
    report_compare: tuple[str, ...] = ()
    evaluator: str | None = None  # "module:function"; None = the real simulator
    heartbeat_interval_s: int = 10
    grace_period_s: int = 60
    capacity: CapacitySpec = field(default_factory=CapacitySpec)
    screening: ScreeningSpec = field(default_factory=ScreeningSpec)  # hermes_opt.study.execution
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    # the SLOs must also hold at headroom x the demand, and with one replica of every pool down
    # (redundancy: n+1); hermes_opt.run.checks
    headroom: float = 1.0
    redundancy: str = "none"
    # trials after n_trials for hardware/engine/architecture choices simulated too rarely
    coverage: CoverageSpec = field(default_factory=CoverageSpec)  # hermes_opt.study.coverage
    price_ranges: tuple[tuple[str, float, float], ...] = ()  # report.robustness: device, $/h range

    def __post_init__(self) -> None:
        # the name is a folder under runs/: ".." or "None" (from name=null) would write elsewhere
        require(isinstance(self.name, str) and STUDY_NAME.fullmatch(self.name) is not None, "name",
                self.name, "must be 1-100 letters, digits, '_', '-', '.', starting with one of the first two")
        require(len(self.objectives) >= 1, "objectives", [], "needs at least one objective")
        require(len({o.metric for o in self.objectives}) == len(self.objectives), "objectives",
                [o.metric for o in self.objectives], "lists a metric twice")
        for key, most in COUNT_LIMITS.items():
            value = getattr(self, key)
            require(isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= most,
                    key, value, f"must be an integer in 1..{most:,}")
        require(self.n_startup_trials is None or (
            isinstance(self.n_startup_trials, int) and not isinstance(self.n_startup_trials, bool)
            and 1 <= self.n_startup_trials <= 100_000), "n_startup_trials", self.n_startup_trials,
            "must be null or an integer in 1..100000")
        require(isinstance(self.batches_in_flight, int) and not isinstance(self.batches_in_flight, bool)
                and self.batches_in_flight in (1, 2),
                "batches_in_flight", self.batches_in_flight, "must be 1 or 2")
        require(self.grace_period_s > self.heartbeat_interval_s, "grace_period_s",
                self.grace_period_s, f"must exceed heartbeat_interval_s={self.heartbeat_interval_s}")
        require(isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= 0,
                "seed", self.seed, "must be an integer >= 0")
        require(self.n_jobs is None or (isinstance(self.n_jobs, int) and self.n_jobs >= 1),
                "n_jobs", self.n_jobs, "must be null (all cores) or an integer >= 1")
        require(self.sampler in SAMPLERS, "sampler", self.sampler, f"allowed: {', '.join(SAMPLERS)}")
        if self.sampler == "nsga2":
            require(self.multi_objective, "sampler", self.sampler,
                    "nsga2 is for multi-objective studies; use tpe or random for one objective")
        if self.sampler == "grid":  # every point once: each key needs a finite set of values
            self.space.check_enumerable()
        require(not self.screening.enabled or all(o.metric != "capacity_tokens_per_usd"
                                                  for o in self.objectives), "screening.enabled",
                True, "not available with the capacity_tokens_per_usd objective")
        if self.evaluator is not None:
            require(":" in self.evaluator, "evaluator", self.evaluator, "must be 'module:function'")
        require(isinstance(self.headroom, (int, float)) and not isinstance(self.headroom, bool)
                and 1 <= self.headroom <= MAX_HEADROOM, "headroom", self.headroom,
                f"must be a number in 1..{MAX_HEADROOM:g} (1.3 = the SLOs hold at 1.3x the "
                f"demand; 1 = no headroom check)")
        require(self.redundancy in REDUNDANCY_CHOICES, "redundancy", self.redundancy,
                f"allowed: {', '.join(REDUNDANCY_CHOICES)}")
        if self.stress_checked:
            require(self.evaluator is None, "evaluator", self.evaluator,
                    "headroom and redundancy checks need the built-in simulator (evaluator: null)")
            require(not any(o.metric.startswith("capacity_") for o in self.objectives),
                    "headroom", self.headroom, "not available with a capacity objective (it "
                    "measures the headroom itself)")

    @property
    def stress_checked(self) -> bool:
        return self.headroom > 1 or self.redundancy != "none"

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def replicate_seeds(self) -> list[int]:
        """Workload seeds shared by every trial (common random numbers make comparisons fair)."""
        return [self.seed + r for r in range(self.replicates)]

    @property
    def resolved_sampler(self) -> str:
        """The sampler ``auto`` means for a *new* study (a resumed one keeps what it started
        with, stored in the study: see hermes_opt.study.sampling.open_study)."""
        if self.sampler != "auto":
            return self.sampler
        # benchmarks/search_quality.py: with ~80 trials, multi-objective TPE reached 87% of the
        # exhaustive front's hypervolume, NSGA-II 70-82%; NSGA-II needs many generations.
        if self.multi_objective and self.n_trials >= 10 * nsga2_population(self.batch_size):
            return "nsga2"
        return "tpe"

    def definition(self) -> dict[str, Any]:
        """What the study computes (stored with it; a resumed study must match)."""
        return {
            "base": list(self.base),
            "space": [{"name": p.name, "kind": p.kind, "low": p.low, "high": p.high,
                       "step": p.step, "log": p.log, "choices": list(p.choices),
                       "when": [[n, list(v)] for n, v in p.when]} for p in self.space.parameters],
            "objectives": [[o.metric, o.direction] for o in self.objectives],
            "constraints": [c.key for c in self.constraints],
            "budget": None if self.budget is None else [self.budget.max_usd_per_hour,
                                                        self.budget.max_devices],
            "batch_size": self.batch_size, "seed": self.seed, "replicates": self.replicates,
            "sampler": self.sampler, "evaluator": self.evaluator,
            # only when not the default, so studies stored before the key existed still resume
            **({"batches_in_flight": self.batches_in_flight} if self.batches_in_flight != 1 else {}),
            **({"n_startup_trials": self.n_startup_trials}
               if self.n_startup_trials is not None else {}),
            **({"screening": self.screening.definition()} if self.screening.enabled else {}),
            **({"headroom": self.headroom} if self.headroom != 1 else {}),
            **({"redundancy": self.redundancy} if self.redundancy != "none" else {}),
        }

    @property
    def config_hash(self) -> str:
        text = json.dumps(self.definition(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def storage_url(self) -> str:
        if self.storage:
            return self.storage
        return f"sqlite:///{Path('runs') / self.name / 'study.db'}"

    def run_dir(self) -> Path:
        return Path("runs") / self.name


def study_path(name: str) -> Path:
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        path = Path(name)
        require(path.is_file(), "study", name, "no such file")
        return path
    allowed = available()
    require(name in allowed, "study", name, f"unknown study; available: {', '.join(allowed)}")
    return catalog.path(catalog.STUDIES_GROUP, name)  # the user's may shadow a shipped one


def split_overrides(args: list[str]) -> tuple[list[str], list[str]]:
    """``key=value`` args -> (study field overrides, hermes-sim overrides for the base)."""
    study, sim = [], []
    for arg in args:
        require("=" in arg, "argument", arg, "expected key=value (e.g. n_trials=50 or "
                "workload.arrival.rate_per_s=20)")
        key = arg.split("=", 1)[0]
        (study if key.split(".", 1)[0] in STUDY_FIELDS else sim).append(arg)
    return study, sim


def load(name: str = "default", overrides: list[str] | None = None, *,
         without_space: bool = False) -> StudySpec:
    """The study ``name`` (or a YAML path) with ``key=value`` overrides applied. Capacity mode
    passes ``without_space``: its deployment is fixed by the overrides, nothing is searched."""
    path = study_path(name)
    node = study_file.read(path)  # size and alias limits, one line for a bad file
    if OmegaConf.is_dict(node) and not node:  # 0 bytes or only comments load as {}
        raise ConfigError(f"study={str(path)!r}: empty study file; a study needs at least: "
                          f"space (the parameters to search), usually also objectives and "
                          f"constraints (see docs/opt.md)")
    require(OmegaConf.is_dict(node), "study", str(path), "must be a YAML mapping")
    raw = OmegaConf.to_container(node, resolve=True)
    study_args, sim_args = split_overrides(list(overrides or []))
    for arg in study_args:
        apply_override(raw, arg)
    raw["base"] = merge_overrides(list(raw.get("base") or []), sim_args)
    raw.setdefault("name", path.stem)
    if without_space:
        raw["space"] = {}
    else:  # nothing to search: every trial would simulate the same deployment
        space = raw.get("space")
        require(space not in (None, {}), "space", space if space is not None else {},
                "a study needs at least one parameter to search (for a single run use "
                "hermes-sim <overrides>; for the highest arrival rate meeting the SLOs, "
                "hermes-opt capacity)")
    return from_dict(raw)


def from_dict(raw: dict) -> StudySpec:
    unknown = sorted(set(raw) - set(STUDY_FIELDS))
    require(not unknown, "study", unknown, f"unknown fields; allowed: {', '.join(STUDY_FIELDS)}")
    base = raw.get("base") or []
    require(isinstance(base, list) and all(isinstance(b, str) and "=" in b for b in base), "base",
            base, "must be a list of hermes-sim overrides like 'model=llama3_1_70b'")
    objectives = raw.get("objectives") or [{"metric": SLO_TOKENS_PER_USD}]
    require(isinstance(objectives, list), "objectives", objectives,
            "must be a list of {metric, direction}")
    objs = []
    for i, item in enumerate(objectives):
        if isinstance(item, str):
            item = {"metric": item}
        require(isinstance(item, dict) and "metric" in item, f"objectives[{i}]", item,
                "must be {metric: <name>, direction: maximize|minimize}")
        objs.append(Objective(metric=item["metric"], direction=item.get("direction", "maximize")))
    constraints = raw.get("constraints") or []
    require(isinstance(constraints, list), "constraints", constraints,
            "must be a list like ['ttft_ms.p99 <= 1000']")
    budget = raw.get("budget")
    require(budget is None or isinstance(budget, dict), "budget", budget,
            "must be {max_usd_per_hour: <number>, max_devices: <int>}")
    if budget:
        unknown_b = sorted(set(budget) - {"max_usd_per_hour", "max_devices"})
        require(not unknown_b, "budget", unknown_b, "allowed: max_usd_per_hour, max_devices")
    report, pareto, compare = _report_keys(raw.get("report") or {})
    capacity = raw.get("capacity") or {}
    param_names = set((raw.get("space") or {}).keys())
    for b in base:  # a parameter also fixed in the base would be silently overridden
        require(b.split("=", 1)[0].lstrip("+~") not in param_names, "base", b,
                "sets a key that is also a search parameter; remove one of them")
    try:
        return StudySpec(
            name=raw.get("name"), description=str(raw.get("description") or ""),
            base=tuple(base), space=parse_space(raw.get("space")), objectives=tuple(objs),
            constraints=tuple(parse_constraint(c, i) for i, c in enumerate(constraints)),
            budget=Budget(**budget) if budget else None,
            n_trials=raw.get("n_trials", 32), batch_size=raw.get("batch_size", 8),
            batches_in_flight=raw.get("batches_in_flight", 1),
            n_startup_trials=raw.get("n_startup_trials"),
            seed=raw.get("seed", 0), replicates=raw.get("replicates", 1),
            sampler=str(raw.get("sampler", "auto")), n_jobs=raw.get("n_jobs"),
            storage=raw.get("storage"), top_k=report.get("top_k", 5), report_pareto=pareto,
            report_compare=compare,
            evaluator=raw.get("evaluator"),
            heartbeat_interval_s=raw.get("heartbeat_interval_s", 10),
            grace_period_s=raw.get("grace_period_s", 60),
            capacity=CapacitySpec(**capacity), screening=parse_screening(raw.get("screening")),
            executor=parse_executor(raw.get("executor")),
            headroom=raw.get("headroom", 1.0), redundancy=str(raw.get("redundancy", "none")),
            coverage=parse_coverage(raw.get("coverage")),
            price_ranges=parse_price_ranges(raw.get("price_ranges")))
    except TypeError as err:
        raise ConfigError(f"study: {err}") from None


def _report_keys(report: Any) -> tuple[dict, tuple[str, ...], tuple[str, ...]]:
    """The ``report`` mapping, its ``pareto`` pair and its ``compare`` metrics, checked."""
    require(isinstance(report, dict), "report", report,
            "must be {top_k: <int>, pareto: [x, y], compare: [metric, ...]}")
    unknown = sorted(set(report) - {"top_k", "pareto", "compare"})
    require(not unknown, "report", unknown, "allowed: top_k, pareto, compare")
    compare = report.get("compare") or []
    require(isinstance(compare, (list, tuple)) and len(compare) <= 12, "report.compare", compare,
            "must be a list of at most 12 metric names, e.g. [e2e_ms.p50, e2e_ms.p99]")
    compare = tuple(check_metric(m, f"report.compare[{i}]") for i, m in enumerate(compare))
    pareto = report.get("pareto") or []
    require(isinstance(pareto, (list, tuple)) and len(pareto) in (0, 2), "report.pareto", pareto,
            "must be two metric names [x, y], e.g. [ttft_ms.p99, slo_tokens_per_usd]")
    return report, tuple(check_metric(m, f"report.pareto[{i}]") for i, m in enumerate(pareto)), \
        compare


def to_raw(spec: StudySpec) -> dict[str, Any]:
    """The inverse of ``from_dict`` (stored with the study so reports need only the storage)."""
    space = {}
    for p in spec.space.parameters:
        item: dict[str, Any] = {"type": p.kind}
        if p.kind == "categorical":
            item["choices"] = list(p.choices)
        else:
            item.update(low=p.low, high=p.high, log=p.log)
            if p.step is not None:
                item["step"] = p.step
        if p.when:
            item["when"] = {name: list(values) for name, values in p.when}
        space[p.name] = item
    budget = None if spec.budget is None else {
        k: v for k, v in (("max_usd_per_hour", spec.budget.max_usd_per_hour),
                          ("max_devices", spec.budget.max_devices)) if v is not None}
    return {
        "name": spec.name, "description": spec.description, "base": list(spec.base),
        "space": space, "objectives": [{"metric": o.metric, "direction": o.direction}
                                       for o in spec.objectives],
        "constraints": [c.key for c in spec.constraints], "budget": budget,
        "n_trials": spec.n_trials, "batch_size": spec.batch_size,
        "batches_in_flight": spec.batches_in_flight, "n_startup_trials": spec.n_startup_trials,
        "seed": spec.seed,
        "replicates": spec.replicates, "sampler": spec.sampler, "n_jobs": spec.n_jobs,
        "storage": spec.storage, "report": {"top_k": spec.top_k, "pareto": list(spec.report_pareto),
                   **({"compare": list(spec.report_compare)} if spec.report_compare else {})},
        "evaluator": spec.evaluator,
        "heartbeat_interval_s": spec.heartbeat_interval_s, "grace_period_s": spec.grace_period_s,
        "capacity": {"param": spec.capacity.param, "low": spec.capacity.low,
                     "high": spec.capacity.high, "rel_tol": spec.capacity.rel_tol},
        "screening": spec.screening.to_raw(), "executor": spec.executor.to_raw(),
        "headroom": spec.headroom, "redundancy": spec.redundancy,
        "price_ranges": {name: [low, high] for name, low, high in spec.price_ranges},
    }
