"""Bring your own hardware and price (issue 24) through the real commands: a made-up GPU and its
negotiated price in a user catalog, used by ``hermes-sim`` (the variable, ``--config-dir``,
``hydra.searchpath``) and by a small ``hermes-opt`` study; the JSON and the report name the
files; nothing under the package changes."""

from __future__ import annotations

import json
import subprocess
import sys

import optuna
import pytest
from fakes import subprocess_env
from user_catalog import acme_catalog, acme_hardware, package_fingerprint, write

from hermes_opt.compose.catalog import CONF_DIR

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]
HERMES_OPT = [sys.executable, "-c", "from hermes_opt.cli.opt_command import main; main()"]
RUN = ["model=llama3_1_8b", "workload.num_requests=60", "hardware=acme_x1", "pricing=acme_quote"]


def run(cmd, cwd, root=None):
    env = subprocess_env()
    if root is not None:
        env["HERMES_OPT_CONFIG_DIR"] = str(root)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def one_line_error(proc, prog, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("how", ["variable", "--config-dir", "hydra.searchpath"])
def test_hermes_sim_prices_a_user_gpu_and_names_the_files(tmp_path, how):
    root = acme_catalog(tmp_path / "mine")
    before = package_fingerprint()
    args = {"variable": [], "--config-dir": ["--config-dir", str(root)],
            "hydra.searchpath": [f"hydra.searchpath=[file://{root}]"]}[how]
    proc = run(HERMES_SIM + args + RUN, tmp_path, root if how == "variable" else None)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["price_set"] == "acme_quote" and out["price_date"] == "2026-12-01"
    assert out["cost_usd_per_hour"] == 2.5 and out["requests_completed"] > 0
    record = out["deployment"]
    assert record["vendor"] == "ACME" and record["layout"] == "llm 1 x acme_x1 (1 replica of tp 1)"
    assert record["catalog_sources"] == {
        "hardware/acme_x1": str(root / "hardware" / "acme_x1.yaml"),
        "pricing/acme_quote": str(root / "pricing" / "acme_quote.yaml")}
    assert record["price_set"]["provider"] == "ACME Cloud"
    assert package_fingerprint() == before


def test_a_user_entry_shadows_a_shipped_one_in_hermes_sim(tmp_path):
    root = tmp_path / "mine"
    path = write(root, "hardware", "h100_sxm", acme_hardware() | {"name": "h100_sxm"})
    traffic = write(root, "workload", "ours", (CONF_DIR / "workload" / "chat.yaml").read_text())
    proc = run(HERMES_SIM + ["model=llama3_1_8b", "workload=ours", "workload.num_requests=30"],
               tmp_path, root)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout.strip().splitlines()[-1])["deployment"]
    assert record["vendor"] == "ACME"  # the default hardware=h100_sxm is the user's file
    assert record["catalog_sources"] == {"hardware/h100_sxm": str(path),
                                         "workload/ours": str(traffic)}


@pytest.mark.parametrize("content, needles", [
    ({"memory_gb": "lots"}, ["acme_x1.yaml: memory_gb='lots': must be a finite number"]),
    ({"memroy_gb": 80}, ["acme_x1.yaml: memroy_gb: unknown key; allowed: name, "]),
    ("name: acme_x1\nnode: [unclosed\n", ["acme_x1.yaml: line 3, column 1: ", "must be valid YAML"]),
])
def test_a_bad_user_entry_is_one_line_exit_2(tmp_path, content, needles):
    root = acme_catalog(tmp_path / "mine")
    write(root, "hardware", "acme_x1",
          content if isinstance(content, str) else acme_hardware() | content)
    one_line_error(run(HERMES_SIM + RUN, tmp_path, root), "hermes-sim", *needles)


def test_a_user_root_that_is_not_a_folder_and_a_missing_config_dir_are_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    one_line_error(run(HERMES_SIM + RUN, tmp_path, tmp_path / "afile"), "hermes-sim",
                   "HERMES_OPT_CONFIG_DIR=", "not a directory")
    one_line_error(run(HERMES_SIM + ["--config-dir", str(tmp_path / "nope")] + RUN, tmp_path),
                   "hermes-sim", "no such directory")


def test_unknown_names_list_the_user_entries_too(tmp_path):
    root = acme_catalog(tmp_path / "mine")
    one_line_error(run(HERMES_SIM + ["hardware=acme_x2"], tmp_path, root), "hermes-sim",
                   "hardware='acme_x2': unknown hardware; allowed: a100_80g, acme_x1, ")


SMALL_STUDY = """
name: acme_small
base: [model=llama3_1_8b, workload.num_requests=200, workload.arrival.rate_per_s=4,
       slo=interactive, pricing=acme_quote]
space:
  hardware: {choices: [acme_x1]}
  cluster.num_replicas: {type: int, low: 1, high: 2}
constraints: ["ttft_ms.p99 <= 1000"]
headroom: 1
redundancy: none
n_trials: 2
batch_size: 2
replicates: 1
n_jobs: 1
"""


def test_a_user_study_runs_on_the_user_gpu_and_its_report_names_the_sources(tmp_path):
    root = acme_catalog(tmp_path / "mine")
    write(root, "studies", "acme_small", SMALL_STUDY)
    before = package_fingerprint()
    listed = run(HERMES_OPT + ["list"], tmp_path, root)
    assert "acme_small" in listed.stdout.split()
    proc = run(HERMES_OPT + ["study=acme_small"], tmp_path, root)
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="acme_small",
                              storage=f"sqlite:///{tmp_path / 'runs/acme_small/study.db'}")
    results = [t.user_attrs["result"] for t in study.trials if "result" in t.user_attrs]
    assert len(results) >= 2
    for result in results:
        assert result["price_set"] == "acme_quote"
        assert result["deployment"]["catalog_sources"]["hardware/acme_x1"] == \
            str(root / "hardware" / "acme_x1.yaml")
    summary = (tmp_path / "runs/acme_small/report/summary.md").read_text()
    assert f"hardware/acme_x1: {root / 'hardware' / 'acme_x1.yaml'}" in summary
    assert "acme_quote (ACME Cloud, 2026-12-01)" in summary
    assert package_fingerprint() == before


@pytest.mark.parametrize("group, name, change, needle", [
    ("hardware", "acme_x1", {"memory_gb": "lots"}, "acme_x1.yaml: memory_gb='lots': "),
    ("pricing", "acme_quote", {"date": 20261201}, "acme_quote.yaml: date=20261201: must be text"),
])
def test_a_study_on_a_bad_user_entry_is_one_line_exit_2_not_infeasible_trials(
        tmp_path, group, name, change, needle):
    import yaml
    root = acme_catalog(tmp_path / "mine")
    path = root / group / f"{name}.yaml"
    write(root, group, name, yaml.safe_load(path.read_text()) | change)
    write(root, "studies", "acme_small", SMALL_STUDY)
    proc = run(HERMES_OPT + ["study=acme_small"], tmp_path, root)
    one_line_error(proc, "hermes-opt", needle)
    assert not (tmp_path / "runs" / "acme_small" / "study.db").exists()
