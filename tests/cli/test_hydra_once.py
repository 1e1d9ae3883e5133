"""A plain ``hermes-sim`` run composes its config once (``cli/hydra_once.py``) and hands the job
exactly what ``@hydra.main`` hands it: the task config and Hydra's own part (``HydraConfig``:
overrides, mode, runtime, output dir). ``@hydra.main`` composes twice for the same run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fakes import subprocess_env

# In a subprocess (Hydra configures logging and changes process state): run hermes-sim's task with
# the simulation replaced by a dump of what the job got, by the entry point (``main``: the
# compose-once path for plain overrides) or by ``@hydra.main`` itself; count compositions.
DUMP = """
import json, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from hermes_opt.cli import common, sim_command

compositions = []
_load = ConfigLoaderImpl.load_configuration
def counting_load(self, *args, **kwargs):
    compositions.append(1)
    return _load(self, *args, **kwargs)
ConfigLoaderImpl.load_configuration = counting_load

out, path, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
def dump(cfg):
    with open(out, "w") as f:
        json.dump({"task": OmegaConf.to_container(cfg, resolve=False, enum_to_str=True),
                   "hydra": OmegaConf.to_container(HydraConfig.instance().cfg, resolve=False,
                                                   enum_to_str=True),
                   "compositions": len(compositions)}, f, sort_keys=True)
    return {"dumped": True}
sim_command.simulate_config = dump
sys.argv = ["hermes-sim", *argv]
if path == "main":
    sim_command.main()
else:
    common.run_hydra("hermes-sim", sim_command._sim_app)
"""

CASES = [
    [],
    ["model=llama3_1_70b", "hardware=h200", "cluster.tp=4", "scheduler=chunked",
     "workload.arrival.rate_per_s=4", "seed=3"],
    ["hydra.run.dir=out", "hydra.output_subdir=.hydra", "hydra/launcher=joblib"],
    ["+cluster.pools.decode={hardware: h200, model: llama3_1_70b, role: decode, tp: 4}",
     "~cluster.pools.decode.tp", "++seed=5", "workload=rag_news", "+cluster=rag_8gpu"],
    ["hydra.job.chdir=true", "hydra.run.dir=job", "hydra.verbose=true"],
]


def job_seen(tmp_path, path: str, argv: list[str]) -> dict:
    out = tmp_path / f"{path}.json"
    run_dir = tmp_path / path
    run_dir.mkdir()
    proc = subprocess.run([sys.executable, "-c", DUMP, str(out), path, *argv], cwd=run_dir,
                          capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(out.read_text())
    text = json.dumps(seen).replace(str(run_dir), "<cwd>")  # runtime.cwd and output_dir
    return json.loads(text)


@pytest.mark.parametrize("argv", CASES, ids=lambda argv: " ".join(argv)[:40] or "defaults")
def test_the_job_gets_what_hydra_main_gives_it_from_one_composition(tmp_path, argv):
    once = job_seen(tmp_path, "main", argv)
    hydra_main = job_seen(tmp_path, "hydra_main", argv)
    # Hydra.get_mode, then Hydra.run (hydra.verbose's debug output composes more, in both)
    assert hydra_main["compositions"] - once["compositions"] == 1
    assert once["compositions"] == 1 or "hydra.verbose=true" in argv
    assert once["task"] == hydra_main["task"]
    assert once["hydra"] == hydra_main["hydra"]
    assert once["hydra"]["hydra"]["mode"] == "RUN"
    assert once["hydra"]["hydra"]["overrides"]["hydra"][-1:] == ["hydra.mode=RUN"]


@pytest.mark.parametrize("argv", [["--cfg", "job"], ["-m", "seed=1"], ["-cn", "sim"],
                                  ["hydra.mode=MULTIRUN"], ["--help"]])
def test_hydra_flags_and_modes_are_left_to_hydra_main(argv):
    from hermes_opt.cli.hydra_once import plain_run
    assert not plain_run(argv)
    assert plain_run(["seed=1", "hydra.run.dir=x", "+cluster=rag_8gpu", "~cluster.pools"])


@pytest.mark.parametrize("argv, line", [
    (["hydra.foo=1"], "hydra.foo: unknown key; hydra has: callbacks, env, help, "),
    (["hydra/launcher=joblib", "hydra.launcher.n_job=2"],
     "hydra.launcher.n_job: unknown key; hydra.launcher has: _target_, backend, batch_size, "),
    (["hydra.job.chdir=abc"], "hydra.job.chdir=abc: Value 'abc' is not a valid bool"),
    (["hydra/launcher=nope"], "In 'hydra/config': Could not find 'hydra/launcher/nope'; allowed: "
                              "basic, joblib"),
    (["cluster.tp=1,2"], "Ambiguous value for argument 'cluster.tp=1,2' "),
])
def test_a_bad_hydra_setting_is_one_line_from_the_one_composition(tmp_path, argv, line):
    proc = subprocess.run([sys.executable, "-c", DUMP, str(tmp_path / "x.json"), "main", *argv],
                          cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(),
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hermes-sim: error: " + line), lines
    assert not (tmp_path / "x.json").exists()  # refused before the job ran
