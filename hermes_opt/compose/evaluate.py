"""One scenario end to end: a composed candidate -> simulate -> the priced ``hermes-sim`` JSON
summary (and the requested output files). The optimizer's workers call the same function, so every
trial replays exactly with ``hermes-sim``."""

from __future__ import annotations

from omegaconf import DictConfig

from hermes_opt.compose import candidate as candidate_mod
from hermes_opt.compose import outputs, to_sim
from hermes_opt.compose.candidate import Candidate
from sim import simulate
from sim.config import LLM_ROLES


def simulate_config(cfg: DictConfig) -> dict:
    """Simulate and price a composed config (its own ``seed``); the JSON ``hermes-sim`` prints."""
    seed = to_sim.seed_value(cfg)
    return simulate_candidate(candidate_mod.from_config(cfg), seed)


def simulate_candidate(candidate: Candidate, seed: int) -> dict:
    """Simulate a candidate with one workload seed; its summary, priced, with its deployment."""
    cfg, config, cost = candidate.cfg, candidate.config, candidate.cost
    # per-request rows go to the file as requests finish (bounded memory however long the run)
    writer = outputs.RequestWriter(cfg.output.requests_path) if config.record_requests else None
    try:
        result = simulate(config, seed, request_sink=writer)
    finally:
        if writer is not None:
            writer.close()
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
        "deployment": candidate.deployment,
    })
    summary = to_sim.numpy_safe(summary)
    if config.record_trace:
        outputs.write_trace(result, cfg.output.trace_path)
    if cfg.output.get("summary_path"):
        outputs.write_summary(summary, cfg.output.summary_path)
    return summary
