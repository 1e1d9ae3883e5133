"""The non-LLM pools of a run (CPU cores, vector-search workers, encoders) and the links of its
disaggregated hand-offs, built from their specs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sim.config import PoolSpec, SimConfig
from sim.cost.factory import build_cost_model
from sim.engine import Engine
from sim.errors import ConfigError
from sim.hardware.memory import weight_bytes_per_device
from sim.metrics.collector import Collector
from sim.network import Link, LinkStats
from sim.pipeline.cpu_stage import CPUStageCost
from sim.pipeline.disaggregation import configured_link, link_between
from sim.pipeline.rag import EncoderCost, VectorSearchCost
from sim.pipeline.service import ServicePool
from sim.request import Request, StageKind
from sim.roles import PoolRole


def service_pool(engine: Engine, spec: PoolSpec, collector: Collector,
                 on_done: Callable[[Request, bool], None]) -> ServicePool:
    """The ``ServicePool`` serving a CPU, retrieval or encoder pool (encoders must fit)."""
    sched = spec.scheduler
    if spec.role is PoolRole.CPU:
        cores = spec.hardware.num_cores
        return ServicePool(engine, spec.name, spec.num_replicas * cores, CPUStageCost(),
                           max_batch=1, max_batch_tokens=1, collector=collector,
                           on_done=on_done,
                           server_label=lambda i: f"{spec.name}/h{i // cores}c{i % cores}")
    if spec.role is PoolRole.RETRIEVAL:
        workers = spec.workers_per_node
        hardware = spec.hardware
        if spec.colocate_with:  # the index is sharded over the host replica's tp devices
            hardware = replace(hardware, bf16_flops_per_s=hardware.bf16_flops_per_s * spec.tp,
                               mem_bw_bytes_per_s=hardware.mem_bw_bytes_per_s * spec.tp)
        return ServicePool(engine, spec.name, spec.num_replicas * workers,
                           VectorSearchCost(spec.index, hardware, workers),
                           max_batch=sched.max_num_seqs, max_batch_tokens=sched.max_num_seqs,
                           collector=collector, on_done=on_done,
                           server_label=lambda i: f"{spec.name}/n{i // workers}w{i % workers}",
                           batch_timeout_s=spec.batch_timeout_s)
    usable = spec.hardware.memory_bytes * sched.gpu_memory_utilization
    weights = weight_bytes_per_device(spec.model, spec.tp, spec.pp, spec.weight_dtype)
    if weights > usable:
        raise ConfigError(f"{spec.field_path}: model {spec.model.name} needs {weights / 1e9:.1f} "
                          f"GB per device, {spec.hardware.name} offers {usable / 1e9:.1f} GB")
    return ServicePool(engine, spec.name, spec.num_replicas,
                       EncoderCost(build_cost_model(spec), spec.model),
                       max_batch=sched.max_num_seqs, max_batch_tokens=sched.max_batched_tokens,
                       collector=collector, on_done=on_done,
                       server_label=lambda i: f"{spec.name}/{i}",
                       batch_timeout_s=spec.batch_timeout_s)


def handoff_links(engine: Engine, config: SimConfig,
                  collector: Collector) -> dict[tuple[str, str], tuple[list[Link], float]]:
    """``(prefill pool, decode pool) -> (links by prefill replica, KV bytes per token)`` for
    every hand-off a plan makes. A configured link is one ``Link`` every replica shares; the
    default path is one per prefill replica (its own devices' NVLink or NICs). The pair's links
    share one ``LinkStats`` in ``collector.links`` (``busy_s`` is summed over them)."""
    links = {}
    for rt in config.workload.request_types:
        for a, b in zip(rt.plan, rt.plan[1:]):
            if a.kind is StageKind.PREFILL and (a.pool, b.pool) not in links:
                src, dst = config.pool(a.pool), config.pool(b.pool)
                spec = link_between(config.links, src, dst)
                stats = LinkStats(name=spec.name, bandwidth_bytes_per_s=spec.bandwidth_bytes_per_s)
                collector.links.append(stats)
                count = 1 if configured_link(config.links, src, dst) else src.num_replicas
                made = [Link(engine, spec.name, spec.bandwidth_bytes_per_s, spec.latency_s,
                             stats, collector.spans, config.max_trace_spans)
                        for _ in range(count)]
                per_replica = made * src.num_replicas if count == 1 else made
                links[(a.pool, b.pool)] = (per_replica, src.model.kv_bytes_per_token(src.kv_dtype))
    return links
