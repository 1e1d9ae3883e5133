"""Shared builders and fixtures for the simulator-core tests.

Everything is built directly from ``sim`` dataclasses (no YAML catalogs). The builders are plain
functions so that a subprocess can load this file by path (see ``load_helpers``) and build the
same configs; tests reach them through the ``sim_build`` fixture.

This directory deliberately has no ``__init__.py``: with one, pytest's default (prepend) import
mode would import this directory as a top-level package named ``sim`` and shadow the real ``sim``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from pathlib import Path

import pytest

from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
    CostModelKind,
    CostModelSpec,
    DType,
    HardwareSpec,
    LengthKind,
    LengthSpec,
    ModelSpec,
    PoolSpec,
    RequestTypeSpec,
    RouterPolicy,
    SchedulerSpec,
    SimConfig,
    SLOSpec,
    Stage,
    StageKind,
    WorkloadSpec,
)
from sim.hardware.memory import kv_bytes_per_token_per_device, weight_bytes_per_device

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# --- hardware and models (values from public datasheets / HF config.json) ---------------


def h100() -> HardwareSpec:
    return HardwareSpec(name="h100_sxm", memory_bytes=80e9, mem_bw_bytes_per_s=3.35e12,
                        bf16_flops_per_s=989.4e12, fp8_flops_per_s=1978.9e12,
                        scaleup_bw_bytes_per_s=450e9, host_bw_bytes_per_s=64e9)


def llama_8b(**overrides) -> ModelSpec:
    fields = dict(name="llama3_1_8b", num_layers=32, hidden_size=4096, num_heads=32,
                  num_kv_heads=8, head_dim=128, intermediate_size=14336, vocab_size=128256,
                  max_context_tokens=131072)
    fields.update(overrides)
    return ModelSpec(**fields)


def llama_70b(**overrides) -> ModelSpec:
    fields = dict(name="llama3_1_70b", num_layers=80, hidden_size=8192, num_heads=64,
                  num_kv_heads=8, head_dim=128, intermediate_size=28672, vocab_size=128256,
                  max_context_tokens=131072)
    fields.update(overrides)
    return ModelSpec(**fields)


def utilization_for_blocks(num_blocks: int, *, model: ModelSpec | None = None,
                           hardware: HardwareSpec | None = None, tp: int = 1, pp: int = 1,
                           block_size_tokens: int = 16, reserve: float = 0.05,
                           weight_dtype: DType = DType.BF16, kv_dtype: DType = DType.BF16) -> float:
    """``gpu_memory_utilization`` that leaves exactly ``num_blocks`` KV blocks per replica."""
    model, hardware = model or llama_8b(), hardware or h100()
    weights = weight_bytes_per_device(model, tp, pp, weight_dtype)
    block = kv_bytes_per_token_per_device(model, tp, pp, kv_dtype) * block_size_tokens
    return reserve + (weights + (num_blocks + 0.5) * block) / hardware.memory_bytes


# --- workloads and configs -----------------------------------------------------------------


def fixed(n: int) -> LengthSpec:
    return LengthSpec(kind=LengthKind.FIXED, mean=n)


def uniform(lo: int, hi: int) -> LengthSpec:
    """Integers roughly uniform on [lo, hi]."""
    mean = (lo + hi) / 2
    return LengthSpec(kind=LengthKind.UNIFORM, mean=mean, std=(hi - lo) / (2 * math.sqrt(3)),
                      min_tokens=lo, max_tokens=hi)


def poisson(rate_per_s: float) -> ArrivalSpec:
    return ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=rate_per_s)


def max_load() -> ArrivalSpec:
    return ArrivalSpec(kind=ArrivalKind.MAX_LOAD)


def make_pool(*, name: str = "llm", model: ModelSpec | None = None,
              hardware: HardwareSpec | None = None, num_replicas: int = 1, tp: int = 1,
              policy: BatchPolicy = BatchPolicy.CONTINUOUS,
              router: RouterPolicy = RouterPolicy.ROUND_ROBIN, cost: CostModelSpec | None = None,
              weight_dtype: DType = DType.BF16, kv_dtype: DType = DType.BF16,
              **scheduler) -> PoolSpec:
    return PoolSpec(name=name, model=model or llama_8b(), hardware=hardware or h100(),
                    num_replicas=num_replicas, tp=tp, router=router,
                    weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                    scheduler=SchedulerSpec(policy=policy, **scheduler),
                    cost_model=cost or CostModelSpec())


def constant_cost(step_s: float) -> CostModelSpec:
    return CostModelSpec(kind=CostModelKind.CONSTANT, constant_step_s=step_s)


def make_config(*, pool: PoolSpec | None = None, num_requests: int = 200,
                arrival: ArrivalSpec | None = None, prompt: LengthSpec | int = 256,
                output: LengthSpec | int = 64, record_requests: bool = True,
                record_trace: bool = False, slo: SLOSpec | None = None,
                **workload) -> SimConfig:
    """One colocated pool serving one request type."""
    pool = pool or make_pool()
    prompt = fixed(prompt) if isinstance(prompt, int) else prompt
    output = fixed(output) if isinstance(output, int) else output
    rt = RequestTypeSpec(name="chat", plan=(Stage(kind=StageKind.GENERATE, pool=pool.name),),
                         prompt_tokens=prompt, output_tokens=output)
    return SimConfig(pools=(pool,),
                     workload=WorkloadSpec(num_requests=num_requests,
                                           arrival=arrival or poisson(5.0),
                                           request_types=(rt,), **workload),
                     slo=slo or SLOSpec(), record_requests=record_requests,
                     record_trace=record_trace)


def determinism_config() -> SimConfig:
    """A config with every source of randomness on: used in-process and by a subprocess."""
    pool = make_pool(num_replicas=2, policy=BatchPolicy.CHUNKED,
                     router=RouterPolicy.LEAST_OUTSTANDING_TOKENS, max_num_seqs=32,
                     chunk_size_tokens=512, gpu_memory_utilization=utilization_for_blocks(400))
    return make_config(pool=pool, num_requests=300,
                       arrival=ArrivalSpec(kind=ArrivalKind.GAMMA, rate_per_s=12.0, cv=2.0),
                       prompt=LengthSpec(kind=LengthKind.LOGNORMAL, mean=600, std=400,
                                         max_tokens=3000),
                       output=LengthSpec(kind=LengthKind.LOGNORMAL, mean=150, std=120,
                                         max_tokens=1000),
                       record_requests=False)


# --- the one test-only reach into the simulator's internals -------------------------------


def run_checked(config: SimConfig, seed: int = 0, *, checkpoints_s=(), every_event: bool = False):
    """Run ``config`` like ``simulate`` does, checking KV-block conservation on every replica at
    each checkpoint time (or after every distinct event time) and at the end.

    An admitted request holds its whole prompt's blocks from admission (``blocks_in_use_check``
    counts them); mid-run, a replica inside a step with decodes has also reserved the blocks one
    decode step fills, read from the pending ``_end_step`` event, so the check is exact at every
    event boundary:
    ``used_blocks == blocks_in_use_check() + in-flight reservation``.
    Returns ``(run, result)`` where ``result`` is the ``SimResult`` ``simulate`` would return.
    """
    from sim.metrics.summary import summarize
    from sim.results import SimResult, request_rows
    from sim.scheduling.replica import Replica
    from sim.simulation import _Run

    run = _Run(config, seed)
    run.start()
    engine = run.engine
    checks = busy_checks = 0

    def check(final: bool) -> None:
        nonlocal checks, busy_checks
        checks += 1
        busy_checks += any(rep.admitted for pool in run.pools.values() for rep in pool.replicas)
        pending = [(cb, args) for (_, _, _, cb, args) in engine._heap
                   if getattr(cb, "__func__", None) is Replica._end_step]
        for pool in run.pools.values():
            for rep in pool.replicas:
                where = f"{rep.label} at t={engine.now_s!r}"
                assert 0 <= rep.used_blocks <= rep.total_blocks, \
                    f"{where}: used_blocks={rep.used_blocks} outside [0, {rep.total_blocks}]"
                reserved = 0  # prompt blocks are held from admission (counted by the recount)
                for cb, (_chunks, with_decode) in pending:
                    if cb.__self__ is rep and with_decode:
                        reserved += rep._decode_blocks_needed(1)
                recount = rep.blocks_in_use_check()
                assert rep.used_blocks == recount + reserved, \
                    (f"{where}: used_blocks={rep.used_blocks} but requests hold {recount} "
                     f"+ {reserved} reserved by the step in flight")
                if rep.reserve_full:  # 'full_sequence' reservation: the sum is exact and fits
                    full = sum(rep.full_blocks(r) for r in rep.admitted.values())
                    assert rep.reserved_full_blocks == full, \
                        f"{where}: reserved_full_blocks={rep.reserved_full_blocks} != {full}"
                    assert full <= rep.total_blocks - rep.watermark, f"{where}: over-reserved"
                if final:
                    assert rep.used_blocks == 0, f"{where}: {rep.used_blocks} blocks leaked"
                    assert not rep.admitted and not rep.waiting, \
                        f"{where}: {len(rep.admitted)} admitted, {len(rep.waiting)} waiting at end"

    if every_event:
        while engine._heap:
            engine.run(until_s=engine._heap[0][0])
            check(final=False)
    else:
        for t in sorted(checkpoints_s):
            engine.run(until_s=t)
            check(final=False)
    engine.run()
    check(final=True)
    summary = summarize(config, run.collector, engine.num_events, engine.now_s)
    rows = request_rows(run.collector) if config.record_requests else None
    run.num_checks, run.num_busy_checks = checks, busy_checks
    return run, SimResult(summary=summary, requests=rows, spans=run.collector.spans)


def load_helpers() -> types.ModuleType:
    """Import this file under a private name (for subprocesses, which have no pytest conftest)."""
    name = "_hermes_sim_test_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, __file__)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sim_build() -> types.SimpleNamespace:
    """The builders above, as one namespace (test modules cannot import conftest reliably)."""
    return types.SimpleNamespace(
        h100=h100, llama_8b=llama_8b, llama_70b=llama_70b, make_pool=make_pool,
        make_config=make_config, fixed=fixed, uniform=uniform, poisson=poisson,
        max_load=max_load, constant_cost=constant_cost, utilization_for_blocks=utilization_for_blocks,
        determinism_config=determinism_config, run_checked=run_checked, repo=REPO, helpers_path=Path(__file__))


@pytest.fixture(scope="session")
def hw() -> HardwareSpec:
    return h100()


@pytest.fixture(scope="session")
def model_8b() -> ModelSpec:
    return llama_8b()


@pytest.fixture(scope="session")
def model_70b() -> ModelSpec:
    return llama_70b()
