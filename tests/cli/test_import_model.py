"""``hermes-sim import-model`` through the real command: the written entry loads the way the
catalog's do; bad input is one line, exit 2, nothing written; the default goes to the user catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from hermes_opt.compose.values import model_spec

ROOT = Path(__file__).resolve().parents[2]
GLM5 = ROOT / "tests" / "data" / "hf_configs" / "glm_5.json"


def _run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    code = "import sys; from hermes_opt.cli.sim_command import main; sys.argv[0] = 'hermes-sim'; main()"
    return subprocess.run([sys.executable, "-c", code, "import-model", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_written_entry_loads_through_the_catalog_path(tmp_path):
    done = _run(str(GLM5), "--name", "glm_5", "--out", str(tmp_path), "--hf-id", "zai-org/GLM-5")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "glm_5.yaml").read_text()
    assert text.startswith("# Model catalog entry")
    entry = yaml.safe_load(text)
    assert entry["hf_id"] == "zai-org/GLM-5"
    assert entry["source"] == "https://huggingface.co/zai-org/GLM-5/blob/main/config.json"
    spec = model_spec(OmegaConf.create(entry))
    assert (spec.name, spec.attention.value, spec.moe_layers) == ("glm_5", "mla", 75)


def test_default_destination_is_the_user_catalog(tmp_path):
    done = _run(str(GLM5), "--name", "glm_5", env_extra={"HERMES_OPT_CONFIG_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "model" / "glm_5.yaml").is_file()


def test_bad_inputs_are_one_line_exit_2_nothing_written(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{\"hidden_size\": 4096,")
    mamba = tmp_path / "mamba.json"
    mamba.write_text(json.dumps({"model_type": "mamba", "hidden_size": 2560, "state_size": 16,
                                 "num_hidden_layers": 64, "vocab_size": 50280}))
    qwen35 = ROOT / "tests" / "data" / "hf_configs" / "qwen3_5_397b_a17b.json"
    out = tmp_path / "out"
    for path, needle in ((bad_json, "not valid JSON"), (mamba, "state_size=16"),
                         (qwen35, "layer_types[0]='linear_attention'"),
                         (tmp_path / "absent.json", "cannot read")):
        done = _run(str(path), "--name", "x", "--out", str(out))
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("hermes-sim import-model: error: ")
        assert str(path) in done.stderr and needle in done.stderr
    done = _run(str(GLM5), "--name", "Bad-Name", "--out", str(out))
    assert done.returncode == 2 and "--name='Bad-Name'" in done.stderr
    assert not out.exists()


def test_existing_entry_is_kept_unless_forced(tmp_path):
    assert _run(str(GLM5), "--name", "glm_5", "--out", str(tmp_path)).returncode == 0
    again = _run(str(GLM5), "--name", "glm_5", "--out", str(tmp_path))
    assert again.returncode == 2 and "pass --force" in again.stderr
    assert _run(str(GLM5), "--name", "glm_5", "--out", str(tmp_path), "--force").returncode == 0


def test_help_lists_what_maps():
    done = _run("--help")
    assert done.returncode == 0
    assert "--out DIR" in done.stdout and "refused" in done.stdout and "glm_moe_dsa" in done.stdout
