"""One scenario end to end: a composed Hydra config -> simulate -> price -> the ``hermes-sim`` JSON
summary (and the requested output files). The optimizer's workers call the same function, so every
trial replays exactly with ``hermes-sim``."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from hermes_opt.compose import outputs, pricing, to_sim
from sim import simulate
from sim.config import LLM_ROLES
from sim.errors import ConfigError
from sim.hardware.memory import kv_capacity_blocks, weight_bytes_per_device


def simulate_config(cfg: DictConfig) -> dict:
    """Simulate and price a composed config; the JSON summary ``hermes-sim`` prints."""
    want_requests = bool(cfg.output.get("requests_path"))
    want_trace = bool(cfg.output.get("trace_path"))
    seed = to_sim.seed_value(cfg)
    config = to_sim.sim_config(cfg, record_requests=want_requests, record_trace=want_trace)
    # per-request rows go to the file as requests finish (bounded memory however long the run)
    writer = outputs.RequestWriter(cfg.output.requests_path) if want_requests else None
    try:
        result = simulate(config, seed, request_sink=writer)
    finally:
        if writer is not None:
            writer.close()
    cost = pricing.deployment_cost(config, cfg.pricing)
    summary = dict(result.summary)
    hours_per_s = 1 / 3600
    usd_per_s = cost.usd_per_hour * hours_per_s
    summary.update({
        "cost_usd_per_hour": cost.usd_per_hour,
        "cost_breakdown_usd_per_hour": cost.parts,
        **({"cost_notes": list(cost.notes)} if cost.notes else {}),
        "output_tokens_per_usd": summary["output_tokens_per_s"] / usd_per_s if usd_per_s else 0.0,
        "goodput_tokens_per_usd": (summary["goodput_output_tokens_per_s"] / usd_per_s
                                   if usd_per_s else 0.0),  # whole run: for comparison only
        # the default objective: steady-state goodput per dollar (docs/opt.md "Objectives")
        "slo_tokens_per_usd": (summary["steady_state"]["goodput_output_tokens_per_s"] / usd_per_s
                               if usd_per_s else 0.0),
        "price_set": cost.price_set, "price_date": cost.price_date,
        "num_devices": sum(p.num_devices for p in config.pools),  # accelerators + CPU hosts
        "num_accelerators": sum(p.num_accelerators for p in config.pools),
        "calibration": {p.name: p.cost_model.calibration or "none" for p in config.pools},
        # what each LLM pool's GEMMs, attention and KV cache really run in, and every fallback
        "precision": {p.name: p.precision.summary() for p in config.pools if p.role in LLM_ROLES},
        "seed": seed,
    })
    summary = to_sim.numpy_safe(summary)
    if want_trace:
        outputs.write_trace(result, cfg.output.trace_path)
    if cfg.output.get("summary_path"):
        outputs.write_summary(summary, cfg.output.summary_path)
    return summary


def check_memory(pool: Any) -> None:
    """The simulator's own memory rules, applied before simulating: LLM pools need their weights
    plus at least one KV block per device; other model pools (embed, rerank, reward) their
    weights; CPU and retrieval pools hold no model. Other ConfigErrors the simulator raises while
    building a run (e.g. a KV tier too large) are still caught and reported as infeasible."""
    sched = pool.scheduler
    if pool.role in LLM_ROLES:
        kv_capacity_blocks(pool.model, pool.hardware, tp=pool.tp, pp=pool.pp,
                           weight_dtype=pool.weight_dtype, kv_dtype=pool.kv_dtype,
                           block_size_tokens=sched.block_size_tokens,
                           gpu_memory_utilization=sched.gpu_memory_utilization,
                           activation_reserve_fraction=sched.activation_reserve_fraction,
                           pool_name=pool.field_path, attention_dp=pool.attention_dp)
    elif pool.model is not None:
        usable = pool.hardware.memory_bytes * sched.gpu_memory_utilization
        weights = weight_bytes_per_device(pool.model, pool.tp, pool.pp, pool.weight_dtype)
        if weights > usable:
            raise ConfigError(f"{pool.field_path}: model {pool.model.name} does not fit: needs "
                              f"{weights / 1e9:.1f} GB per device, {pool.hardware.name} offers "
                              f"{usable / 1e9:.1f} GB")
