"""Typed, validated configuration of one simulation.

``hermes_opt.compose`` builds a ``SimConfig`` from Hydra configs; tests build them directly.
Every check names the field, the value and what is allowed.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from sim.cost.layer_work import MLA_PREFILL_MODES
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError, require, require_fraction, require_positive
from sim.hardware import memory
from sim.hardware.memory import KV_MEMORY_RULES, MAX_KV_FACTOR, TOTAL_FRACTION, kv_capacity_blocks
from sim.hardware.precision import PrecisionPlan, plan_precision
from sim.hardware.specs import (
    DeviceKind,
    DType,
    HardwareSpec,
    ModelKind,
    ModelSpec,
    check_parallelism,
)
from sim.hardware.speculative import SpecDecodeSpec
from sim.kvstore.specs import KVStoreSpec, TierKind
from sim.pipeline.deployment import expand_workload
from sim.pipeline.specs import FirstToken, IndexSpec, LinkSpec, PrefixSpec, ReasoningSpec
from sim.pipeline.validate import check_plan, check_retrieval_pool  # rules of the pipeline
from sim.request import Stage

# Re-exported: pool roles and router policies live in sim.roles (a leaf, shared with
# sim.pipeline.validate), batching policies in sim.scheduling.policies (one module per policy).
from sim.roles import LLM_ROLES, MODEL_ROLES, ROUTED_POOL, STAGE_ROLES, PoolRole, RouterPolicy  # noqa: F401,E501
from sim.scheduling.policies.registry import BatchPolicy, strategy_for
from sim.workload.spec import (
    ArrivalKind,
    ArrivalSpec,
    LengthKind,
    LengthSpec,
    TraceRecords,
    check_span,
    check_trace_prefix,
)

# Limits that turn an absurd count into one error instead of a multi-GB allocation or a hang.
MAX_REPLICAS = 10_000  # per pool (x tp x pp devices); the largest fleets are ~1e5 devices
# per run. Memory is bounded past 1M completed requests (metrics folded, docs/performance.md),
# so the cap bounds run time (~10 min at 10M on one core), not memory
MAX_REQUESTS = 10_000_000
# Paged-KV block size in tokens: engines use 16-256 (vLLM 16, TensorRT-LLM 32-64); larger only
# wastes KV memory in partly filled blocks, and a block must fit the KV memory of one device.
MAX_BLOCK_SIZE_TOKENS = 65_536


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
    # KV share an admission leaves free for running decodes (vLLM V0 BlockSpaceManager watermark)
    kv_watermark_fraction: float = 0.01
    kv_memory_rule: str = TOTAL_FRACTION  # how the engine sizes its KV (memory.KV_MEMORY_RULES)
    kv_capacity_factor: float = 1.0  # share of the rule's KV blocks really there (1 = as documented)
    kv_reservation: str = memory.KV_RESERVE_PROMPT  # what admission reserves (KV_RESERVATIONS)

    def validate(self, prefix: str) -> None:
        for name in ("max_num_seqs", "max_batched_tokens", "chunk_size_tokens"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, f"{prefix}.{name}", value,
                    "must be an integer >= 1")
        value = self.block_size_tokens
        require(isinstance(value, int) and not isinstance(value, bool)
                and 1 <= value <= MAX_BLOCK_SIZE_TOKENS, f"{prefix}.block_size_tokens", value,
                f"must be an integer in 1..{MAX_BLOCK_SIZE_TOKENS} (vLLM uses 16)")
        require_fraction(f"{prefix}.gpu_memory_utilization", self.gpu_memory_utilization)
        require(0 <= self.activation_reserve_fraction < self.gpu_memory_utilization,
                f"{prefix}.activation_reserve_fraction", self.activation_reserve_fraction,
                f"must be in [0, gpu_memory_utilization={self.gpu_memory_utilization})")
        value = self.kv_watermark_fraction
        require(isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and 0 <= value < 1, f"{prefix}.kv_watermark_fraction",
                value, "must be a number in [0, 1) (share of KV blocks kept free at admission)")
        value = self.kv_capacity_factor
        require(isinstance(value, (int, float)) and 0 < value <= MAX_KV_FACTOR, f"{prefix}."
                "kv_capacity_factor", value, f"must be a number in (0, {MAX_KV_FACTOR:g}]")
        require(self.kv_memory_rule in KV_MEMORY_RULES, f"{prefix}.kv_memory_rule",
                self.kv_memory_rule, f"allowed: {', '.join(KV_MEMORY_RULES)}")
        require(self.kv_reservation in memory.KV_RESERVATIONS, f"{prefix}.kv_reservation",
                self.kv_reservation, f"allowed: {', '.join(memory.KV_RESERVATIONS)}")
        require(isinstance(self.policy, BatchPolicy), f"{prefix}.policy", self.policy,
                f"allowed: {', '.join(p.value for p in BatchPolicy)}")
        strategy_for(self.policy).validate(self, prefix)  # the policy's own checks


@dataclass(frozen=True, slots=True, kw_only=True)
class CostModelSpec:
    kind: CostModelKind = CostModelKind.ROOFLINE
    roofline: RooflineParams = field(default_factory=RooflineParams)
    constant_step_s: float = 0.01  # kind=constant
    # kind=table: rows of (batch_size, prompt_tokens, prefill_ms, decode_step_ms, context_tokens)
    table_rows: tuple[tuple[float, float, float, float, float], ...] = ()
    table_source: str = ""
    # Which calibration profile set `roofline` ('' = uncalibrated defaults), or a note saying why a
    # selected profile was not applied (hardware/precision mismatch with on_mismatch=roofline).
    calibration: str = ""
    # Serving front end in front of the engine's scheduler (HTTP, tokenizer, Triton ensemble): time
    # from a request reaching a GENERATE/PREFILL stage of the pool to it reaching the scheduler. It
    # occupies no device, so TTFT and E2E include it and ITL does not. Set by a calibration profile
    # fitted on serving-level TTFT (0 = none, the default).
    frontend_latency_s: float = 0.0
    # How MLA models' prefill attends: 'decompressed' (expand cached latents to per-head K/V; what
    # vLLM and SGLang do) or 'absorbed' (attend in the latent space, as decode does).
    mla_prefill: str = "decompressed"
    # Where the terms came from, for records (e.g. the engine-efficiency entry, its fallback step
    # and its measured error band): (key, value) pairs; the simulator never reads them.
    provenance: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        require(self.mla_prefill in MLA_PREFILL_MODES, "cost_model.mla_prefill", self.mla_prefill,
                f"allowed: {', '.join(MLA_PREFILL_MODES)}")
        value = self.frontend_latency_s
        require(isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and value >= 0, "cost_model.frontend_latency_s", value,
                "must be a finite number of seconds >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSpec:
    """``num_replicas`` replicas of ``model``, each on ``tp x pp`` devices of ``hardware``."""

    name: str
    model: ModelSpec | None  # None only for cpu and retrieval pools
    hardware: HardwareSpec
    num_replicas: int = 1  # replicas; for cpu / retrieval pools: hosts (nodes)
    tp: int = 1
    pp: int = 1
    ep: int = 1  # MoE: expert-parallel groups among the tp devices of a stage
    attention_dp: bool = False  # MoE: attention data-parallel over the tp devices ("DEP" with ep=tp)
    role: PoolRole = PoolRole.COLOCATED
    weight_dtype: DType = DType.BF16
    kv_dtype: DType = DType.BF16
    # a weight format the device cannot compute: 'weight_only' (W8A16/W4A16, said so) or 'error'
    precision_fallback: str = "weight_only"
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    router: RouterPolicy = RouterPolicy.ROUND_ROBIN
    cost_model: CostModelSpec = field(default_factory=CostModelSpec)
    config_path: str = ""  # where users set this pool (error messages); default cluster.pools.<name>
    engine: str = ""  # the serving engine's name and version (results and records), '' = not stated
    index: IndexSpec | None = None  # retrieval pools: the vector index every node holds
    workers_per_node: int = 1  # retrieval pools: search workers per node, each with its core share
    heavy_threshold_tokens: int = 2048  # router heavy_light: prompt + output above this is heavy
    heavy_fraction: float = 0.5  # router heavy_light: share of replicas reserved for heavy requests
    spec_decoding: SpecDecodeSpec = field(default_factory=SpecDecodeSpec)  # method none = off
    colocate_with: str = ""  # a stage on this LLM pool's GPUs (sim.pipeline.colocation)
    reserved_bytes_per_device: float = 0.0  # LLM pools: their colocated stages' weights / index
    batch_timeout_s: float = 0.0  # non-LLM pools: how long a free server waits to fill a batch
    first_token: FirstToken = FirstToken.DECODE_STEP  # decode pools: when the client sees token one

    @property
    def field_path(self) -> str:
        return self.config_path or f"cluster.pools.{self.name}"

    def validate(self) -> None:
        prefix = self.field_path
        require(isinstance(self.num_replicas, int) and 1 <= self.num_replicas <= MAX_REPLICAS,
                f"{prefix}.num_replicas", self.num_replicas,
                f"must be an integer in 1..{MAX_REPLICAS:,} per pool")
        # the main pool's scheduler is the top-level `scheduler` group
        self.scheduler.validate("scheduler" if prefix == "cluster" else f"{prefix}.scheduler")
        require_fraction(f"{prefix}.heavy_fraction", self.heavy_fraction)
        require(isinstance(self.heavy_threshold_tokens, int) and self.heavy_threshold_tokens >= 1,
                f"{prefix}.heavy_threshold_tokens", self.heavy_threshold_tokens,
                "must be an integer >= 1")
        role = self.role
        if role in MODEL_ROLES:
            require(self.model is not None, f"{prefix}.model", None,
                    f"{role.value} pools need a model (a catalog name)")
            try:
                check_parallelism(self.model, self.tp, self.pp, self.ep, self.attention_dp,
                                  self.hardware)
            except ConfigError as err:
                raise ConfigError(f"{prefix}.{err}") from None
            _ = self.precision  # a format the device cannot run is a ConfigError here
            self.spec_decoding.check_pool(self, prefix)
            wanted = {PoolRole.EMBED: ModelKind.EMBEDDING, PoolRole.RERANK: ModelKind.RERANKER}.get(
                role, ModelKind.DECODER)
            require(self.model.kind is wanted, f"{prefix}.model", self.model.name,
                    f"{role.value} pools need a model of kind {wanted.value}, this one is "
                    f"{self.model.kind.value}")
        if role is PoolRole.CPU:
            require(self.hardware.kind is DeviceKind.CPU and bool(self.hardware.num_cores),
                    f"{prefix}.hardware", self.hardware.name,
                    "cpu pools need CPU hardware with num_cores")
        if role is PoolRole.RETRIEVAL:
            check_retrieval_pool(self, prefix)

    def kv_capacity_blocks(self) -> int:
        """KV blocks one replica holds under its engine's memory rule, less its drafter's (a
        ConfigError if the model does not fit)."""
        sched = self.scheduler
        return kv_capacity_blocks(
            self.model, self.hardware, tp=self.tp, pp=self.pp, weight_dtype=self.weight_dtype,
            kv_dtype=self.kv_dtype, block_size_tokens=sched.block_size_tokens,
            gpu_memory_utilization=sched.gpu_memory_utilization, spec=self.spec_decoding,
            activation_reserve_fraction=sched.activation_reserve_fraction, ep=self.ep,
            pool_name=self.field_path, attention_dp=self.attention_dp,
            kv_memory_rule=sched.kv_memory_rule, kv_capacity_factor=sched.kv_capacity_factor,
            reserved_bytes=self.reserved_bytes_per_device)

    @property
    def precision(self) -> PrecisionPlan:
        """What this pool's GEMMs, attention and KV cache really run in (and why)."""
        return plan_precision(self.hardware, self.weight_dtype, self.kv_dtype,
                              fallback=self.precision_fallback, field=self.field_path)

    @property
    def num_devices(self) -> int:
        """Priced units: devices (model pools), hosts (cpu, retrieval); 0 on an LLM pool's GPUs."""
        per_replica = self.tp * self.pp if self.role in MODEL_ROLES else 1
        return 0 if self.colocate_with else self.num_replicas * per_replica

    @property
    def num_accelerators(self) -> int:
        """Accelerator devices (GPUs, TPUs, ...) in this pool: the '8-GPU budget' count."""
        if self.hardware.kind is DeviceKind.CPU:
            return 0
        return self.num_devices


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTypeSpec:
    """A kind of request: its stage plan, lengths and share of the traffic."""

    name: str = "default"
    plan: tuple[Stage, ...]
    prompt_tokens: LengthSpec = field(default_factory=LengthSpec)
    output_tokens: LengthSpec = field(default_factory=LengthSpec)
    weight: float = 1.0
    prefix: PrefixSpec | None = None  # shared prefixes / sessions (KV reuse)
    reasoning: ReasoningSpec | None = None  # thinking lengths, rounds, best-of-N
    arrival: ArrivalSpec | None = None  # this type's own arrival process (else the workload's)
    # This type's own latency targets: each one set replaces the global ``slo``'s, unset ones
    # inherit it (goodput counts every request against its own type's targets).
    slo: SLOSpec | None = None

    def __post_init__(self) -> None:
        if self.slo is not None:
            where = f"workload.request_types.{self.name}.slo"
            require(isinstance(self.slo, SLOSpec), where, self.slo,
                    "must be a mapping of ttft_ms, tpot_ms, e2e_ms")
            self.slo.validate(where)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    num_requests: int = 1000
    arrival: ArrivalSpec = field(default_factory=ArrivalSpec)
    request_types: tuple[RequestTypeSpec, ...]
    trace: TraceRecords | None = None  # arrival kind trace, or lengths of kind trace

    def validate(self) -> None:
        require(isinstance(self.num_requests, int) and 1 <= self.num_requests <= MAX_REQUESTS,
                "workload.num_requests", self.num_requests,
                f"must be an integer in 1..{MAX_REQUESTS:,} (longer runs: several seeds)")
        self.arrival.validate()
        check_span(self.num_requests, self.arrival, self.trace)
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
            if rt.prefix is not None:
                rt.prefix.validate(f"workload.request_types.{rt.name}.prefix")
                if rt.prefix.pattern == "trace":
                    check_trace_prefix(rt, self.request_types, self.trace)
            if rt.reasoning is not None:
                rt.reasoning.validate(f"workload.request_types.{rt.name}.reasoning")
            if rt.arrival is not None:
                rt.arrival.validate()
                require(rt.arrival.kind not in (ArrivalKind.CLOSED_LOOP, ArrivalKind.TRACE),
                        f"workload.request_types.{rt.name}.arrival.kind", rt.arrival.kind.value,
                        "a per-type arrival must be open loop: poisson, gamma or max_load")
                require(self.arrival.kind not in (ArrivalKind.CLOSED_LOOP, ArrivalKind.TRACE),
                        "workload.arrival.kind", self.arrival.kind.value,
                        "per-type arrivals need an open-loop workload arrival")
        if uses_trace:
            require(self.trace is not None, "workload.trace", None,
                    "a trace file is needed by arrival kind 'trace' or lengths of kind 'trace'")



@dataclass(frozen=True, slots=True, kw_only=True)
class SLOSpec:
    """Per-request latency targets used for goodput (None = no target)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    def validate(self, prefix: str = "slo") -> None:
        for name in SLO_FIELDS:
            value = getattr(self, name)
            if value is not None:
                require_positive(f"{prefix}.{name}", value)

    def overridden(self, override: SLOSpec | None) -> SLOSpec:
        """These targets with every one ``override`` sets replacing ours (a per-type SLO)."""
        if override is None:
            return self
        return SLOSpec(**{name: getattr(self, name) if getattr(override, name) is None
                          else getattr(override, name) for name in SLO_FIELDS})


SLO_FIELDS = ("ttft_ms", "tpot_ms", "e2e_ms")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    pools: tuple[PoolSpec, ...]
    workload: WorkloadSpec
    slo: SLOSpec = field(default_factory=SLOSpec)
    record_requests: bool = False  # keep per-request rows in the result
    record_trace: bool = False  # keep per-step spans for a Chrome/Perfetto trace
    max_trace_spans: int = 200_000
    kv_stores: tuple[KVStoreSpec, ...] = ()  # tiered prefix-KV stores, one per LLM pool at most
    links: tuple[LinkSpec, ...] = ()  # network paths between pools (disaggregated KV hand-off)

    def __post_init__(self) -> None:
        require(len(self.pools) >= 1, "cluster.pools", len(self.pools), "needs at least one pool")
        names = [p.name for p in self.pools]
        require(len(set(names)) == len(names), "cluster.pools", names, "pool names must be unique")
        require(ROUTED_POOL not in names, "cluster.pools", ROUTED_POOL,
                f"{ROUTED_POOL!r} is reserved for stages that follow a route stage")
        for pool in self.pools:
            pool.validate()
        self.workload.validate()
        self.slo.validate()
        by_name = {p.name: p for p in self.pools}
        # the plan follows from the pools: generate on a prefill pool is prefill + decode
        object.__setattr__(self, "workload", expand_workload(self.workload, by_name))
        self._check_stores(by_name)
        for link in self.links:
            for end in (link.src_pool, link.dst_pool):
                require(end in by_name, f"cluster.links.{link.name}", end,
                        f"names no pool (pools: {sorted(by_name)})")
        for rt in self.workload.request_types:
            check_plan(rt, by_name, {s.pool for s in self.kv_stores})

    def _check_stores(self, by_name: dict[str, PoolSpec]) -> None:
        seen = set()
        for store in self.kv_stores:
            pool = by_name.get(store.pool)
            require(pool is not None and pool.role in (PoolRole.COLOCATED, PoolRole.PREFILL),
                    f"{store.field_path}.pool", store.pool,
                    "must name a colocated or prefill LLM pool (pools: "
                    f"{sorted(p.name + ':' + p.role.value for p in self.pools)})")
            require(store.pool not in seen, f"{store.field_path}.pool", store.pool,
                    "has two KV stores")
            seen.add(store.pool)
            store.check_fits(pool.num_replicas, pool.field_path)
            if store.tiers and store.tiers[0].kind is TierKind.HBM:
                require(store.tiers[0].capacity_bytes < pool.hardware.memory_bytes * pool.tp * pool.pp,
                        f"{store.tiers[0].field_path or store.field_path}.capacity_gb",
                        store.tiers[0].capacity_bytes / 1e9,
                        "the hbm prefix cache must be smaller than the replica's device memory")

    def pool(self, name: str) -> PoolSpec:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)
