"""Typed, validated configuration of one simulation.

``hermes_opt.compose`` builds a ``SimConfig`` from Hydra configs; tests build them directly.
Every check names the field, the value and what is allowed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError, require, require_fraction, require_positive
from sim.hardware.specs import DType, HardwareSpec, ModelSpec, check_parallelism
from sim.request import Stage, StageKind
from sim.workload.spec import ArrivalKind, ArrivalSpec, LengthKind, LengthSpec, TraceRecords


class BatchPolicy(enum.Enum):
    STATIC = "static"  # a batch forms when the replica is idle and runs until every member ends
    CONTINUOUS = "continuous"  # iteration-level; prefill-only steps take priority over decode
    MIXED = "mixed"  # decodes and whole new prompts in one step under the token budget
    CHUNKED = "chunked"  # Sarathi: decodes first, then prompt chunks fill the token budget


class RouterPolicy(enum.Enum):
    ROUND_ROBIN = "round_robin"
    LEAST_OUTSTANDING_TOKENS = "least_outstanding_tokens"
    JOIN_SHORTEST_QUEUE = "join_shortest_queue"


class PoolRole(enum.Enum):
    COLOCATED = "colocated"  # prefill and decode on the same replicas (GENERATE stage)


class CostModelKind(enum.Enum):
    ROOFLINE = "roofline"
    TABLE = "table"
    CONSTANT = "constant"


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerSpec:
    policy: BatchPolicy = BatchPolicy.CONTINUOUS
    max_num_seqs: int = 256
    max_batched_tokens: int = 8192
    chunk_size_tokens: int = 512  # chunked: the step's token budget (Sarathi "chunk size")
    block_size_tokens: int = 16
    gpu_memory_utilization: float = 0.9  # share of device memory for weights + KV + activations
    activation_reserve_fraction: float = 0.05  # of device memory, kept for activations/workspace

    def validate(self, prefix: str) -> None:
        for name in ("max_num_seqs", "max_batched_tokens", "chunk_size_tokens", "block_size_tokens"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, f"{prefix}.{name}", value,
                    "must be an integer >= 1")
        require_fraction(f"{prefix}.gpu_memory_utilization", self.gpu_memory_utilization)
        require(0 <= self.activation_reserve_fraction < self.gpu_memory_utilization,
                f"{prefix}.activation_reserve_fraction", self.activation_reserve_fraction,
                f"must be in [0, gpu_memory_utilization={self.gpu_memory_utilization})")
        budget = (self.chunk_size_tokens if self.policy is BatchPolicy.CHUNKED
                  else self.max_batched_tokens)
        if self.policy in (BatchPolicy.MIXED, BatchPolicy.CHUNKED):
            field_name = "chunk_size_tokens" if self.policy is BatchPolicy.CHUNKED else "max_batched_tokens"
            require(budget > self.max_num_seqs, f"{prefix}.{field_name}", budget,
                    f"must exceed max_num_seqs={self.max_num_seqs} so every decode fits in a step "
                    f"with room for prompt tokens")


@dataclass(frozen=True, slots=True, kw_only=True)
class CostModelSpec:
    kind: CostModelKind = CostModelKind.ROOFLINE
    roofline: RooflineParams = field(default_factory=RooflineParams)
    constant_step_s: float = 0.01  # kind=constant
    # kind=table: rows of (batch_size, prompt_tokens, prefill_ms, decode_step_ms, context_tokens)
    table_rows: tuple[tuple[float, float, float, float, float], ...] = ()
    table_source: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSpec:
    """``num_replicas`` replicas of ``model``, each on ``tp x pp`` devices of ``hardware``."""

    name: str
    model: ModelSpec
    hardware: HardwareSpec
    num_replicas: int = 1
    tp: int = 1
    pp: int = 1
    role: PoolRole = PoolRole.COLOCATED
    weight_dtype: DType = DType.BF16
    kv_dtype: DType = DType.BF16
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    router: RouterPolicy = RouterPolicy.ROUND_ROBIN
    cost_model: CostModelSpec = field(default_factory=CostModelSpec)
    config_path: str = ""  # where users set this pool (error messages); default cluster.pools.<name>

    @property
    def field_path(self) -> str:
        return self.config_path or f"cluster.pools.{self.name}"

    def validate(self) -> None:
        prefix = self.field_path
        require(isinstance(self.num_replicas, int) and self.num_replicas >= 1,
                f"{prefix}.num_replicas", self.num_replicas, "must be an integer >= 1")
        try:
            check_parallelism(self.model, self.tp, self.pp)
        except ConfigError as err:
            raise ConfigError(f"{prefix}.{err}") from None
        # the main pool's scheduler is the top-level `scheduler` group
        self.scheduler.validate("scheduler" if prefix == "cluster" else f"{prefix}.scheduler")

    @property
    def num_devices(self) -> int:
        return self.num_replicas * self.tp * self.pp


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTypeSpec:
    """A kind of request: its stage plan, lengths and share of the traffic."""

    name: str = "default"
    plan: tuple[Stage, ...]
    prompt_tokens: LengthSpec = field(default_factory=LengthSpec)
    output_tokens: LengthSpec = field(default_factory=LengthSpec)
    weight: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    num_requests: int = 1000
    arrival: ArrivalSpec = field(default_factory=ArrivalSpec)
    request_types: tuple[RequestTypeSpec, ...]
    trace: TraceRecords | None = None  # arrival kind trace, or lengths of kind trace

    def validate(self) -> None:
        require(isinstance(self.num_requests, int) and self.num_requests >= 1,
                "workload.num_requests", self.num_requests, "must be an integer >= 1")
        self.arrival.validate()
        require(len(self.request_types) >= 1, "workload.request_types", len(self.request_types),
                "needs at least one request type")
        uses_trace = self.arrival.kind is ArrivalKind.TRACE
        for rt in self.request_types:
            require_positive(f"workload.request_types.{rt.name}.weight", rt.weight)
            require(len(rt.plan) >= 1, f"workload.request_types.{rt.name}.plan", rt.plan,
                    "needs at least one stage")
            for name in ("prompt_tokens", "output_tokens"):
                spec: LengthSpec = getattr(rt, name)
                spec.validate(f"workload.request_types.{rt.name}.{name}")
                uses_trace |= spec.kind is LengthKind.TRACE
        if uses_trace:
            require(self.trace is not None, "workload.trace", None,
                    "a trace file is needed by arrival kind 'trace' or lengths of kind 'trace'")


@dataclass(frozen=True, slots=True, kw_only=True)
class SLOSpec:
    """Per-request latency targets used for goodput (None = no target)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    def validate(self) -> None:
        for name in ("ttft_ms", "tpot_ms", "e2e_ms"):
            value = getattr(self, name)
            if value is not None:
                require_positive(f"slo.{name}", value)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    pools: tuple[PoolSpec, ...]
    workload: WorkloadSpec
    slo: SLOSpec = field(default_factory=SLOSpec)
    record_requests: bool = False  # keep per-request rows in the result
    record_trace: bool = False  # keep per-step spans for a Chrome/Perfetto trace
    max_trace_spans: int = 200_000

    def __post_init__(self) -> None:
        require(len(self.pools) >= 1, "cluster.pools", len(self.pools), "needs at least one pool")
        names = [p.name for p in self.pools]
        require(len(set(names)) == len(names), "cluster.pools", names, "pool names must be unique")
        for pool in self.pools:
            pool.validate()
        self.workload.validate()
        self.slo.validate()
        served = {(p.name, StageKind.GENERATE) for p in self.pools if p.role is PoolRole.COLOCATED}
        for rt in self.workload.request_types:
            for stage in rt.plan:
                if (stage.pool, stage.kind) not in served:
                    raise ConfigError(
                        f"workload.request_types.{rt.name}.plan: stage {stage.kind.value!r} names "
                        f"pool {stage.pool!r}, which does not serve it (pools: "
                        f"{sorted(p.name + ':' + p.role.value for p in self.pools)})")

    def pool(self, name: str) -> PoolSpec:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)
