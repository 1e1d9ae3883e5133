"""Keys added with ``+`` are checked like any other: only open sections (pools, links, request
types, KV tiers) take new names; an unknown key is one line naming what the section has, and
never advice to add it with ``+``."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fakes import subprocess_env

from hermes_opt.compose.overrides import check_added_keys, compose_overrides, unknown_key_message
from sim.errors import ConfigError

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]


@pytest.mark.parametrize("override", ["+cluster.tpp=2", "+scheduler.max_num_seq=3",
                                      "+deployment.colocated.hardwre=h200"])
def test_a_plus_key_in_a_closed_section_is_an_error_listing_the_real_keys(override):
    cfg = compose_overrides([override])
    with pytest.raises(ConfigError) as err:
        check_added_keys(cfg, [override])
    key, value = override[1:].split("=")
    text = str(err.value)
    assert text.startswith(f"{key}={value}: unknown key; ")
    leaf = key.rsplit(".", 1)[1]
    assert leaf not in text.split("has: ")[1].split(", ")  # the typo is not offered back


@pytest.mark.parametrize("override", [
    "+cluster.pools.cpu={hardware: xeon_6980p, role: cpu}",
    "+workload.request_types.chat.slo.ttft_ms=300", "+cluster=qa_disagg_8gpu",
    "++cluster.tp=2"])
def test_open_sections_and_group_appends_are_allowed(override):
    check_added_keys(compose_overrides([override]), [override])


def test_hydras_advice_to_append_becomes_the_sections_keys():
    text = unknown_key_message("Could not override 'cluster.tpp'. To append to your config use "
                               "+cluster.tpp=2", [])
    assert text.startswith("cluster.tpp: unknown key; cluster has: ") and "num_replicas" in text
    assert "+" not in text


@pytest.mark.parametrize("argv", [["+cluster.tpp=2"], ["cluster.tpp=2"]])
def test_hermes_sim_gives_one_line_and_exit_2(tmp_path, argv):
    proc = subprocess.run(HERMES_SIM + argv + ["workload.num_requests=20"], cwd=tmp_path,
                          capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hermes-sim: error: cluster.tpp")
    assert "To append" not in lines[0] and "tp, " in lines[0]
