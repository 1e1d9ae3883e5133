"""Every workload preset composes with its 8-GPU cluster layout (Hydra Compose API) and runs;
pricing covers every priced part; the Perfetto trace shows every stage's pool."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from hermes_opt.compose import outputs, pricing
from hermes_opt.compose import to_sim as hc
from sim import simulate

PRESETS = [("qa", "qa_8gpu"), ("qa_disagg", "qa_disagg_8gpu"), ("rag_news", "rag_8gpu"),
           ("code_kv", "code_8gpu"), ("chat_rag_kv", "chat_rag_8gpu"),
           ("math_reasoning", "math_8gpu"), ("pipeline_mix", "mix_8gpu")]


@pytest.fixture(scope="module")
def composed():
    GlobalHydra.instance().clear()
    cfgs = {}
    with initialize_config_module(config_module="hermes_opt.conf", version_base="1.3"):
        for workload, cluster in PRESETS:
            cfgs[workload] = compose(config_name="sim", overrides=[
                f"workload={workload}", f"+cluster={cluster}", "workload.num_requests=60"])
    GlobalHydra.instance().clear()
    return cfgs


@pytest.mark.parametrize("workload,cluster", PRESETS)
def test_preset_runs_on_eight_gpus_with_a_stage_breakdown(composed, workload, cluster):
    cfg = composed[workload]
    config = hc.sim_config(cfg, record_trace=True)
    assert sum(p.num_accelerators for p in config.pools) == 8
    result = simulate(config, 0)
    s = result.summary
    assert s["requests_completed"] == 60, s["rejection_reasons"]
    planned = {(st.kind.value, st.pool) for rt in config.workload.request_types for st in rt.plan
               if st.pool != "routed"}
    seen = {(v["kind"], v["pool"]) for v in s["stages"].values()}
    assert planned <= seen
    trace = outputs.chrome_trace(result.spans)
    named = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
    for _, pool in planned:
        if pool != "routed":
            assert f"pool {pool}" in named
    cost = pricing.deployment_cost(config, cfg.pricing)
    assert set(cost.parts) >= {p.name for p in config.pools}
    if config.kv_stores:
        assert any(k.startswith("kv_tier:") and v > 0 for k, v in cost.parts.items())


def test_kv_tier_capacity_is_priced_by_memory_kind(composed):
    cfg = composed["code_kv"]
    config = hc.sim_config(cfg)
    parts = pricing.deployment_cost(config, cfg.pricing).parts
    mem = cfg.pricing.memory_usd_per_gb_hour
    assert parts["kv_tier:llm/hbm"] == 0.0
    assert parts["kv_tier:llm/dram"] == pytest.approx(512 * 2 * mem.dram.value)
    assert parts["kv_tier:llm/ssd"] == pytest.approx(3840 * 2 * mem.ssd.value)


def test_vendors_and_cpus_mix_in_one_run():
    """AMD GPUs for generation, an EPYC socket for embedding, Grace for search, Xeon for the rest."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="hermes_opt.conf", version_base="1.3"):
        cfg = compose(config_name="sim", overrides=[
            "workload=rag_news", "+cluster=rag_8gpu", "hardware=mi300x", "cluster.tp=2",
            "cluster.num_replicas=4", "cluster.pools.embed.hardware=epyc_9005",
            "cluster.pools.search.hardware=grace", "workload.num_requests=40"])
    GlobalHydra.instance().clear()
    config = hc.sim_config(cfg)
    assert {p.hardware.name for p in config.pools} == {"mi300x", "epyc_9005", "grace", "xeon_6980p"}
    s = simulate(config, 0).summary
    assert s["requests_completed"] == 40
    # Grace (72 cores, 4 workers) searches slower per query than a 128-core Xeon worker would
    assert s["stages"]["vector_search@search"]["service_ms"]["mean"] > 0.1
