"""The report's breakdown by stage (``hermes_opt.report.stage_share``): cost shares that add up
to the deployment's cost, a colocated stage charged its share of the host GPUs' time, and the
bottleneck it names."""

from __future__ import annotations

import pytest

from hermes_opt.report.stage_share import bottleneck, stage_blocks, stage_costs


def _metrics(**extra) -> dict[str, float]:
    m = {"duration_s": 100.0,
         "cost_breakdown_usd_per_hour.llm": 20.0, "cost_breakdown_usd_per_hour.cpu": 10.0,
         "cost_breakdown_usd_per_hour.rerank": 0.0, "cost_breakdown_usd_per_hour.kv_tier:llm/dram": 2.0,
         "pools.llm.replicas": 2.0, "pools.llm.utilization": 1.0,
         "pools.rerank.busy_s": 50.0, "pools.rerank.utilization": 0.25,
         "pools.cpu.utilization": 0.01}
    stages = {"preprocess@cpu": (100, 1.0, 1.0, 0.001), "postprocess@cpu": (100, 3.0, 3.0, 0.002),
              "rerank@rerank": (100, 40.0, 50.0, 0.05), "generate@llm": (100, 900.0, 950.0, 0.947)}
    for stage, (visits, service, total, share) in stages.items():
        m.update({f"stages.{stage}.visits": visits, f"stages.{stage}.service_ms.mean": service,
                  f"stages.{stage}.total_ms.mean": total,
                  f"stages.{stage}.share_of_stage_time": share})
    m.update(extra)
    return m


RECORD = {"pools": [{"name": "llm", "hardware": "h100_sxm", "devices": 2},
                    {"name": "cpu", "hardware": "xeon_6980p", "devices": 1},
                    {"name": "rerank", "hardware": "h100_sxm", "devices": 0,
                     "colocated_on": "llm"}]}


def test_stage_costs_add_up_and_follow_the_rules():
    costs = stage_costs(_metrics(), RECORD)
    assert sum(costs.values()) == pytest.approx(32.0)  # every priced part, KV tier included
    # the cpu pool's $10/h split 1:3 by work (visits x mean service time)
    assert costs["preprocess@cpu"] == pytest.approx(2.5)
    assert costs["postprocess@cpu"] == pytest.approx(7.5)
    # colocated rerank: busy 50 s of 2 replicas x 100 s = 25% of the host's $22/h (KV tier in)
    assert costs["rerank@rerank"] == pytest.approx(0.25 * 22.0)
    assert costs["generate@llm"] == pytest.approx(0.75 * 22.0)


def test_a_stage_on_its_own_pool_keeps_its_pools_cost():
    record = {"pools": [p for p in RECORD["pools"] if p["name"] != "rerank"]}
    costs = stage_costs(_metrics(**{"cost_breakdown_usd_per_hour.rerank": 4.0}), record)
    assert costs["rerank@rerank"] == pytest.approx(4.0)
    assert costs["generate@llm"] == pytest.approx(22.0)


def test_bottleneck_is_a_saturated_non_llm_pool_else_the_longest_stage():
    assert bottleneck(_metrics())[0] == "generate@llm"
    stage, why = bottleneck(_metrics(**{"pools.rerank.utilization": 0.93}))
    assert stage == "rerank@rerank" and "93%" in why
    assert bottleneck({}) is None


def test_blocks_give_the_table_the_bottleneck_and_the_raw_statistics():
    blocks = stage_blocks(_metrics(), RECORD, lambda v: f"{v:g}")
    kinds = [b[0] for b in blocks]
    assert kinds == ["p", "table", "p", "p", "table"]
    header, rows = blocks[1][1], blocks[1][2]
    assert header == ["stage", "runs on", "mean time (ms)", "latency share", "$/hour", "cost share"]
    assert rows[0][:2] == ["generate@llm", "2 x h100_sxm"]  # longest stage first
    rerank = next(r for r in rows if r[0] == "rerank@rerank")
    assert rerank[1] == "colocated on llm (h100_sxm)" and rerank[3] == "5.0%"
    assert rerank[5] == f"{5.5 / 32:.1%}"
    assert blocks[2][1].startswith("Bottleneck: generate@llm (95% of the request's stage time")
    # one stage only: just the statistics table, no breakdown
    single = {k: v for k, v in _metrics().items() if "@" not in k or "generate@llm" in k}
    assert [b[0] for b in stage_blocks(single, RECORD, str)] == ["p", "table"]


def test_kv_tier_cost_goes_to_the_kv_retrieval_stage():
    m = _metrics(**{"stages.kv_retrieval@llm.visits": 100, "stages.kv_retrieval@llm.service_ms.mean": 2.0,
                    "stages.kv_retrieval@llm.total_ms.mean": 2.0})
    record = {"pools": [p for p in RECORD["pools"] if p["name"] != "rerank"]}
    costs = stage_costs({**m, "cost_breakdown_usd_per_hour.rerank": 0.0}, record)
    assert sum(costs.values()) == pytest.approx(32.0)
    # the $2/h DRAM tier plus kv_retrieval's share of the GPUs' $20/h by work (200 of 90,200 ms)
    assert costs["kv_retrieval@llm"] == pytest.approx(2.0 + 20.0 * 200 / 90_200)
