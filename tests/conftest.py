"""Shared fixtures for the optimizer's tests (study/, run/, cli/, hydra_plugins/): fake-simulator
studies in a temporary directory. ``support/`` (the fake evaluator) is importable from every test
and from the hermes-opt subprocesses they start."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

SUPPORT = Path(__file__).resolve().parent / "support"
# No test may read the developer's own user catalog (~/.config/hermes-opt or the variable's
# folder): point it at a folder that does not exist; tests that need one set their own.
os.environ["HERMES_OPT_CONFIG_DIR"] = str(Path(tempfile.gettempdir()) / "hermes-opt-tests-no-user-catalog")
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))


def fake_raw(tmp_path: Path, **changes) -> dict:
    raw = {
        "name": "fake",
        "base": ["model=llama3_1_70b"],
        "space": {
            "hardware": {"choices": ["h100_sxm", "a100_80g", "l40s", "h200"]},
            "cluster.tp": {"choices": [1, 2, 4, 8]},
            "cluster.num_replicas": {"type": "int", "low": 1, "high": 8},
            "scheduler.max_num_seqs": {"type": "int", "low": 16, "high": 256, "log": True},
        },
        "constraints": ["ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50"],
        "budget": {"max_devices": 32},
        "n_trials": 16, "batch_size": 4, "replicates": 2, "seed": 3, "n_jobs": 1,
        "evaluator": "fakes:fake_evaluator",
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
    }
    raw.update(changes)
    return raw


@pytest.fixture
def fake_spec(tmp_path):
    from hermes_opt.study.definition import from_dict

    def make(**changes):
        return from_dict(fake_raw(tmp_path, **changes))
    return make
