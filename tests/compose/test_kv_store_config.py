"""``kv_tiers`` input through the real ``hermes-sim`` CLI: bad input is one line on stderr naming
the field (exit code 2, no traceback); ``enabled: false`` drops a tier; fixed mode says in
``cost_notes`` that its tiers are priced at capacity. Further bad values go through the same
compose path in process (``compose_overrides`` + ``sim_config``), which is what the CLI calls.

The CLI runs are started together (module fixture) so the file takes a few seconds, not one
interpreter start-up per case in a row."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fakes import subprocess_env

from hermes_opt.compose.overrides import compose_overrides
from hermes_opt.compose.to_sim import sim_config
from sim.errors import ConfigError

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]
BASE = ["workload=kv_private", "model=llama3_1_70b", "hardware=h100_sxm", "cluster.tp=2",
        "cluster.num_replicas=16", "cluster.weight_dtype=fp8", "workload.num_requests=50"]
HBM_DRAM = BASE + ["kv_tiers=hbm_dram"]

# id -> (arguments, fragments the single stderr line must contain, in order)
BAD = {
    "domain_larger_than_deployment": (
        BASE + ["kv_tiers=mist_c_rack_ssd", "cluster.num_replicas=4"],
        ["kv_tiers.tiers.rack.domain", "8 replicas", "larger than the deployment",
         "4 replicas"]),
    "tier_without_link": (
        HBM_DRAM + ["+kv_tiers.tiers.x={kind: dram, capacity_gb: 10, bandwidth_gb_per_s: 10}"],
        ["kv_tiers.tiers.x.link", "needs a link"]),
    "unknown_eviction": (
        HBM_DRAM + ["kv_tiers.eviction=fifo"], ["kv_tiers.eviction='fifo'", "lru, lfu, s3fifo"]),
    "unknown_admission": (
        HBM_DRAM + ["kv_tiers.admission=never"],
        ["kv_tiers.admission='never'", "always, second_access"]),
    "unknown_domain": (
        HBM_DRAM + ["kv_tiers.tiers.dram.domain=galaxy"],
        ["kv_tiers.tiers.dram.domain='galaxy'", "replica, node, rack, cluster"]),
    "unknown_tier_key": (
        HBM_DRAM + ["+kv_tiers.tiers.x={kind: dram, capacity_gb: 1, bandwidth_gb_per_s: 1, "
                    "bandwdth: 3, link: {bandwidth_gb_per_s: 1}}"],
        ["kv_tiers.tiers.x.bandwdth", "unknown key", "bandwidth_gb_per_s"]),
    "old_scope_key": (
        HBM_DRAM + ["+kv_tiers.tiers.dram.scope=shared"],
        ["kv_tiers.tiers.dram.scope", "renamed to domain", "cluster"]),
    "nan_link_bandwidth": (
        HBM_DRAM + ["kv_tiers.tiers.dram.link.bandwidth_gb_per_s=nan"],
        ["kv_tiers.tiers.dram.link.bandwidth_gb_per_s=nan", "finite"]),
    "enabled_not_a_bool": (
        HBM_DRAM + ["+kv_tiers.tiers.dram.enabled=yes"],
        ["kv_tiers.tiers.dram.enabled='yes'", "true or false"]),
    "unknown_prefix_pattern": (
        HBM_DRAM + ["workload.request_types.ctx.prefix.pattern=foo"],
        ["workload.request_types.ctx.prefix.pattern='foo'", "shared, private, sessions"]),
    "private_without_clients": (
        HBM_DRAM + ["workload.request_types.ctx.prefix.clients=0"],
        ["workload.request_types.ctx.prefix.clients=0", "private", "clients >= 1"]),
}
GOOD = {
    "hbm_dram": HBM_DRAM,
    "dram_disabled": HBM_DRAM + ["+kv_tiers.tiers.dram.enabled=false"],
    "fixed": BASE + ["kv_tiers=fixed_hit_rate"],
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Run every case above at once; id -> CompletedProcess-like (returncode, stdout, stderr)."""
    env = subprocess_env()
    procs = {}
    for name, args in [*((k, v[0]) for k, v in BAD.items()), *GOOD.items()]:
        cwd = tmp_path_factory.mktemp(name)
        procs[name] = subprocess.Popen(HERMES_SIM + args, cwd=cwd, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        out[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("case", list(BAD))
def test_bad_kv_input_is_one_line_naming_the_field(cli, case):
    proc = cli[case]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hermes-sim: error: "), proc.stderr
    position = 0
    for fragment in BAD[case][1]:
        found = lines[0].find(fragment, position)
        assert found >= 0, (fragment, lines[0])
        position = found + len(fragment)
    assert proc.stdout.strip() == ""


def _summary(cli, name) -> dict:
    proc = cli[name]
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_enabled_false_drops_the_tier(cli):
    both, dropped = _summary(cli, "hbm_dram"), _summary(cli, "dram_disabled")
    assert set(both["kv_tiers"]) == {"llm/hbm", "llm/dram"}
    assert set(dropped["kv_tiers"]) == {"llm/hbm"}
    assert "kv_tier:llm/dram" in both["cost_breakdown_usd_per_hour"]
    assert "kv_tier:llm/dram" not in dropped["cost_breakdown_usd_per_hour"]
    assert dropped["cost_usd_per_hour"] < both["cost_usd_per_hour"]
    assert dropped["kv_lookups"]["llm"]["lookups"] == both["kv_lookups"]["llm"]["lookups"] == 50


def test_fixed_mode_says_its_tiers_are_priced_at_capacity_and_stores_nothing(cli):
    s = _summary(cli, "fixed")
    notes = s.get("cost_notes") or []
    assert any("fixed" in note and "capacity" in note for note in notes), notes
    tiers = s["kv_tiers"]
    assert set(tiers) == {"llm/hbm", "llm/dram", "llm/ssd"}
    assert all(t["bytes_written"] == 0 and t["resident_bytes"] == 0 for t in tiers.values())
    assert sum(t["hits"] for t in tiers.values()) > 0  # the hit rates still serve lookups
    assert all(s["cost_breakdown_usd_per_hour"][f"kv_tier:{k}"] >= 0 for k in tiers)
    assert not _summary(cli, "hbm_dram").get("cost_notes")


# --- the same compose path, in process -------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    (["kv_tiers.client_affinity=sticky"], "kv_tiers.client_affinity='sticky': allowed: none, "
                                           "prefer, pin"),
    (["kv_tiers.dedup_inflight=maybe"], "kv_tiers.dedup_inflight='maybe': must be true or false"),
    (["kv_tiers.write_through=1"], "kv_tiers.write_through=1: must be true or false"),
    (["+kv_tiers.evict=lru"], "kv_tiers.evict: unknown key"),
    (["+kv_tiers.tiers.dram.link.shard=true"], "kv_tiers.tiers.dram.link.shard: unknown key"),
    (["kv_tiers.tiers.dram.link=5"], "kv_tiers.tiers.dram.link=5: must be a mapping"),
    (["kv_tiers.node_replicas=0"], "kv_tiers.node_replicas=0: must be an integer in 1..10,000"),
    (["kv_tiers.rack_replicas=2.5"], "kv_tiers.rack_replicas=2.5: must be a whole number"),
    (["kv_tiers.tiers.dram.kind=tape"], "kv_tiers.tiers.dram.kind='tape': allowed: hbm"),
    (["kv_tiers.tiers.hbm.domain=cluster"], "kv_tiers.tiers.hbm.domain='cluster': an hbm tier"),
    (["kv_tiers.tiers.dram.capacity_gb=0"], "kv_tiers.tiers.dram.capacity_gb=0.0: must be a "
                                             "finite number > 0"),
    (["kv_tiers.tiers.dram.latency_us=nan"],
     "kv_tiers.tiers.dram.latency_us=nan: must be a finite"),
    (["kv_tiers.tiers.dram.link.bandwidth_gb_per_s=inf"],
     "kv_tiers.tiers.dram.link.bandwidth_gb_per_s=inf: must be a finite"),
    (["kv_tiers.tiers.dram.link.bandwidth_gb_per_s=abc"],
     "kv_tiers.tiers.dram.link.bandwidth_gb_per_s='abc': must be a number"),
    (["+kv_tiers.tiers.dram.hit_rate=2"], "kv_tiers.tiers.dram.hit_rate=2.0: must be in [0, 1]"),
    (["kv_tiers.mode=fixed"], "mode 'fixed' needs a hit_rate on every tier"),
    (["kv_tiers.mode=random"], "kv_tiers.mode='random': allowed: lru, fixed"),
    (["kv_tiers.pool=nope"], "kv_tiers.pool='nope': must name a colocated or prefill LLM pool"),
    (["workload=kv_sessions", "workload.request_types.ctx.prefix.turns=0"],
     "workload.request_types.ctx.prefix.turns=0: must be an integer in 1..100,000"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_more_bad_kv_values_are_one_config_error(overrides, message):
    with pytest.raises(ConfigError) as err:
        sim_config(compose_overrides(HBM_DRAM + overrides))
    text = str(err.value)
    assert message in text and "\n" not in text, text


@pytest.mark.parametrize("field", ["kv_tiers.tiers.dram.latency_us",
                                   "kv_tiers.tiers.dram.link.latency_us"])
def test_a_negative_latency_is_reported_in_microseconds(field):
    with pytest.raises(ConfigError) as err:
        sim_config(compose_overrides(HBM_DRAM + [f"{field}=-5"]))
    assert f"{field}=-5" in str(err.value), str(err.value)


def test_empty_tiers_mean_no_store():
    cfg = sim_config(compose_overrides(HBM_DRAM + ["kv_tiers.tiers={}"]))
    assert cfg.kv_stores == ()
    cfg = sim_config(compose_overrides(BASE + ["kv_tiers=none"]))
    assert cfg.kv_stores == ()


def test_enabled_false_on_every_tier_is_no_store():
    cfg = sim_config(compose_overrides(HBM_DRAM + ["+kv_tiers.tiers.dram.enabled=false",
                                                   "+kv_tiers.tiers.hbm.enabled=false"]))
    assert cfg.kv_stores == ()


def test_preset_values_reach_the_store_spec():
    cfg = sim_config(compose_overrides(BASE + [
        "kv_tiers=mist_b_dram", "kv_tiers.eviction=s3fifo", "kv_tiers.admission=second_access",
        "kv_tiers.dedup_inflight=false", "kv_tiers.node_replicas=8",
        "kv_tiers.tiers.dram.link.bandwidth_gb_per_s=20", "+kv_tiers.tiers.dram.link.shared=true"]))
    (store,) = cfg.kv_stores
    (tier,) = store.tiers
    assert (store.eviction.value, store.admission.value, store.dedup_inflight,
            store.write_through, store.node_replicas, store.client_affinity.value) == \
        ("s3fifo", "second_access", False, True, 8, "pin")
    assert tier.domain.value == "node" and tier.capacity_bytes == 2048e9
    assert tier.link.bandwidth_bytes_per_s == 20e9 and tier.link.shared and tier.link.per_device
    assert tier.link.latency_s == pytest.approx(5e-6) and tier.latency_s == pytest.approx(0.1e-6)
    assert store.copies(tier, 16) == 2
