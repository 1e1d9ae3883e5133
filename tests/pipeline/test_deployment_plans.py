"""The plan follows from the pools (sim/pipeline/deployment.py, applied by SimConfig): generate on a
prefill pool is prefill + decode on the one decode pool of the same model; colocated configs are
left alone; colocated pools of one model form one service group."""

from __future__ import annotations

import pipeline_builders as pb
import pytest

from sim import PoolRole, RequestTypeSpec, SimConfig, StageKind, WorkloadSpec, simulate
from sim.errors import ConfigError
from sim.pipeline.deployment import expand_plan, expand_workload, service_groups

P, D, C = PoolRole.PREFILL, PoolRole.DECODE, PoolRole.COLOCATED


def kinds(plan):
    return [(s.kind.value, s.pool) for s in plan]


def test_generate_on_a_prefill_pool_becomes_prefill_then_decode():
    cfg = pb.config([pb.llm_pool("pre", role=P), pb.llm_pool("dec", role=D)],
                    [pb.stage("generate", "pre")], n=20)
    assert kinds(cfg.workload.request_types[0].plan) == [("prefill", "pre"), ("decode", "dec")]
    summary = simulate(cfg, seed=0).summary
    assert summary["requests_completed"] == 20 and summary["requests_rejected"] == 0
    # the prefill pool emits the first token of each request, the decode pool the other 49
    assert summary["generated_tokens"] == {"pre": 20, "dec": 20 * 49}


def test_the_decode_pool_is_the_one_hosting_the_same_model():
    pools = [pb.llm_pool("pre", role=P),
             pb.llm_pool("dec70", role=D, model_name="llama3_1_70b", tp=2),
             pb.llm_pool("dec8", role=D)]
    cfg = pb.config(pools, [pb.stage("generate", "pre")], n=5)
    assert kinds(cfg.workload.request_types[0].plan) == [("prefill", "pre"), ("decode", "dec8")]


def test_other_stages_keep_their_place_around_the_expanded_generation():
    pools = [pb.cpu_pool("cpu"), pb.llm_pool("pre", role=P), pb.llm_pool("dec", role=D)]
    cfg = pb.config(pools, [pb.stage("preprocess", "cpu"), pb.stage("generate", "pre"),
                            pb.stage("postprocess", "cpu")], n=5)
    assert kinds(cfg.workload.request_types[0].plan) == [
        ("preprocess", "cpu"), ("prefill", "pre"), ("decode", "dec"), ("postprocess", "cpu")]


@pytest.mark.parametrize("decoders, found", [
    ([], "found: none"),
    (["dec_a", "dec_b"], "found: dec_a, dec_b"),
])
def test_zero_or_two_decode_pools_is_a_config_error_naming_the_prefill_pool(decoders, found):
    pools = [pb.llm_pool("pre", role=P)] + [pb.llm_pool(n, role=D) for n in decoders]
    with pytest.raises(ConfigError) as err:
        pb.config(pools, [pb.stage("generate", "pre")], n=5)
    message = str(err.value)
    assert message.startswith("cluster.pools.pre.role=prefill: ")
    assert "prefill pool 'pre'" in message and "llama3_1_8b" in message and found in message


def test_a_decode_pool_of_another_model_does_not_count():
    pools = [pb.llm_pool("pre", role=P),
             pb.llm_pool("dec", role=D, model_name="llama3_1_70b", tp=2)]
    with pytest.raises(ConfigError, match=r"prefill pool 'pre'.*\(found: none\)"):
        pb.config(pools, [pb.stage("generate", "pre")], n=5)


def test_a_colocated_config_keeps_the_same_workload_object():
    pool = pb.llm_pool("llm")
    rt = RequestTypeSpec(name="t", plan=(pb.stage("generate", "llm"),),
                         prompt_tokens=pb.fixed(100), output_tokens=pb.fixed(10))
    workload = WorkloadSpec(num_requests=5, arrival=pb.poisson(1.0), request_types=(rt,))
    cfg = SimConfig(pools=(pool,), workload=workload)
    assert cfg.workload is workload
    assert cfg.workload.request_types[0] is rt


def test_a_hand_written_prefill_decode_plan_is_left_as_is():
    pools = {p.name: p for p in (pb.llm_pool("pre", role=P), pb.llm_pool("dec", role=D))}
    plan = (pb.stage("prefill", "pre"), pb.stage("decode", "dec"))
    assert expand_plan(plan, pools) == plan
    rt = RequestTypeSpec(name="t", plan=plan)
    workload = WorkloadSpec(num_requests=5, request_types=(rt,))
    assert expand_workload(workload, pools) is workload


def test_only_the_types_on_the_prefill_pool_change():
    pools = (pb.llm_pool("llm"), pb.llm_pool("pre", role=P), pb.llm_pool("dec", role=D))
    colocated = RequestTypeSpec(name="colo", plan=(pb.stage("generate", "llm"),))
    disagg = RequestTypeSpec(name="disagg", plan=(pb.stage("generate", "pre"),))
    workload = WorkloadSpec(num_requests=10, arrival=pb.poisson(2.0),
                            request_types=(colocated, disagg))
    cfg = SimConfig(pools=pools, workload=workload)
    assert cfg.workload is not workload and workload.request_types[1].plan == disagg.plan
    colo_out, disagg_out = cfg.workload.request_types
    assert colo_out is colocated  # untouched type: same object
    assert kinds(disagg_out.plan) == [("prefill", "pre"), ("decode", "dec")]
    assert disagg_out.plan[0].kind is StageKind.PREFILL and disagg_out.name == "disagg"
    assert cfg.workload.num_requests == 10 and cfg.workload.arrival == workload.arrival


def test_service_groups_are_colocated_pools_of_one_model_in_config_order():
    pools = {p.name: p for p in (
        pb.llm_pool("fast", hardware="h200"), pb.llm_pool("solo", model_name="llama3_1_70b", tp=2),
        pb.llm_pool("slow", hardware="a100_80g"), pb.llm_pool("pre", role=P),
        pb.llm_pool("dec", role=D), pb.cpu_pool("cpu"))}
    assert service_groups(pools) == {"fast": ("fast", "slow"), "slow": ("fast", "slow")}
    assert service_groups({"fast": pools["fast"], "solo": pools["solo"]}) == {}
