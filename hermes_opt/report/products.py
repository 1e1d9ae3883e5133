"""A deployment's hardware in a buyer's words: the vendor's product names and how many servers
hold it ("2 x NVIDIA B200, one HGX B200 8-GPU server (2 of its 8 GPUs)"), from the stored
deployment record and the hardware catalog's ``product_name`` and ``node`` fields
(docs/CATALOG_SCHEMA.md). A hardware entry the catalog does not know (given inline) keeps its
own name and no server count, rather than a guessed one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hermes_opt.compose import catalog
from sim.errors import ConfigError

NOUNS = {"gpu": "GPU", "tpu": "chip", "accelerator": "accelerator", "cpu": "CPU socket"}
WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


@dataclass(frozen=True, slots=True)
class PoolHardware:
    """One pool's hardware: ``devices`` x ``product``, in ``servers`` servers of ``per_server``."""

    pool: str
    product: str  # "NVIDIA B200", or the catalog key when the catalog does not know it
    noun: str  # what one device is called: GPU, chip, accelerator, CPU
    devices: int
    replicas: int
    servers: int | None  # None: the catalog gives no server size
    per_server: int | None
    server_name: str | None  # "HGX B200 8-GPU server"
    tp: int
    accelerated: bool  # a model pool on an accelerator (the layout line's pools)

    @property
    def count(self) -> str:
        """"2 x NVIDIA B200"."""
        return f"{self.devices} x {self.product}"

    def server_phrase(self) -> str:
        """"one HGX B200 8-GPU server (2 of its 8 GPUs)", "3 HGX H200 8-GPU servers", or ''."""
        if self.servers is None or not self.server_name or not self.per_server:
            return ""
        many = self.servers != 1
        text = f"{WORDS.get(self.servers, self.servers)} {self.server_name}{'s' if many else ''}"
        capacity = self.servers * self.per_server
        if self.devices < capacity:  # a cloud rents a share of the server: priced per device
            whose = "their" if many else "its"
            text += f" ({self.devices} of {whose} {capacity} {self.noun}s)"
        if self.tp > self.per_server:  # tensor parallelism leaves the server's scale-up domain
            text += (f"; TP {self.tp} spans {math.ceil(self.tp / self.per_server)} servers per "
                     f"replica")
        return text


def _entry(name: str) -> Any:
    try:
        return catalog.entry("hardware", name)
    except ConfigError:  # hardware given inline rather than by catalog name
        return None


def servers_needed(replicas: int, tp: int, per_server: int) -> int:
    """Servers that hold ``replicas`` replicas of ``tp`` devices each, a replica never split
    across servers unless it is wider than one (then it takes whole servers)."""
    if tp > per_server:
        return replicas * math.ceil(tp / per_server)
    return math.ceil(replicas / (per_server // tp))


def pool_hardware(pool: dict[str, Any]) -> PoolHardware:
    """The hardware of one pool of a deployment record."""
    entry = _entry(str(pool.get("hardware")))
    node = entry.get("node") if entry is not None else None
    per_server = int(node.devices) if node is not None and node.get("devices") else None
    devices = int(pool.get("devices") or 0)
    tp = int(pool.get("tp") or 1) * int(pool.get("pp") or 1)  # devices per replica
    replicas = int(pool.get("replicas") or 0)
    servers = servers_needed(replicas, tp, per_server) if per_server and replicas else None
    return PoolHardware(
        pool=str(pool.get("name")),
        product=str(entry.get("product_name") or pool.get("hardware")) if entry is not None
        else str(pool.get("hardware")),
        noun=NOUNS.get(str(entry.get("kind")) if entry is not None else "", "device"),
        devices=devices, replicas=replicas, servers=servers, per_server=per_server,
        server_name=str(node.name) if node is not None and node.get("name") else None,
        tp=tp, accelerated=bool(pool.get("accelerated_model")))


def deployment_hardware(record: dict | None) -> list[PoolHardware]:
    """Every pool's hardware, the accelerated model pools first (record order otherwise)."""
    pools = [pool_hardware(p) for p in (record or {}).get("pools", [])]
    return [p for p in pools if p.accelerated] + [p for p in pools if not p.accelerated]


def headline_hardware(record: dict | None) -> str | None:
    """"2 x NVIDIA B200 in one HGX B200 8-GPU server (2 of its 8 GPUs)", per accelerated pool ("prefill 2 x ... +
    decode 6 x ..." when there are several); None without an accelerated pool."""
    pools = [p for p in deployment_hardware(record) if p.accelerated]
    if not pools:
        return None
    parts = []
    for p in pools:
        where = p.server_phrase()
        text = p.count + (f" in {where}" if where else "")
        parts.append(f"{p.pool} {text}" if len(pools) > 1 else text)
    return " + ".join(parts)


def short_layout(record: dict | None) -> str | None:
    """"2 x NVIDIA B200 (2 replicas of TP 1)" for tables; pools joined by " + "."""
    pools = [p for p in (record or {}).get("pools", []) if p.get("accelerated_model")]
    if not pools:
        return None
    parts = []
    for pool in pools:
        hw = pool_hardware(pool)
        text = f"{hw.count} ({hw.replicas} replica{'s' if hw.replicas != 1 else ''} of TP {hw.tp})"
        parts.append(f"{hw.pool} {text}" if len(pools) > 1 else text)
    return " + ".join(parts)
