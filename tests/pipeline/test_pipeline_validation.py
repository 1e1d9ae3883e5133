"""Bad pipeline input: one ConfigError naming the field, before any simulation starts."""

from __future__ import annotations

import pytest

from sim import ConfigError, PoolRole, PoolSpec, simulate
from sim.kvstore.specs import KVLinkSpec, KVStoreSpec, KVTierSpec, TierKind
from sim.pipeline.specs import IndexKind, IndexSpec, LinkSpec, PrefixSpec
from sim.request import RouteMode, RouteTarget, Stage, StageKind


def _route(targets, mode=RouteMode.CASCADE):
    return Stage(kind=StageKind.ROUTE, pool="cpu", mode=mode, targets=tuple(targets))


def test_stage_with_no_pool_to_serve_it(b):
    with pytest.raises(ConfigError, match=r"plan\[0\]: stage 'embed' names pool 'embed'.*needs a pool of role embed"):
        b.config([b.llm_pool()], [b.stage("embed", "embed"), b.stage("generate", "llm")])


def test_stage_on_a_pool_of_the_wrong_role(b):
    with pytest.raises(ConfigError, match="stage 'preprocess' names pool 'llm'.*needs a pool of role cpu"):
        b.config([b.llm_pool()], [b.stage("preprocess", "llm"), b.stage("generate", "llm")])


@pytest.mark.parametrize("field,value,match", [
    ("capacity_bytes", 0.0, r"kv_tiers.tiers.dram.capacity_gb=0.0: must be a finite number > 0"),
    ("bandwidth_bytes_per_s", 0.0, r"kv_tiers.tiers.dram.bandwidth_gb_per_s=0.0: must be a finite"),
    ("bandwidth_bytes_per_s", float("inf"), r"bandwidth_gb_per_s=inf"),
])
def test_tier_with_zero_capacity_or_bandwidth(field, value, match):
    kw = dict(name="dram", kind=TierKind.DRAM, capacity_bytes=1e9, bandwidth_bytes_per_s=1e9,
              link=KVLinkSpec(bandwidth_bytes_per_s=1e9))
    kw[field] = value
    with pytest.raises(ConfigError, match=match):
        KVTierSpec(**kw)


def test_routing_cycle(b):
    targets = [RouteTarget(model="llama3_1_8b", pool="small"),
               RouteTarget(model="llama3_1_8b", pool="llm"),
               RouteTarget(model="llama3_1_8b", pool="small")]
    with pytest.raises(ConfigError, match=r"targets\[2\].pool='small': routing cycle"):
        b.config([b.llm_pool(), b.llm_pool("small"), b.cpu_pool()],
                 [_route(targets), Stage(kind=StageKind.GENERATE, pool="routed")])


def test_model_routed_to_a_pool_that_does_not_host_it(b):
    targets = [RouteTarget(model="llama3_1_70b", pool="small"), RouteTarget(model="llama3_1_8b", pool="llm")]
    with pytest.raises(ConfigError, match=r"targets\[0\].model='llama3_1_70b': pool 'small' hosts llama3_1_8b"):
        b.config([b.llm_pool(), b.llm_pool("small"), b.cpu_pool()],
                 [_route(targets), Stage(kind=StageKind.GENERATE, pool="routed")])


def test_routed_generate_needs_a_route_stage(b):
    with pytest.raises(ConfigError, match="'routed' needs an earlier 'route' stage"):
        b.config([b.llm_pool()], [Stage(kind=StageKind.GENERATE, pool="routed")])


def test_unknown_stage_knob(b):
    with pytest.raises(ConfigError, match=r"plan\[0\].topk=5.0: not a knob of stage 'vector_search'"):
        search = PoolSpec(name="s", model=None, hardware=b.hw("xeon_6980p"), role=PoolRole.RETRIEVAL,
                          index=IndexSpec(num_vectors=1000, nlist=10, nprobe=2))
        b.config([b.llm_pool(), search], [b.stage("vector_search", "s", topk=5), b.stage("generate", "llm")])


def test_kv_retrieval_without_a_store_recomputes(b):
    """kv_tiers=none is a design a search may pick: every lookup misses and prefill recomputes."""
    cfg = b.config([b.llm_pool()], [b.stage("kv_retrieval", "llm"), b.stage("generate", "llm")],
                   prefix=PrefixSpec(num_prefixes=2), n=30)
    s = simulate(cfg, 0).summary
    assert s["requests_completed"] == 30 and s["kv_lookups"] == {}
    assert s["stages"]["kv_retrieval@llm"]["service_ms"]["mean"] == 0.0


def test_prefill_without_decode_and_model_mismatch(b):
    with pytest.raises(ConfigError, match="must be followed by a 'decode' stage"):
        b.config([b.llm_pool("p", role=PoolRole.PREFILL)], [b.stage("prefill", "p")])
    with pytest.raises(ConfigError, match="decode pool hosts qwen2_5_1_5b but prefill pool 'p' hosts llama3_1_8b"):
        b.config([b.llm_pool("p", role=PoolRole.PREFILL),
                  b.llm_pool("d", role=PoolRole.DECODE, model_name="qwen2_5_1_5b")],
                 [b.stage("prefill", "p"), b.stage("decode", "d")])


def test_pool_roles_need_matching_models_and_hardware(b):
    with pytest.raises(ConfigError, match="embed pools need a model of kind embedding"):
        b.config([b.llm_pool(), PoolSpec(name="e", model=b.model("llama3_1_8b"),
                                         hardware=b.hw("h100_sxm"), role=PoolRole.EMBED)],
                 [b.stage("generate", "llm")])
    with pytest.raises(ConfigError, match="cpu pools need CPU hardware"):
        b.config([b.llm_pool(), PoolSpec(name="c", model=None, hardware=b.hw("h100_sxm"),
                                         role=PoolRole.CPU)], [b.stage("generate", "llm")])
    with pytest.raises(ConfigError, match="index needs .* GB but xeon_6980p has 768 GB"):
        b.config([b.llm_pool(), PoolSpec(name="s", model=None, hardware=b.hw("xeon_6980p"),
                                         role=PoolRole.RETRIEVAL, index=IndexSpec(
                                             kind=IndexKind.FLAT, num_vectors=1_000_000_000, dim=1024))],
                 [b.stage("generate", "llm")])


def test_fixed_mode_hit_rates_must_sum_to_at_most_one():
    from sim.kvstore.specs import KVStoreMode
    tiers = tuple(KVTierSpec(name=n, kind=k, capacity_bytes=1e9, bandwidth_bytes_per_s=1e9,
                             link=KVLinkSpec(bandwidth_bytes_per_s=1e9) if k is TierKind.DRAM else None,
                             hit_rate=0.6) for n, k in (("hbm", TierKind.HBM), ("dram", TierKind.DRAM)))
    with pytest.raises(ConfigError, match="hit rates must sum to <= 1"):
        KVStoreSpec(pool="llm", tiers=tiers, mode=KVStoreMode.FIXED)


def test_link_to_unknown_pool_and_hbm_tier_too_big(b):
    with pytest.raises(ConfigError, match="cluster.links.x.*names no pool"):
        b.config([b.llm_pool()], [b.stage("generate", "llm")], links=(
            LinkSpec(name="x", src_pool="llm", dst_pool="nope", bandwidth_bytes_per_s=1e9),))
    hbm = KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=60e9, bandwidth_bytes_per_s=3e12)
    cfg = b.config([b.llm_pool()], [b.stage("kv_retrieval", "llm"), b.stage("generate", "llm")],
                   prefix=PrefixSpec(), kv_stores=(KVStoreSpec(pool="llm", tiers=(hbm,)),))
    with pytest.raises(ConfigError, match="hbm tier .* leaves no KV blocks"):
        simulate(cfg, 0)


def test_cli_reports_bad_pipeline_input_in_one_line(tmp_path):
    import subprocess
    import sys
    cases = [
        ["workload=rag_news"],  # no pools for the RAG stages
        ["workload=code_kv", "+cluster=code_8gpu", "kv_tiers.tiers.dram.bandwidth_gb_per_s=0"],
        ["workload=pipeline_mix", "+cluster=mix_8gpu",
         "workload.request_types.qa_routed.plan.1.targets.0.model=llama3_1_70b"],
    ]
    for args in cases:
        proc = subprocess.run([sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()",
                               *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hermes-sim: error:"), proc.stderr
        assert "Traceback" not in proc.stderr
