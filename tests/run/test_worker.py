"""Worker-side composition equals Hydra's; infeasible candidates are found before simulating."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from hermes_opt.compose.overrides import compose_overrides, hydra_compose
from hermes_opt.run.worker import Infeasible, check_feasible, run_job, simulate_overrides
from hermes_opt.study.objective import Budget

CASES = [
    ["model=llama3_1_70b", "hardware=h200", "cluster.tp=2", "scheduler=chunked",
     "scheduler.chunk_size_tokens=1536", "workload.arrival.rate_per_s=12.5"],
    ["hardware=l40s", "scheduler.max_num_seqs=64", "cluster.weight_dtype=fp8", "scheduler=mixed"],
    ["workload=max_load", "cluster.num_replicas=3", "slo=relaxed", "pricing=neocloud_2026_09"],
]


@pytest.mark.parametrize("overrides", CASES)
def test_cached_compose_equals_full_hydra_compose(overrides):
    fast = compose_overrides(overrides)
    assert OmegaConf.to_container(fast) == OmegaConf.to_container(hydra_compose(overrides))
    again = compose_overrides(overrides)  # from the cache: a copy, not the cached object
    assert again is not fast and OmegaConf.to_container(again) == OmegaConf.to_container(fast)


def test_unknown_key_is_infeasible_config_error():
    result = run_job(simulate_overrides, 0, 0, ["cluster.tpp=2"], 0, None)
    assert result.status == "infeasible" and "cluster.tpp" in result.reason


@pytest.mark.parametrize("overrides, budget, needle", [
    (["model=llama3_1_70b", "hardware=h100_sxm", "cluster.tp=1"], None, "does not fit"),
    (["model=llama3_1_8b", "cluster.tp=3"], None, "tp=3"),
    (["cluster.num_replicas=4"], Budget(max_devices=2), "max_devices=2"),
    (["cluster.num_replicas=4"], Budget(max_usd_per_hour=10.0), "max_usd_per_hour=10"),
])
def test_infeasible_candidates_detected_before_simulating(overrides, budget, needle):
    with pytest.raises(Infeasible, match=needle):
        check_feasible(compose_overrides(overrides), budget)


def test_run_job_catches_simulator_bugs_as_error():
    from fakes import crashing_evaluator
    result = run_job(crashing_evaluator, 7, 1, ["cluster.num_replicas=3"], 0, None)
    assert (result.status, result.trial_number, result.replicate) == ("error", 7, 1)
    assert "simulated simulator bug" in result.reason


def test_real_simulation_summary_is_priced():
    summary = simulate_overrides(["workload.num_requests=50"], 0, None)
    assert summary["requests_completed"] == 50
    assert summary["cost_usd_per_hour"] > 0 and summary["price_set"] == "ondemand_2026_11"


def test_multi_pool_pipeline_with_cpu_pools_is_checked_not_crashed():
    rag = ["workload=rag_news", "+cluster=rag_8gpu"]
    check_feasible(compose_overrides(rag), None)  # CPU/retrieval pools hold no model
    with pytest.raises(Infeasible, match="does not fit"):
        check_feasible(compose_overrides(rag + ["cluster.tp=1"]), None)  # 141 GB of bf16 weights
    cfg = compose_overrides(rag + ["cluster.pools.search.num_replicas=3"])
    assert OmegaConf.to_container(cfg) == OmegaConf.to_container(
        hydra_compose(rag + ["cluster.pools.search.num_replicas=3"]))


def test_copies_share_untouched_sections_read_only_and_never_leak_into_the_cache():
    from omegaconf.errors import ReadonlyConfigError
    first = compose_overrides(["hardware=h200", "cluster.tp=2"])
    with pytest.raises(ReadonlyConfigError):  # shared with the cache: writing would change it
        first.pricing.name = "changed"
    first.cluster.tp = 8  # a touched section is the copy's own
    first.seed = 5
    again = compose_overrides(["hardware=h200", "cluster.num_replicas=3"])
    assert again.cluster.tp == 1 and again.seed == 0 and again.pricing.name != "changed"
    assert OmegaConf.to_container(again) == OmegaConf.to_container(
        hydra_compose(["hardware=h200", "cluster.num_replicas=3"]))
