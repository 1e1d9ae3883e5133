"""hermes-opt's simulator: a pure discrete-event model of LLM serving pipelines.

Reading guide:
  config.py            what a simulation is (pools, workload, SLOs) — frozen, validated
  roles.py             pool roles and the stage kinds each serves
  simulation.py        simulate(config, seed) -> SimResult
  results.py           SimResult and per-request rows
  engine.py            the event heap
  scheduling/          replicas (paged KV, decode runs, preemption), batching policies, routers,
                       pools
  pipeline/            stage kinds beyond generation (RAG, reasoning, routing, hand-offs)
  kvstore/             prefix-KV stores: tiers, sharing domains, policies, contended transfers
  cost/                step-time models (roofline, table, constant)
  workload/            arrivals and length distributions
  metrics/             records -> summary
No file I/O, printing, Hydra or Optuna here.

May import: ``sim`` only (numpy is the one third-party dependency). This file is the public
API; nothing inside ``sim/`` takes names from it.
"""

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
from sim.hardware.specs import DeviceKind, DType, HardwareSpec, ModelKind, ModelSpec
from sim.request import Stage, StageKind
from sim.results import SimResult
from sim.simulation import simulate
from sim.workload.spec import ArrivalKind, ArrivalSpec, LengthKind, LengthSpec, TraceRecords

__all__ = [
    "ArrivalKind", "ArrivalSpec", "BatchPolicy", "ConfigError", "CostModelKind", "CostModelSpec",
    "DType", "DeviceKind", "HardwareSpec", "LengthKind", "LengthSpec", "ModelKind", "ModelSpec",
    "PoolRole", "PoolSpec", "RequestTypeSpec", "RooflineParams", "RouterPolicy", "SLOSpec",
    "SchedulerSpec", "SimConfig", "SimResult", "Stage", "StageKind", "TraceRecords",
    "WorkloadSpec", "simulate",
]
