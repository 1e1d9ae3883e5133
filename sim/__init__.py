"""hermes-opt's simulator: a pure discrete-event model of LLM serving pipelines.

Reading guide:
  config.py            what a simulation is (pools, workload, SLOs) — frozen, validated
  simulation.py        simulate(config, seed) -> SimResult
  engine.py            the event heap
  scheduling/          replicas (batching, paged KV, preemption), routers, pools
  cost/                step-time models (roofline, table, constant)
  workload/            arrivals and length distributions
  metrics/             records -> summary
No file I/O, printing, Hydra or Optuna here.
"""

from sim.config import (BatchPolicy, CostModelKind, CostModelSpec, PoolRole, PoolSpec,
                        RequestTypeSpec, RouterPolicy, SchedulerSpec, SimConfig, SLOSpec,
                        WorkloadSpec)
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError
from sim.hardware.specs import DeviceKind, DType, HardwareSpec, ModelKind, ModelSpec
from sim.request import Stage, StageKind
from sim.simulation import SimResult, simulate
from sim.workload.spec import ArrivalKind, ArrivalSpec, LengthKind, LengthSpec, TraceRecords

__all__ = [
    "ArrivalKind", "ArrivalSpec", "BatchPolicy", "ConfigError", "CostModelKind", "CostModelSpec",
    "DType", "DeviceKind", "HardwareSpec", "LengthKind", "LengthSpec", "ModelKind", "ModelSpec",
    "PoolRole", "PoolSpec", "RequestTypeSpec", "RooflineParams", "RouterPolicy", "SLOSpec",
    "SchedulerSpec", "SimConfig", "SimResult", "Stage", "StageKind", "TraceRecords",
    "WorkloadSpec", "simulate",
]
