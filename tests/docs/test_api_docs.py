"""docs/api.md's code blocks and docs/examples/api_quickstart.ipynb's code cells run as written
(no Jupyter needed: the notebook's JSON is parsed and its cells executed in order, in one
namespace, as a kernel would; a cell's last expression is evaluated, not displayed)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def run_cells(cells: list[str]) -> dict:
    namespace: dict = {"__name__": "__doc__"}
    for source in cells:
        exec(compile(ast.parse(source), "<cell>", "exec"), namespace)
    return namespace


def test_the_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    notebook = json.loads((DOCS / "examples" / "api_quickstart.ipynb").read_text())
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert len(cells) == 4
    ns = run_cells(cells)
    assert ns["summary"]["requests_completed"] == 200
    assert list(ns["loads"]["rate_per_s"]) == [2, 4, 8]
    assert ns["loads"]["ttft_p90_ms"].is_monotonic_increasing  # more load, longer queues
    assert ns["candidate"].deployment["layout"] == "llm 4 x h200 (2 replicas of tp 2)"
    assert ns["s"]["deployment"]["traffic"]["requests"] == 400
    assert 0 < ns["s"]["kv_lookups"]["llm"]["token_hit_rate"] < 1


def test_the_api_page_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the study example writes runs/kv_mooncake/ here
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "api.md").read_text(), re.S)
    assert len(blocks) == 5
    ns = run_cells(blocks)
    assert len(ns["frame"]) == 4 and (tmp_path / "runs" / "kv_mooncake" / "study.db").is_file()
    assert "workload.arrival.rate_per_s=-1.0: must be > 0" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["compose", "simulate", "simulate_candidate", "run_study",
                                  "load_study", "trials"])
def test_every_documented_call_exists(name):
    from hermes_opt import api
    assert callable(getattr(api, name)) and f"api.{name}(" in (DOCS / "api.md").read_text()
