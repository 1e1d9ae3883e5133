"""Bad study files, storage paths, n_trials and sweeper settings through the real CLIs: one line on
stderr naming the field, exit status 2, no traceback (and a one-line notice, exit 0, for an
n_trials below the trials already done)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from fakes import subprocess_env

HERMES_OPT = [sys.executable, "-c", "from hermes_opt.cli.opt_command import main; main()"]
HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]

TINY = """
name: tiny
base: [workload.num_requests=50, workload.arrival.rate_per_s=12, slo=interactive]
space:
  hardware: {choices: [h100_sxm, a100_80g]}
  cluster.num_replicas: {type: int, low: 1, high: 3}
constraints: ["ttft_ms.p99 <= 1000"]
n_trials: 2
batch_size: 2
replicates: 1
n_jobs: 1
"""
NO_SPACE = "name: nospace\nbase: [workload.num_requests=50]\nconstraints: ['ttft_ms.p99 <= 1000']\n"


def run(cmd, args, cwd):
    return subprocess.run(cmd + args, cwd=cwd, capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)


def one_line_error(proc, prog, needle):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), proc.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


EMPTY = "empty study file; a study needs at least: space"
NO_PARAMETER = "space={}: a study needs at least one parameter to search"


@pytest.mark.parametrize("text, needle", [("", EMPTY), (NO_SPACE, NO_PARAMETER)])
def test_empty_study_or_space_is_one_line(tmp_path, text, needle):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    line = one_line_error(run(HERMES_OPT, [f"study={path}"], tmp_path), "hermes-opt", needle)
    assert text or f"study='{path}': " in line
    assert not (tmp_path / "runs").exists()  # nothing ran


@pytest.mark.parametrize("text, needle", [
    ("# only a comment\n\n", EMPTY), (NO_SPACE + "space: {}\n", NO_PARAMETER),
    (NO_SPACE + "space:\n", NO_PARAMETER)])
def test_empty_study_or_space_messages(tmp_path, text, needle):
    from hermes_opt.study import definition
    from sim.errors import ConfigError
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("{}", "\\{\\}")):
        definition.load(str(path))


def test_capacity_mode_needs_no_space(tmp_path):
    from hermes_opt.study import definition
    path = tmp_path / "nospace.yaml"
    path.write_text(NO_SPACE)
    spec = definition.load(str(path), without_space=True)
    assert spec.space.parameters == ()


def test_bad_storage_path_is_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    study = tmp_path / "tiny.yaml"
    study.write_text(TINY)
    url = f"sqlite:///{afile}/x.db"
    line = one_line_error(run(HERMES_OPT, [f"study={study}", f"storage={url}"], tmp_path),
                          "hermes-opt", f"cannot create the database: {afile} is a file, not a "
                                        f"directory")
    assert line.startswith(f"hermes-opt: error: storage='{url}': ")
    assert afile.read_text() == "x"


def test_bad_storage_path_messages(tmp_path):
    """The other cases, in-process: the CLI turns the same ConfigError into its one line."""
    from hermes_opt.study.storage import open_storage
    from sim.errors import ConfigError
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [(f"sqlite:///{afile}/sub/x.db", f"{afile} is a file, not a directory"),
             (f"sqlite:///{tmp_path}", f"cannot create the database: {tmp_path} is a directory"),
             ("study.db", "cannot open: not a database URL; use sqlite:///<path>"),
             ("foo://x", "cannot open: unknown database URL scheme 'foo'")]
    if Path("/proc").is_dir():
        cases.append(("sqlite:////proc/x.db", "cannot create the database: /proc is not writable"))
    for url, needle in cases:
        with pytest.raises(ConfigError) as err:
            open_storage(url)
        assert str(err.value).startswith(f"storage={url!r}: ") and needle in str(err.value)
        assert "\n" not in str(err.value)


def test_n_trials_below_done_is_a_notice_and_keeps_the_stored_target(tmp_path):
    from hermes_opt.run import runner
    from hermes_opt.study import definition
    study = tmp_path / "tiny.yaml"
    study.write_text(TINY + "evaluator: fakes:fake_evaluator\n")
    args = [f"storage=sqlite:///{tmp_path / 's.db'}"]
    runner.run_study(definition.load(str(study), args), progress_stream=None)  # 2 trials
    again = run(HERMES_OPT, [f"study={study}", *args, "n_trials=1"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    notice = [line for line in again.stderr.splitlines() if "already done" in line]
    assert notice == ["[tiny] 2 trials already done, n_trials=1: nothing to run (raise n_trials "
                      "to continue; the report covers all 2)"], again.stderr
    assert "0 trial(s) evaluated" in again.stderr
    stored = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 's.db'}")
    # coverage trials (after n_trials) do not count, and a run asking nothing adds none
    main = [t for t in stored.trials if "coverage" not in t.user_attrs]
    assert len(main) == 2 and len(stored.trials) > 2
    assert stored.user_attrs["spec"]["n_trials"] == 2
    summary = (tmp_path / "runs" / "tiny" / "report" / "summary.md").read_text()
    assert "2 of n_trials=2" in summary and "n_trials=1" not in summary


SWEEP = ["--multirun", "hydra/sweeper=hermes_optuna", "hydra.sweeper.n_trials=2",
         "hydra.sweeper.batch_size=2", "workload.num_requests=20", "cluster.num_replicas=1,2"]


def test_bad_sweeper_setting_is_one_line(tmp_path):
    proc = run(HERMES_SIM, SWEEP + ["hydra.sweeper.budget.max_devices=abc",
                                    f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path)
    one_line_error(proc, "hermes-sim", "hydra.sweeper.budget.max_devices=abc: Value 'abc' of "
                                       "type 'str' could not be converted to Integer")
    assert not (tmp_path / "sweep").exists()  # refused before Hydra launched anything


@pytest.mark.parametrize("arg, needle", [
    ("hydra.sweeper.budget=abc", "hydra.sweeper.budget=abc: must be a mapping"),
    ("hydra.sweeper.budget={foo:1}", "hydra.sweeper.budget={foo:1}: unknown key 'foo'; allowed: "
                                     "max_usd_per_hour, max_devices"),
    ("hydra.sweeper.budget={max_devices:-1}", "hydra.sweeper.budget.max_devices=-1: must be an "
                                              "integer >= 1"),
    ("hydra.sweeper.n_trials=abc", "hydra.sweeper.n_trials=abc: "),
    ("hydra.sweeper.sampler=bogus", "hydra.sweeper.sampler='bogus': allowed: "),
    ("hydra.sweeper.bogus=1", "hydra.sweeper.bogus=1: unknown key 'bogus'; allowed: n_trials"),
    ("hydra.sweeper.seed=[1", "hydra.sweeper.seed=[1: "),
])
def test_bad_sweeper_setting_messages(capsys, arg, needle):
    """More settings, in-process (the pre-check hermes-sim runs before Hydra)."""
    from hermes_opt.cli.common import precheck_sweeper
    with pytest.raises(SystemExit) as exit_:
        precheck_sweeper("hermes-sim", SWEEP + [arg])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hermes-sim: error: " + needle), lines


def test_good_sweeper_settings_pass_the_precheck(capsys):
    from hermes_opt.cli.common import precheck_sweeper
    precheck_sweeper("hermes-sim", SWEEP + ["hydra.sweeper.budget={max_devices:8}",
                                            "hydra.sweeper.budget.max_usd_per_hour=50"])
    assert capsys.readouterr().err == ""


def test_sweeper_budget_from_the_command_line_is_applied(tmp_path):
    """``hydra.sweeper.budget.max_devices=...`` used to fail inside Hydra (a None default); now
    it merges, and a budget of one device makes every candidate (2+ devices) infeasible."""
    from omegaconf import OmegaConf
    proc = run(HERMES_SIM, SWEEP + ["hydra.sweeper.budget.max_devices=1",
                                    f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert results.n_trials == 2 and results.n_infeasible_not_launched == 2


@pytest.mark.parametrize("name, shown", [("..", "'..'"), ("null", "None"), ("a/b", "'a/b'"),
                                         (".hidden", "'.hidden'"), ("x" * 101, "'xxxx")])
def test_a_study_name_that_is_not_a_folder_name_is_one_line(tmp_path, name, shown):
    """The name is a folder under runs/: name=.. wrote the study and its report into the working
    directory, name=null ran a study named "None"."""
    path = tmp_path / "study.yaml"
    path.write_text(TINY)
    line = one_line_error(run(HERMES_OPT, [f"study={path}", f"name={name}"], tmp_path),
                          "hermes-opt", f"name={shown}")
    assert "must be 1-100 letters, digits" in line
    assert not (tmp_path / "runs").exists() and not (tmp_path / "study.db").exists()


def _bomb(levels: int = 8, width: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\nname: bomb\nspace:\n  cluster.tp: {choices: [1]}\n"


@pytest.mark.parametrize("text, needle", [
    (_bomb(), "its YAML aliases expand to more than 100,000 values"),
    ("a: &a [1, *a]\nname: loop\nspace:\n  cluster.tp: {choices: [1]}\n",
     "its YAML aliases expand to more than 100,000 values"),
    ("name: huge\n# " + "x" * (1 << 20) + "\nspace:\n  cluster.tp: {choices: [1]}\n",
     "bytes; a study file is at most 1,048,576 bytes"),
])
def test_a_study_file_that_would_exhaust_the_machine_is_refused_at_once(tmp_path, text, needle):
    """An alias bomb (72 aliases, 4e8 strings once expanded) hung OmegaConf; a 50 MB file too."""
    path = tmp_path / "study.yaml"
    path.write_text(text)
    proc = subprocess.run(HERMES_OPT + [f"study={path}"], cwd=tmp_path, capture_output=True,
                          text=True, env=subprocess_env(), timeout=60)
    one_line_error(proc, "hermes-opt", needle)


def test_shipped_studies_are_far_below_the_expansion_limit():
    import yaml

    from hermes_opt.compose import catalog
    from hermes_opt.study.study_file import MAX_EXPANDED_NODES, expanded_nodes
    for path in sorted(catalog.STUDIES_DIR.glob("*.yaml")):
        assert expanded_nodes(yaml.compose(path.read_text())) < MAX_EXPANDED_NODES / 50, path
