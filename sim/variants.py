"""A configuration's stress variants: the same deployment under more load, with a replica down,
or over a longer run. Used to check headroom, redundancy and stability (``hermes_opt.run.checks``)
and to size a deployment for a multiple of its demand; each returns a new, validated config.
"""

from __future__ import annotations

import dataclasses
import math

from sim.config import SimConfig
from sim.errors import ConfigError
from sim.workload.spec import ArrivalKind, ArrivalSpec

# Kinds whose demand can be scaled, and how: a rate, a replay speed, a number of users.
LOAD_KINDS = (ArrivalKind.POISSON, ArrivalKind.GAMMA, ArrivalKind.TRACE, ArrivalKind.CLOSED_LOOP)


def _scaled(arrival: ArrivalSpec, factor: float) -> ArrivalSpec:
    if arrival.kind in (ArrivalKind.POISSON, ArrivalKind.GAMMA):
        return dataclasses.replace(arrival, rate_per_s=arrival.rate_per_s * factor)
    if arrival.kind is ArrivalKind.TRACE:  # replay the same requests faster
        return dataclasses.replace(arrival, time_scale=arrival.time_scale / factor)
    if arrival.kind is ArrivalKind.CLOSED_LOOP:  # more users, each as before
        return dataclasses.replace(arrival, concurrency=max(1, math.ceil(
            arrival.concurrency * factor - 1e-9)))
    raise ConfigError(f"workload.arrival.kind={arrival.kind.value!r}: every request arrives at "
                      f"once, so there is no demand to scale; headroom and load multiples need "
                      f"one of: {', '.join(k.value for k in LOAD_KINDS)}")


def with_load(config: SimConfig, factor: float) -> SimConfig:
    """The same deployment offered ``factor`` x the demand (every request type's arrivals)."""
    workload = config.workload
    types = tuple(dataclasses.replace(rt, arrival=_scaled(rt.arrival, factor))
                  if rt.arrival is not None else rt for rt in workload.request_types)
    return dataclasses.replace(config, workload=dataclasses.replace(
        workload, arrival=_scaled(workload.arrival, factor), request_types=types))


def with_replicas(config: SimConfig, replicas: dict[str, int]) -> SimConfig:
    """The deployment with the named pools resized (pool name -> replicas)."""
    pools = tuple(dataclasses.replace(p, num_replicas=replicas[p.name]) if p.name in replicas
                  else p for p in config.pools)
    return dataclasses.replace(config, pools=pools)


def one_replica_down(config: SimConfig) -> SimConfig | str:
    """Every pool with one replica (host) fewer: what serves while one of each is down (a
    failure, a rolling upgrade). A pool with a single replica has nothing to spare: that reason
    instead of a config."""
    single = [p.name for p in config.pools if p.num_replicas <= 1]
    if single:
        return (f"pool{'s' if len(single) > 1 else ''} {', '.join(single)} ha"
                f"{'ve' if len(single) > 1 else 's'} a single replica: nothing serves while it "
                f"is down")
    return with_replicas(config, {p.name: p.num_replicas - 1 for p in config.pools})


def with_num_requests(config: SimConfig, num_requests: int) -> SimConfig:
    """A longer (or shorter) run of the same workload; traces replay a fixed set of requests."""
    return dataclasses.replace(config, workload=dataclasses.replace(
        config.workload, num_requests=num_requests))
