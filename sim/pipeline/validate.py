"""Plan rules: every stage names a pool able to serve it, and stage sequences make sense.

Called from ``SimConfig.__post_init__`` so that a bad plan is one ``ConfigError`` before the run.
"""

from __future__ import annotations

from sim.errors import ConfigError, require
from sim.request import RouteMode, StageKind
from sim.roles import ROUTED_POOL, STAGE_ROLES, PoolRole

# Numeric knobs each stage kind accepts (name -> default); anything else is a typo.
STAGE_PARAMS: dict[StageKind, dict[str, float]] = {
    StageKind.PREPROCESS: {"fixed_us": 50.0, "us_per_token": 1.0, "guardrail_us_per_token": 2.0},
    StageKind.POSTPROCESS: {"fixed_us": 50.0, "us_per_token": 0.2, "guardrail_us_per_token": 2.0},
    StageKind.ROUTE: {"threshold_tokens": 1024.0, "fixed_us": 20.0, "us_per_token": 0.05},
    StageKind.EMBED: {},
    StageKind.VECTOR_SEARCH: {"top_k": 5.0, "doc_tokens": 256.0},
    StageKind.RERANK: {"top_n": 3.0},
    StageKind.KV_RETRIEVAL: {},
    StageKind.GENERATE: {},
    StageKind.PREFILL: {},
    StageKind.DECODE: {},
    StageKind.REWARD: {},
}
GENERATION = (StageKind.GENERATE, StageKind.PREFILL)


def check_retrieval_pool(pool, prefix: str) -> None:
    """A retrieval pool (``sim.config.PoolSpec``) has an index that fits its nodes: in one node's
    memory, or sharded over the ``tp`` devices of the LLM replica it is colocated on."""
    require(pool.index is not None, f"{prefix}.index", None,
            "retrieval pools need an index {kind, num_vectors, dim, ...}")
    require(isinstance(pool.workers_per_node, int) and pool.workers_per_node >= 1,
            f"{prefix}.workers_per_node", pool.workers_per_node, "must be an integer >= 1")
    index, hardware, tp = pool.index, pool.hardware, pool.tp
    require(index.memory_bytes / tp <= hardware.memory_bytes, f"{prefix}.index.num_vectors",
            index.num_vectors,
            f"the {index.kind.value} index needs {index.memory_bytes / 1e9:.1f} GB but "
            f"{f'{tp} x ' if tp > 1 else ''}{hardware.name} has "
            f"{tp * hardware.memory_bytes / 1e9:.0f} GB")


def check_plan(rt, pools: dict, store_pools: set[str]) -> None:
    field = f"workload.request_types.{rt.name}.plan"
    plan = rt.plan
    served = sorted(p.name + ":" + p.role.value for p in pools.values())
    generations = [i for i, s in enumerate(plan) if s.kind in GENERATION]
    require(len(generations) == 1, field, [s.kind.value for s in plan],
            "needs exactly one generation: a 'generate' stage or a 'prefill' + 'decode' pair")
    gen = generations[0]
    routed_by = None
    for i, stage in enumerate(plan):
        where = f"{field}[{i}]"
        allowed = STAGE_PARAMS[stage.kind]
        for key, value in stage.params:
            if key not in allowed:
                raise ConfigError(f"{where}.{key}={value!r}: not a knob of stage "
                                  f"{stage.kind.value!r} (allowed: {', '.join(allowed) or 'none'})")
            require(value >= 0, f"{where}.{key}", value, "must be >= 0")
        if stage.pool == ROUTED_POOL:
            require(routed_by is not None, f"{where}.pool", stage.pool,
                    "'routed' needs an earlier 'route' stage")
            require(stage.kind is StageKind.GENERATE, f"{where}.pool", stage.pool,
                    "only a 'generate' stage can take the routed pool")
            routed_by = "used"
            continue
        pool = pools.get(stage.pool)
        if pool is None or pool.role not in STAGE_ROLES[stage.kind]:
            roles = "/".join(sorted(r.value for r in STAGE_ROLES[stage.kind]))
            raise ConfigError(
                f"{where}: stage {stage.kind.value!r} names pool {stage.pool!r}, which does not "
                f"serve it (needs a pool of role {roles}; pools: {served})")
        if stage.kind is StageKind.ROUTE:
            _check_route(stage, where, pools)
            routed_by = "pending"
        elif stage.kind is StageKind.KV_RETRIEVAL:
            # without a store on the pool every lookup misses (recompute; kv_tiers=none in a
            # search over tier designs), so store_pools is not required here
            nxt = plan[i + 1] if i + 1 < len(plan) else None
            require(nxt is not None and nxt.kind in GENERATION and nxt.pool == stage.pool,
                    where, stage.kind.value,
                    f"must be followed by 'generate' or 'prefill' on pool {stage.pool!r}")
            require(rt.prefix is not None, f"workload.request_types.{rt.name}.prefix", None,
                    "a kv_retrieval stage needs prefixes {num_prefixes, zipf_s, prefix_tokens}")
        elif stage.kind is StageKind.PREFILL:
            nxt = plan[i + 1] if i + 1 < len(plan) else None
            require(nxt is not None and nxt.kind is StageKind.DECODE, where, "prefill",
                    "must be followed by a 'decode' stage")
            decode_pool = pools.get(nxt.pool)
            if decode_pool is not None and decode_pool.model is not None:
                require(decode_pool.model.name == pool.model.name, f"{field}[{i + 1}].pool",
                        nxt.pool, f"decode pool hosts {decode_pool.model.name} but prefill pool "
                        f"{stage.pool!r} hosts {pool.model.name}")
        elif stage.kind is StageKind.DECODE:
            require(i > 0 and plan[i - 1].kind is StageKind.PREFILL, where, "decode",
                    "must follow a 'prefill' stage")
        elif stage.kind is StageKind.RERANK:
            require(any(s.kind is StageKind.VECTOR_SEARCH for s in plan[:i]), where, "rerank",
                    "needs an earlier 'vector_search' stage")
        elif stage.kind is StageKind.REWARD:
            require(i > gen, where, "reward", "must come after the generation it scores")
    require(routed_by != "pending", field, [s.kind.value for s in plan],
            "a 'route' stage needs a later stage with pool 'routed'")


def _check_route(stage, where: str, pools: dict) -> None:
    targets = stage.targets
    require(len(targets) >= 1, f"{where}.targets", [], "a route stage needs targets "
            "[{model, pool, weight}, ...]")
    seen = []
    for j, target in enumerate(targets):
        tp = f"{where}.targets[{j}]"
        if target.pool in seen:
            raise ConfigError(f"{tp}.pool={target.pool!r}: routing cycle: the pool appears twice in "
                              f"{[t.pool for t in targets]} (a cascade must only escalate forward)")
        seen.append(target.pool)
        pool = pools.get(target.pool)
        require(pool is not None and pool.role is PoolRole.COLOCATED, f"{tp}.pool", target.pool,
                "must name a colocated LLM pool")
        require(pool.model.name == target.model, f"{tp}.model", target.model,
                f"pool {target.pool!r} hosts {pool.model.name}, not {target.model}")
        require(target.weight >= 0, f"{tp}.weight", target.weight, "must be >= 0")
    if stage.mode is RouteMode.LENGTH:
        require(len(targets) == 2, f"{where}.targets", len(targets),
                "mode 'length' needs exactly 2 targets (short, long)")
    elif stage.mode is RouteMode.CASCADE:
        require(len(targets) >= 2, f"{where}.targets", len(targets),
                "mode 'cascade' needs at least 2 targets")
        for j, target in enumerate(targets[:-1]):
            require(target.weight <= 1, f"{where}.targets[{j}].weight", target.weight,
                    "cascade: the fraction escalated to the next target, in [0, 1]")
    else:
        require(sum(t.weight for t in targets) > 0, f"{where}.targets", "weights",
                "weights must not all be 0")
