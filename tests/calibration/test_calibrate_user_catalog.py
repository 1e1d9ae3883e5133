"""``hermes-sim calibrate`` writes into the user catalog (issue 24 item 3): by default to
``$HERMES_OPT_CONFIG_DIR/calibration/<name>.yaml``, usable at once as ``calibration=<name>``;
never into the installed package, and never under a shipped profile's name in the user catalog."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fakes import subprocess_env
from test_calib_cli import steps_csv
from user_catalog import acme_catalog, package_fingerprint

from hermes_opt.cli.calibrate_command import calibrate_main
from hermes_opt.compose import calibration_profile as profile
from hermes_opt.compose import catalog

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]


@pytest.fixture
def user_root(tmp_path, monkeypatch):
    root = acme_catalog(tmp_path / "mine")
    monkeypatch.setenv(catalog.USER_ROOT_ENV, str(root))
    return root


def fit(tmp_path, *extra):
    calibrate_main(["--name", "acme_fit", "--hardware", "acme_x1", "--engine", "my engine",
                    "--steps", steps_csv(tmp_path), "--max-evals", "40", *extra])


def test_calibrate_writes_to_the_user_catalog_and_the_profile_is_usable_by_name(
        tmp_path, user_root, capsys):
    before = package_fingerprint()
    fit(tmp_path)
    written = user_root / "calibration" / "acme_fit.yaml"
    assert f"wrote {written}" in capsys.readouterr().out
    assert profile.load("acme_fit").hardware == "acme_x1"
    assert package_fingerprint() == before
    proc = subprocess.run(HERMES_SIM + ["model=llama3_1_8b", "hardware=acme_x1", "pricing=acme_quote",
                                        "calibration=acme_fit", "workload.num_requests=40"],
                          cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout.strip().splitlines()[-1])["deployment"]
    assert record["pools"][0]["calibration"] == "acme_fit"
    assert record["catalog_sources"]["calibration/acme_fit"] == str(written)


@pytest.mark.parametrize("args, needle", [
    (["--name", "splitwise_h100_fp16"], "--name='splitwise_h100_fp16': 'splitwise_h100_fp16' is "
                                        "a shipped calibration profile"),
    (["--out", str(catalog.CONF_DIR / "calibration" / "mine.yaml")], "is inside the installed "
                                                                      "package"),
])
def test_calibrate_refuses_the_package_and_shipped_names_in_one_line(tmp_path, user_root, capsys,
                                                                     args, needle):
    before = package_fingerprint()
    argv = ["--name", "acme_fit", "--hardware", "acme_x1", "--engine", "e",
            "--steps", steps_csv(tmp_path)]
    with pytest.raises(SystemExit) as exit_:
        calibrate_main(argv + args)  # a later --name wins (argparse)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hermes-sim calibrate: error: ") and needle in err[0]
    assert package_fingerprint() == before
    assert not (user_root / "calibration").exists()


def test_a_shipped_name_may_be_written_elsewhere(tmp_path, user_root):
    out = tmp_path / "elsewhere" / "splitwise_h100_fp16.yaml"
    fit(tmp_path, "--name", "splitwise_h100_fp16", "--out", str(out))
    assert out.is_file() and profile.load_path(out).name == "splitwise_h100_fp16"
    assert catalog.source("calibration", "splitwise_h100_fp16") is None  # still the shipped one
