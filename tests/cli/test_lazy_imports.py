"""Start-up shape (issue 13): ``hermes-sim`` reaches its first simulated event, and a study worker
and the two commands load, without the heavy libraries only some runs need (tables, plots, the
optimizer, process pools). Which modules are loaded, not how long it takes: speed is
``benchmarks/bench_vidur_scenario.py --startup``'s to print."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fakes import subprocess_env

HEAVY = ("pandas", "pyarrow", "matplotlib", "plotly", "optuna", "scipy", "sklearn", "dask",
         "distributed", "sqlalchemy", "joblib")

# hermes-sim's own entry point, stopped where the engine would fire its first event; prints the
# top-level packages loaded by then and how many times the config was composed
FIRST_EVENT = """
import json, os, sys
import sim.engine
from hydra._internal.config_loader_impl import ConfigLoaderImpl
compositions = []
_load = ConfigLoaderImpl.load_configuration
def counting_load(self, *args, **kwargs):
    compositions.append(1)
    return _load(self, *args, **kwargs)
ConfigLoaderImpl.load_configuration = counting_load
def first_event(self, *args, **kwargs):
    print(json.dumps({"modules": sorted({m.split(".")[0] for m in sys.modules}),
                      "pending": bool(self.pending), "compositions": len(compositions)}))
    sys.stdout.flush()
    os._exit(0)
sim.engine.Engine.run = first_event
sys.argv = ["hermes-sim", *sys.argv[1:]]
from hermes_opt.cli.sim_command import main
main()
"""


def loaded(code: str, argv: list[str], cwd) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True,
                          text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [
    [],
    # files written after the run (parquet: pandas + pyarrow) are no reason to import them first
    ["output.requests_path=requests.parquet", "output.trace_path=trace.json",
     "output.summary_path=summary.json", "hydra/launcher=joblib"],
], ids=["defaults", "with-outputs"])
def test_hermes_sim_reaches_its_first_event_without_heavy_imports_composing_once(tmp_path, argv):
    seen = loaded(FIRST_EVENT, argv, tmp_path)
    assert seen["pending"]
    assert sorted(set(HEAVY) & set(seen["modules"])) == []
    assert seen["compositions"] == 1


@pytest.mark.parametrize("module", ["hermes_opt.run.worker", "hermes_opt.cli.sim_command",
                                    "hermes_opt.cli.opt_command", "hermes_opt.compose.evaluate"])
def test_importing_the_entry_points_and_the_worker_loads_no_heavy_library(tmp_path, module):
    code = (f"import json, sys, {module}\n"
            "print(json.dumps({'modules': sorted({m.split('.')[0] for m in sys.modules})}))")
    assert sorted(set(HEAVY) & set(loaded(code, [], tmp_path)["modules"])) == []
