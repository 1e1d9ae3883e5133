"""Hydra config -> ``sim.SimConfig``: the only place that translates YAML into simulator types.

The top-level ``hardware``/``model``/``cluster``/``scheduler``/``router``/``cost_model`` groups
describe the main LLM pool (named ``cluster.pool_name``). More pools can be listed under
``cluster.pools.<name>`` with hardware and model given by catalog name.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from hermes_opt.compose import (
    catalog,
    deployment,
    efficiency,
    engines,
    kv_store,
    pipeline,
    speculative,
    traces,
)
from hermes_opt.compose.calibration_profile import kv_capacity_factor
from hermes_opt.compose.csv_input import read_csv

# Re-exported: callers use to_sim.number / to_sim.model_spec etc.
from hermes_opt.compose.values import (  # noqa: E402,F401
    GB,
    dtype_value,
    enum_value,
    flag,
    hardware_spec,
    model_spec,
    number,
    spec_default,
    spec_number,
)
from sim.config import (
    BatchPolicy,
    CostModelKind,
    CostModelSpec,
    PoolRole,
    PoolSpec,
    RequestTypeSpec,
    RouterPolicy,
    SchedulerSpec,
    SimConfig,
    SLOSpec,
    WorkloadSpec,
)
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError
from sim.hardware.speculative import SpecDecodeSpec
from sim.pipeline import colocation
from sim.pipeline.specs import FirstToken
from sim.request import Stage, StageKind
from sim.workload.spec import ArrivalKind, ArrivalSpec, LengthKind, LengthSpec


# --- pool parts ---------------------------------------------------------------------------
def scheduler_spec(node: Any, field: str, engine: engines.Engine | None = None,
                   memory_bytes: float = 0.0) -> SchedulerSpec:
    """The pool's scheduler: the ``scheduler`` group's values, null keys taken from the pool's
    engine (budgets, block size, memory rule), else ``SchedulerSpec``'s defaults."""
    values = (engines.with_engine_defaults(node, engine) if engine is not None
              else engines.set_values(node))
    reserve_bytes = values.pop("activation_reserve_bytes", None)
    if values.get("activation_reserve_fraction") is None and reserve_bytes and memory_bytes:
        # the engine states its activation reserve in GiB; a share of this device's memory
        values["activation_reserve_fraction"] = reserve_bytes / memory_bytes
    def word(key: str) -> str:  # a text key: null takes SchedulerSpec's default
        return str(values.get(key) or spec_default(SchedulerSpec, key))
    return SchedulerSpec(
        policy=enum_value(BatchPolicy, word("policy"), f"{field}.policy"),
        max_num_seqs=spec_number(SchedulerSpec, values, "max_num_seqs", field, integer=True),
        max_batched_tokens=spec_number(SchedulerSpec, values, "max_batched_tokens", field,
                                       integer=True),
        chunk_size_tokens=spec_number(SchedulerSpec, values, "chunk_size_tokens", field,
                                      integer=True),
        block_size_tokens=spec_number(SchedulerSpec, values, "block_size_tokens", field,
                                      integer=True),
        gpu_memory_utilization=spec_number(SchedulerSpec, values, "gpu_memory_utilization", field),
        activation_reserve_fraction=spec_number(SchedulerSpec, values,
                                                "activation_reserve_fraction", field),
        kv_watermark_fraction=spec_number(SchedulerSpec, values, "kv_watermark_fraction", field),
        kv_capacity_factor=spec_number(SchedulerSpec, values, "kv_capacity_factor", field),
        kv_memory_rule=word("kv_memory_rule"), kv_reservation=word("kv_reservation"))


def cost_model_spec(node: DictConfig, pool_hint: dict[str, Any]) -> CostModelSpec:
    spec = _cost_model_spec(node, pool_hint)
    mla_prefill = node.get("mla_prefill")
    return dataclasses.replace(spec, mla_prefill=str(mla_prefill)) if mla_prefill else spec


def _cost_model_spec(node: DictConfig, pool_hint: dict[str, Any]) -> CostModelSpec:
    kind = enum_value(CostModelKind, node.kind, "cost_model.kind")
    calibration = node.get("calibration")
    name = str(calibration.get("name", "none")) if calibration is not None else "none"
    if name == ENGINE_CALIBRATION:
        # the default: the pool's engine's efficiencies; they refine the roofline only, so other
        # cost models (constant, table) and pools without an engine keep their own terms
        if kind is CostModelKind.ROOFLINE and pool_hint.get("engine") is not None:
            return efficiency.cost_spec(node, pool_hint["engine"], pool_hint["weight_dtype"])
        name = "none"
    selected = name != "none"
    if selected and kind is not CostModelKind.ROOFLINE:
        raise ConfigError(f"calibration={calibration.get('name')!r}: calibrates cost_model=roofline; "
                          f"this config uses cost_model.kind={kind.value!r} (use calibration=none)")
    if kind is CostModelKind.CONSTANT:
        return CostModelSpec(kind=kind, constant_step_s=number(node, "step_ms", "cost_model") / 1e3)
    if kind is CostModelKind.TABLE:
        rows, source = splitwise_table(node, pool_hint)
        return CostModelSpec(kind=kind, table_rows=rows, table_source=source)
    if selected:
        return calibrated_spec(calibration, pool_hint)
    fields = RooflineParams.__dataclass_fields__
    params = {k: number(node, k, "cost_model", integer=k == "cuda_graph_max_batch")
              for k in fields if node.get(k) is not None}
    # Why: `mla_prefill` is a mode string on CostModelSpec, not a fitted RooflineParams number.
    return CostModelSpec(kind=kind, roofline=RooflineParams(**params))


LLM_ROLES = ("colocated", "prefill", "decode")
ENGINE_CALIBRATION = "engine"  # calibration=engine (default): conf/tables/engine_efficiency.yaml


def calibrated_spec(node: DictConfig, pool_hint: dict[str, Any]) -> CostModelSpec:
    """Roofline params from the selected calibration profile (``calibration=<name>``).

    A profile applies to LLM pools (roles colocated/prefill/decode) and is valid for its hardware
    and precision and for models of its family. On a mismatch
    the default (``on_mismatch: error``) is one clear error; ``cost_model.calibration.on_mismatch=
    roofline`` instead keeps the uncalibrated roofline for that pool and records why, and
    ``on_mismatch=nearest`` picks the profile by the fallback order of ``profile_select``.
    ``calibration=auto`` applies that order to every LLM pool (``CostModelSpec.calibration`` says
    which profile was chosen and why)."""
    from hermes_opt.compose.calibration_profile import all_profiles, from_mapping
    from hermes_opt.compose.profile_select import select_profile
    data = OmegaConf.to_container(node, resolve=True)
    auto = str(data.get("name")) == "auto"
    profile = None if auto else from_mapping(data, f"calibration={data.get('name')!r}")
    if pool_hint.get("role", "colocated") not in LLM_ROLES:
        # CPU, retrieval, embedding ... pools: profiles describe LLM engines, nothing to apply.
        return CostModelSpec(calibration=f"none (role {pool_hint['role']}: profiles calibrate LLM pools)")
    on_mismatch = "nearest" if auto else str(data.get("on_mismatch", "error"))
    if on_mismatch not in ("error", "roofline", "nearest"):
        raise ConfigError(f"cost_model.calibration.on_mismatch={on_mismatch!r}: allowed: error, "
                          "roofline, nearest")
    model = pool_hint.get("model")
    kind = str(model.get("kind", "decoder")) if model is not None else "decoder"
    family = ("moe" if int(model.get("num_experts", 1) or 1) > 1 else "dense") if model is not None \
        else "dense"
    if kind != "decoder":
        family = kind  # embedding / reranker pools: a profile fitted on decoders does not apply
    where = pool_hint.get("field", "cluster")

    def nearest(note: str) -> CostModelSpec:
        serving = pool_hint.get("engine")
        chosen, why = select_profile(all_profiles(), hardware=str(pool_hint.get("hardware")),
                                     precision=str(pool_hint.get("weight_dtype") or "bf16"),
                                     family=family, engine=serving.name if serving else "")
        if chosen is None:
            return CostModelSpec(calibration=why + note)
        return CostModelSpec(roofline=chosen.params, calibration=why + note,
                             frontend_latency_s=float(chosen.frontend_latency_s))
    if profile is None:
        return nearest("")
    problems = []
    if pool_hint.get("hardware") and pool_hint["hardware"] != profile.hardware:
        problems.append(f"it was measured on hardware {profile.hardware!r}, {where} uses "
                        f"{pool_hint['hardware']!r}")
    if pool_hint.get("weight_dtype") and pool_hint["weight_dtype"] != profile.precision:
        problems.append(f"it was measured at precision {profile.precision!r}, {where}.weight_dtype is "
                        f"{pool_hint['weight_dtype']!r}")
    if family != profile.model_family:
        problems.append(f"it fits {profile.model_family} models, {where} serves a {family} model")
    if not problems:
        return CostModelSpec(roofline=profile.params, calibration=profile.name,
                             frontend_latency_s=float(profile.frontend_latency_s))
    if on_mismatch == "roofline":
        return CostModelSpec(calibration=f"none (profile {profile.name} not applied: {'; '.join(problems)})")
    if on_mismatch == "nearest":
        return nearest(f" [profile {profile.name} not applied: {'; '.join(problems)}]")
    raise ConfigError(f"calibration={profile.name!r}: does not apply to {where}: {'; '.join(problems)}. "
                      "Pick a profile for this hardware/precision (conf/calibration), calibration=none, "
                      "or cost_model.calibration.on_mismatch=roofline to fall back to the roofline")


def splitwise_table(node: DictConfig, pool_hint: dict[str, Any]) -> tuple[tuple, str]:
    """Rows for TableCostModel from a Splitwise-format perf_model.csv (shipped or user-given)."""
    path = node.get("path") or str(catalog.DATA_DIR / "splitwise" / "perf_model.csv")
    frame = read_csv(path, "cost_model.path",
                     ("model", "hardware", "tensor_parallel", "batch_size", "prompt_size",
                      "token_size", "prompt_time", "token_time"))
    model, hardware = node.get("table_model"), node.get("table_hardware")
    tp = node.get("tensor_parallel") or pool_hint["tp"]
    sel = frame[(frame.model == model) & (frame.hardware == hardware) & (frame.tensor_parallel == tp)]
    if sel.empty:
        combos = sorted({(m, h, int(t)) for m, h, t in
                         frame[["model", "hardware", "tensor_parallel"]].itertuples(index=False)})
        raise ConfigError(f"cost_model: no rows for table_model={model!r} table_hardware={hardware!r} "
                          f"tp={tp} in {path}; available (model, hardware, tp): {combos}")
    grouped = sel.groupby(["batch_size", "prompt_size", "token_size"], as_index=False)[
        ["prompt_time", "token_time"]].mean()
    rows = tuple((float(r.batch_size), float(r.prompt_size), float(r.prompt_time),
                  float(r.token_time), float(r.prompt_size + r.token_size / 2))
                 for r in grouped.itertuples(index=False))
    return rows, f"{path}:{model}/{hardware}/tp{tp}"


def pool_spec(name: str, *, hardware: DictConfig, model: DictConfig, cluster: DictConfig,
              scheduler: DictConfig, router: DictConfig, cost_model: DictConfig,
              field: str, engine: DictConfig | None = None,
              spec_decoding: SpecDecodeSpec | None = None) -> PoolSpec:
    tp = spec_number(PoolSpec, cluster, "tp", field, integer=True)
    role = cluster.get("role", spec_default(PoolSpec, "role"))
    weight_dtype = cluster.get("weight_dtype", spec_default(PoolSpec, "weight_dtype"))
    hw = hardware_spec(hardware)
    # the engine runs the LLM roles; CPU, retrieval, embedding and rerank pools keep the
    # scheduler group's values and their own cost models
    serving = (engines.resolve(engine, hardware, str(weight_dtype), engines.engine_field(field))
               if engine is not None and str(role) in LLM_ROLES else None)
    sched_field = f"{field}.scheduler" if field != "cluster" else "scheduler"
    cost = cost_model_spec(cost_model, {"tp": tp, "hardware": str(hardware.name), "model": model,
                                        "field": field, "role": str(role), "engine": serving,
                                        "weight_dtype": str(weight_dtype)})
    sched = scheduler_spec(scheduler, sched_field, serving, hw.memory_bytes)
    kv_factor = kv_capacity_factor(cost_model.get("calibration"), cost.calibration)
    return PoolSpec(
        name=name, hardware=hw,
        model=model_spec(model) if model is not None else None,
        index=pipeline.index_spec(cluster.get("index"), f"{field}.index", number,
                                          enum_value),
        workers_per_node=spec_number(PoolSpec, cluster, "workers_per_node", field, integer=True),
        heavy_threshold_tokens=spec_number(PoolSpec, router, "heavy_threshold_tokens", "router",
                                           integer=True),
        heavy_fraction=spec_number(PoolSpec, router, "heavy_fraction", "router"),
        num_replicas=spec_number(PoolSpec, cluster, "num_replicas", field, integer=True),
        tp=tp, pp=spec_number(PoolSpec, cluster, "pp", field, integer=True),
        ep=spec_number(PoolSpec, cluster, "ep", field, integer=True),
        attention_dp=flag(cluster, "attention_dp", field),
        role=enum_value(PoolRole, role, f"{field}.role"),
        weight_dtype=dtype_value(weight_dtype, f"{field}.weight_dtype"),
        kv_dtype=dtype_value(cluster.get("kv_dtype", spec_default(PoolSpec, "kv_dtype")),
                             f"{field}.kv_dtype"),
        precision_fallback=str(cluster.get("precision_fallback",
                                           spec_default(PoolSpec, "precision_fallback"))),
        scheduler=sched if kv_factor == 1.0 else dataclasses.replace(sched, kv_capacity_factor=kv_factor),
        router=enum_value(RouterPolicy, router.policy, "router.policy"), cost_model=cost,
        engine=serving.label if serving is not None else "",
        spec_decoding=spec_decoding or SpecDecodeSpec(), config_path=field,
        **({"first_token": FirstToken(serving.first_token)} if serving is not None else {}))


def pools(cfg: DictConfig) -> tuple[PoolSpec, ...]:
    cluster = cfg.cluster
    derived = deployment.llm_pools(cfg)
    drafting = speculative.spec_decoding_spec(cfg)  # the main model's LLM pools decode with it
    if derived is None:
        main = [pool_spec(str(cluster.get("pool_name", "llm")), hardware=cfg.hardware,
                          model=cfg.model, cluster=cluster, scheduler=cfg.scheduler,
                          router=cfg.router, cost_model=cfg.cost_model, field="cluster",
                          engine=cfg.get("engine"), spec_decoding=drafting)]
    else:
        main = [pool_spec(p.name, hardware=p.hardware, model=cfg.model, cluster=p.cluster,
                          scheduler=p.scheduler, router=p.router or cfg.router, cost_model=cfg.cost_model,
                          field=p.field, engine=engines.pool_engine(p.engine, cfg, f"{p.field}.engine"),
                          spec_decoding=drafting)
                for p in derived]
    extra = []
    for name, node in (cluster.get("pools") or {}).items():
        field = f"cluster.pools.{name}"
        merged_sched = OmegaConf.merge(cfg.scheduler, node.get("scheduler") or {})
        hardware, host, timeout_s = pipeline.stage_placement(node, field, main[0].name, cfg, number)
        spec = pool_spec(
            str(name), hardware=hardware,
            model=(catalog.entry("model", node.get("model"), f"{field}.model")
                   if node.get("model") is not None else None), cluster=node,
            scheduler=merged_sched, router=node.get("router") or cfg.router,
            cost_model=node.get("cost_model") or cfg.cost_model, field=field,
            engine=engines.pool_engine(node, cfg, f"{field}.engine"))
        extra.append(dataclasses.replace(spec, colocate_with=host, batch_timeout_s=timeout_s))
    return colocation.apply((*main, *extra))


# --- workload ----------------------------------------------------------------------------
def length_spec(node: DictConfig, field: str) -> LengthSpec:
    if node is None:
        raise ConfigError(f"{field}: missing; give {{kind, mean, std, min_tokens, max_tokens}}")
    kind = node.get("kind", spec_default(LengthSpec, "kind"))
    return LengthSpec(kind=enum_value(LengthKind, kind, f"{field}.kind"),
                      mean=spec_number(LengthSpec, node, "mean", field),
                      std=spec_number(LengthSpec, node, "std", field),
                      min_tokens=spec_number(LengthSpec, node, "min_tokens", field, integer=True),
                      max_tokens=spec_number(LengthSpec, node, "max_tokens", field, integer=True))


def plan(node: Any, field: str, default_pool: str) -> tuple[Stage, ...]:
    if not isinstance(node, (ListConfig, list)) or not node:
        raise ConfigError(f"{field}={node!r}: must be a non-empty list of stages")
    stages = []
    for i, item in enumerate(node):
        if isinstance(item, str):
            item = {"kind": item}
        item = dict(item)
        kind = enum_value(StageKind, item.pop("kind", None), f"{field}[{i}].kind")
        pool = str(item.pop("pool", default_pool))
        extra = {}
        if "targets" in item:
            extra["targets"] = pipeline.route_targets(item.pop("targets"),
                                                              f"{field}[{i}].targets", number)
        if "mode" in item:
            extra["mode"] = pipeline.route_mode(item.pop("mode"), f"{field}[{i}].mode",
                                                        enum_value)
        for k, v in item.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"{field}[{i}].{k}={v!r}: stage knobs must be numbers")
        params = tuple(sorted((str(k), float(v)) for k, v in item.items()))
        stages.append(Stage(kind=kind, pool=pool, params=params, **extra))
    return tuple(stages)


def workload_spec(node: DictConfig, default_pool: str) -> WorkloadSpec:
    arrival = node.arrival
    trace = traces.from_config(node.get("trace"))
    types = []
    for name, rt in node.request_types.items():
        field = f"workload.request_types.{name}"
        types.append(RequestTypeSpec(
            name=str(name), plan=plan(rt.get("plan", ["generate"]), f"{field}.plan", default_pool),
            prompt_tokens=length_spec(rt.get("prompt_tokens"), f"{field}.prompt_tokens"),
            output_tokens=length_spec(rt.get("output_tokens"), f"{field}.output_tokens"),
            weight=spec_number(RequestTypeSpec, rt, "weight", field),
            prefix=pipeline.prefix_spec(rt.get("prefix"), f"{field}.prefix", number,
                                                length_spec),
            reasoning=pipeline.reasoning_spec(rt.get("reasoning"), f"{field}.reasoning",
                                                      number, length_spec),
            arrival=arrival_spec(rt.arrival, f"{field}.arrival") if rt.get("arrival") else None,
            slo=pipeline.type_slo_spec(rt.get("slo"), f"{field}.slo", number)))
    return WorkloadSpec(
        num_requests=number(node, "num_requests", "workload", integer=True),
        arrival=arrival_spec(arrival, "workload.arrival"),
        request_types=tuple(types), trace=trace)


def arrival_spec(arrival: DictConfig, field: str) -> ArrivalSpec:
    return ArrivalSpec(
        kind=enum_value(ArrivalKind, arrival.kind, f"{field}.kind"),
        rate_per_s=spec_number(ArrivalSpec, arrival, "rate_per_s", field),
        cv=spec_number(ArrivalSpec, arrival, "cv", field),
        concurrency=spec_number(ArrivalSpec, arrival, "concurrency", field, integer=True),
        think_time_s=spec_number(ArrivalSpec, arrival, "think_time_s", field),
        time_scale=spec_number(ArrivalSpec, arrival, "time_scale", field))


def slo_spec(node: DictConfig | None) -> SLOSpec:
    node = node or {}
    return SLOSpec(**{k: number(node, k, "slo", allow_inf=True)
                      for k in ("ttft_ms", "tpot_ms", "e2e_ms")})


def seed_value(cfg: DictConfig) -> int:
    """The run's seed: a whole number in 0..2**63-1 (numpy's SeedSequence takes no negatives)."""
    value = cfg.get("seed", 0)
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and float(value) == int(value) and 0 <= int(value) < 2**63)
    if not ok:
        raise ConfigError(f"seed={value!r}: must be a whole number in 0..2**63-1")
    return int(value)


def sim_config(cfg: DictConfig, *, record_requests: bool = False,
               record_trace: bool = False) -> SimConfig:
    """Build and validate the simulator config; every problem is a ConfigError."""
    try:
        main_pools = pools(cfg)
        return SimConfig(pools=main_pools, workload=workload_spec(cfg.workload, main_pools[0].name),
                         slo=slo_spec(cfg.get("slo")), record_requests=record_requests,
                         record_trace=record_trace,
                         kv_stores=kv_store.kv_store_spec(
                             cfg.get("kv_tiers"), main_pools[0].name, number, enum_value),
                         links=pipeline.link_specs(cfg.cluster.get("links"), number))
    except (AttributeError, KeyError, TypeError) as err:  # a required key missing from YAML
        raise ConfigError(f"config: {err}") from None


def numpy_safe(obj: Any) -> Any:
    """Make summaries JSON-serialisable (numpy scalars -> Python)."""
    if isinstance(obj, dict):
        return {k: numpy_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [numpy_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
