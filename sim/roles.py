"""Pool roles, which stage kinds each role serves, and how a pool's router picks a replica.

A leaf of the import graph (it needs only ``sim.request``), so both ``sim.config`` (pool specs)
and ``sim.pipeline.validate`` (plan rules) import it at module top without a cycle;
``sim.config`` re-exports every name here.
"""

from __future__ import annotations

import enum

from sim.request import StageKind


class PoolRole(enum.Enum):
    """What a pool's replicas do; each stage kind is served by pools of certain roles."""

    COLOCATED = "colocated"  # prefill and decode on the same replicas (GENERATE stage)
    PREFILL = "prefill"  # disaggregated prefill: finish after the first token, hand KV off
    DECODE = "decode"  # disaggregated decode: admit with the transferred prompt KV
    EMBED = "embed"  # batched encoder passes of an embedding model
    RERANK = "rerank"  # batched cross-encoder passes over (query, document) pairs
    REWARD = "reward"  # batched reward-model forward passes over candidates
    CLASSIFIER = "classifier"  # a small model deciding a route (ROUTE stage)
    CPU = "cpu"  # CPU hosts: a multi-server queue of cores (pre/post-processing, rule routing)
    RETRIEVAL = "retrieval"  # vector-search nodes holding an index (CPU or accelerator)


class RouterPolicy(enum.Enum):
    """How a pool's router picks one of its replicas (``sim.scheduling.router``)."""

    ROUND_ROBIN = "round_robin"
    LEAST_OUTSTANDING_TOKENS = "least_outstanding_tokens"
    JOIN_SHORTEST_QUEUE = "join_shortest_queue"
    PREFIX_AFFINITY = "prefix_affinity"  # same prefix -> replica holding its KV (else least work)
    HEAVY_LIGHT = "heavy_light"  # long requests on one share of replicas, short on the rest
    POWER_OF_TWO = "power_of_two"  # two random replicas (named stream), the less loaded one


LLM_ROLES = frozenset({PoolRole.COLOCATED, PoolRole.PREFILL, PoolRole.DECODE})
MODEL_ROLES = LLM_ROLES | {PoolRole.EMBED, PoolRole.RERANK, PoolRole.REWARD, PoolRole.CLASSIFIER}

# Which pool roles can serve each stage kind (the plan check in sim.pipeline.validate and
# docs/pipelines.md).
STAGE_ROLES: dict[StageKind, frozenset[PoolRole]] = {
    StageKind.PREPROCESS: frozenset({PoolRole.CPU}),
    StageKind.ROUTE: frozenset({PoolRole.CPU, PoolRole.CLASSIFIER}),
    StageKind.EMBED: frozenset({PoolRole.EMBED}),
    StageKind.VECTOR_SEARCH: frozenset({PoolRole.RETRIEVAL}),
    StageKind.RERANK: frozenset({PoolRole.RERANK}),
    StageKind.KV_RETRIEVAL: frozenset({PoolRole.COLOCATED, PoolRole.PREFILL}),
    StageKind.GENERATE: frozenset({PoolRole.COLOCATED}),
    StageKind.PREFILL: frozenset({PoolRole.PREFILL}),
    StageKind.DECODE: frozenset({PoolRole.DECODE}),
    StageKind.REWARD: frozenset({PoolRole.REWARD}),
    StageKind.POSTPROCESS: frozenset({PoolRole.CPU}),
}
ROUTED_POOL = "routed"  # a plan's pool name meaning "the pool the ROUTE stage chose"
