"""The request plan follows from the pools: what a ``generate`` stage means for a deployment.

A plan names the *model service* a request needs (``generate`` on a pool); the deployment decides
how that service is laid out:

- **Disaggregated.** A ``generate`` stage naming a *prefill* pool becomes ``prefill`` on that
  pool followed by ``decode`` on the one decode pool hosting the same model. The prompt's KV
  crosses the link between them (``cluster.links``, or the default NIC path in
  ``sim.pipeline.disaggregation``). So a deployment switches between colocated and
  disaggregated by its pools alone; no request type needs a hand-written plan.
- **Several colocated pools of one model** (e.g. H100 and MI300X replicas of the same model)
  form one service: a ``generate`` stage naming any of them is routed across all of them by
  ``sim.scheduling.service_router.ServiceRouter`` (speed- and load-aware), not by static weights.

A route target naming one of those pools reaches the whole service too: the route stage chooses
the model, the service router the replica.
"""

from __future__ import annotations

from dataclasses import replace

from sim.errors import ConfigError
from sim.request import Stage, StageKind
from sim.roles import PoolRole


def decode_pool_for(prefill, pools: dict) -> str:
    """The one decode pool hosting the prefill pool's model (a ConfigError otherwise)."""
    model = prefill.model.name if prefill.model is not None else None
    decoders = [p.name for p in pools.values()
                if p.role is PoolRole.DECODE and p.model is not None and p.model.name == model]
    if len(decoders) != 1:
        found = ", ".join(decoders) if decoders else "none"
        raise ConfigError(
            f"{prefill.field_path or prefill.name}.role=prefill: a generate stage on prefill pool "
            f"{prefill.name!r} needs exactly one decode pool hosting {model} (found: {found})")
    return decoders[0]


def expand_plan(plan: tuple[Stage, ...], pools: dict) -> tuple[Stage, ...]:
    """``generate`` on a prefill pool -> ``prefill`` + ``decode``; every other stage as given."""
    out: list[Stage] = []
    for stage in plan:
        pool = pools.get(stage.pool)
        if stage.kind is StageKind.GENERATE and pool is not None and pool.role is PoolRole.PREFILL:
            out.append(replace(stage, kind=StageKind.PREFILL))
            out.append(Stage(kind=StageKind.DECODE, pool=decode_pool_for(pool, pools)))
        else:
            out.append(stage)
    return tuple(out)


def expand_workload(workload, pools: dict):
    """The workload with every request type's plan expanded for these pools (same object when
    nothing changes, so a colocated config is untouched)."""
    types = []
    changed = False
    for rt in workload.request_types:
        plan = expand_plan(rt.plan, pools)
        changed = changed or plan != rt.plan
        types.append(replace(rt, plan=plan) if plan != rt.plan else rt)
    return replace(workload, request_types=tuple(types)) if changed else workload


def service_groups(pools: dict) -> dict[str, tuple[str, ...]]:
    """Colocated pools hosting the same model, for each model hosted by two or more of them
    (pool name -> every member, in config order)."""
    by_model: dict[str, list[str]] = {}
    for pool in pools.values():
        if pool.role is PoolRole.COLOCATED and pool.model is not None:
            by_model.setdefault(pool.model.name, []).append(pool.name)
    return {name: tuple(members) for members in by_model.values() if len(members) > 1
            for name in members}
