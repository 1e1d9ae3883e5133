"""A non-LLM stage placed on the GPUs of an LLM pool (``placement: colocated``).

A guest pool (embed, rerank, reward, classifier or retrieval) that names a host with
``colocate_with`` runs on the host's devices instead of its own, so it costs no devices of its
own and takes two things from the host:

* **Memory.** Every replica of the host holds a copy of the guest's model (sharded over the
  replica's ``tp x pp`` devices, like the LLM's own weights) or of its index; those bytes per
  device are ``reserved_bytes_per_device`` on the host and come out of its KV cache
  (``sim.hardware.memory.kv_capacity_blocks``).
* **Device time.** Guest server ``i`` is host replica ``i``. A guest batch runs at once for its
  own batch time (a high-priority stream: its latency is its compute); the LLM replica pays for it
  by time-sharing the device (``Replica.time_share``): work done while the replica was busy is
  added to its next step (a decode run is cut at the next step boundary so the stall lands
  there), work done while it was idle delays a step that starts before the guest batch ends. The
  device's total work is conserved: what the guest computes, the LLM computes later.

``apply`` derives both from the pool specs (compose calls it); ``check`` refuses a config whose
host does not reserve what its guests need, so a hand-built ``SimConfig`` cannot skip the memory.
"""

from __future__ import annotations

from dataclasses import replace

from sim.config import PoolSpec
from sim.errors import ConfigError
from sim.hardware.memory import weight_bytes_per_device
from sim.roles import PoolRole

GUEST_ROLES = (PoolRole.EMBED, PoolRole.RERANK, PoolRole.REWARD, PoolRole.CLASSIFIER,
               PoolRole.RETRIEVAL)


def guest_bytes_per_device(guest: PoolSpec, devices: int) -> float:
    """Bytes each of a host replica's ``devices`` devices holds for ``guest``."""
    if guest.role is PoolRole.RETRIEVAL:
        return guest.index.memory_bytes / devices
    return weight_bytes_per_device(guest.model, devices, 1, guest.weight_dtype)


def _host_of(guest: PoolSpec, by_name: dict[str, PoolSpec]) -> PoolSpec:
    field = f"{guest.field_path}.colocate_with"
    host = by_name.get(guest.colocate_with)
    if host is None or host.role is not PoolRole.COLOCATED:
        llm = sorted(p.name for p in by_name.values() if p.role is PoolRole.COLOCATED)
        raise ConfigError(f"{field}={guest.colocate_with!r}: must name a colocated LLM pool "
                          f"(pools: {', '.join(llm) or 'none'})")
    if guest.role not in GUEST_ROLES:
        raise ConfigError(f"{guest.field_path}.placement=colocated: role {guest.role.value} "
                          f"cannot share an LLM pool's GPUs (allowed: "
                          f"{', '.join(r.value for r in GUEST_ROLES)})")
    return host


def apply(pools: tuple[PoolSpec, ...]) -> tuple[PoolSpec, ...]:
    """Each guest on its host's hardware, replicas and devices; each host reserving its guests'
    bytes per device. Pools without guests are returned unchanged."""
    by_name = {p.name: p for p in pools}
    reserved: dict[str, float] = {}
    placed = {}
    for guest in pools:
        if not guest.colocate_with:
            continue
        host = _host_of(guest, by_name)
        devices = host.tp * host.pp
        placed[guest.name] = replace(guest, hardware=host.hardware,
                                     num_replicas=host.num_replicas, tp=devices, pp=1,
                                     workers_per_node=1)
        reserved[host.name] = reserved.get(host.name, 0.0) + guest_bytes_per_device(
            placed[guest.name], devices)
    if not placed:
        return pools
    return tuple(placed.get(p.name) or (replace(p, reserved_bytes_per_device=reserved[p.name])
                                        if p.name in reserved else p) for p in pools)


def check(pools: tuple[PoolSpec, ...]) -> dict[str, str]:
    """Guest pool name -> host pool name; a ConfigError when a guest does not match its host
    (replicas, hardware) or the host reserves less memory than its guests hold."""
    by_name = {p.name: p for p in pools}
    hosts: dict[str, str] = {}
    needed: dict[str, float] = {}
    for guest in pools:
        if not guest.colocate_with:
            continue
        host = _host_of(guest, by_name)
        if guest.num_replicas != host.num_replicas or guest.hardware.name != host.hardware.name:
            raise ConfigError(f"{guest.field_path}.num_replicas={guest.num_replicas}: a colocated "
                              f"stage runs one server per replica of {host.name} "
                              f"({host.num_replicas} x {host.hardware.name}); build the pools "
                              "with sim.pipeline.colocation.apply")
        hosts[guest.name] = host.name
        needed[host.name] = needed.get(host.name, 0.0) + guest_bytes_per_device(
            guest, host.tp * host.pp)
    for name, need in needed.items():
        have = by_name[name].reserved_bytes_per_device
        if have + 1.0 < need:
            raise ConfigError(f"{by_name[name].field_path}.reserved_bytes_per_device={have:.0f}: "
                              f"its colocated stages hold {need:.0f} bytes per device")
    return hosts
