"""Builders for pipeline tests: catalog specs (shipped in hermes_opt/conf) and small configs.

A uniquely named module (not ``conftest``) so tests can import it even when tests/sim's conftest is
loaded in the same session; there is no ``__init__.py`` here, as in tests/sim.
"""

from __future__ import annotations

from hermes_opt.compose import catalog, to_sim
from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
    LengthKind,
    LengthSpec,
    PoolRole,
    PoolSpec,
    RequestTypeSpec,
    SchedulerSpec,
    SimConfig,
    Stage,
    StageKind,
    WorkloadSpec,
)


def hw(name: str):
    return to_sim.hardware_spec(catalog.entry("hardware", name))


def model(name: str):
    return to_sim.model_spec(catalog.entry("model", name))


def fixed(n: int) -> LengthSpec:
    return LengthSpec(kind=LengthKind.FIXED, mean=n)


def lognormal(mean: float, std: float, lo: int = 4, hi: int = 4096) -> LengthSpec:
    return LengthSpec(kind=LengthKind.LOGNORMAL, mean=mean, std=std, min_tokens=lo, max_tokens=hi)


def poisson(rate: float) -> ArrivalSpec:
    return ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=rate)


def max_load() -> ArrivalSpec:
    return ArrivalSpec(kind=ArrivalKind.MAX_LOAD)


def llm_pool(name: str = "llm", *, model_name: str = "llama3_1_8b", replicas: int = 1, tp: int = 1,
             role: PoolRole = PoolRole.COLOCATED, policy: BatchPolicy = BatchPolicy.CHUNKED,
             **kw) -> PoolSpec:
    sched = kw.pop("scheduler", SchedulerSpec(policy=policy, chunk_size_tokens=2048))
    return PoolSpec(name=name, model=model(model_name), hardware=hw(kw.pop("hardware", "h100_sxm")),
                    num_replicas=replicas, tp=tp, role=role, scheduler=sched, **kw)


def cpu_pool(name: str = "cpu", hosts: int = 1, hardware: str = "xeon_6980p") -> PoolSpec:
    return PoolSpec(name=name, model=None, hardware=hw(hardware), num_replicas=hosts,
                    role=PoolRole.CPU)


def stage(kind: str, pool: str, **params) -> Stage:
    return Stage(kind=StageKind(kind), pool=pool,
                 params=tuple(sorted((k, float(v)) for k, v in params.items())))


def config(pools, plan, *, n: int = 200, arrival=None, prompt=None, output=None, **kw) -> SimConfig:
    rt_kw = {k: kw.pop(k) for k in ("prefix", "reasoning") if k in kw}
    rt = RequestTypeSpec(name=kw.pop("type_name", "t"), plan=tuple(plan),
                         prompt_tokens=prompt or fixed(200), output_tokens=output or fixed(50),
                         **rt_kw)
    return SimConfig(pools=tuple(pools), workload=WorkloadSpec(
        num_requests=n, arrival=arrival or poisson(5.0), request_types=(rt,)), **kw)


