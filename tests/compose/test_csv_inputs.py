"""User-supplied CSV files fail with one ConfigError naming the field, never a pandas exception."""

import pytest
from omegaconf import OmegaConf

from hermes_opt.compose import to_sim, traces
from sim.errors import ConfigError

TABLE = {"kind": "table", "table_model": "llama2-70b", "table_hardware": "h100-80gb",
         "tensor_parallel": 2}


@pytest.mark.parametrize("content, why", [
    (None, "no such file"),
    ("a,b\n1,2\n", "missing column"),
    ("", "not a readable CSV"),
])
def test_bad_cost_table_file_is_a_config_error(tmp_path, content, why):
    path = tmp_path / "table.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=f"cost_model.path=.*{why}"):
        to_sim.splitwise_table(OmegaConf.create({**TABLE, "path": str(path)}), {"tp": 2})


def test_shipped_cost_table_still_loads():
    rows, source = to_sim.splitwise_table(OmegaConf.create({**TABLE, "path": None}), {"tp": 2})
    assert len(rows) > 10 and "llama2-70b/h100-80gb/tp2" in source


def test_missing_trace_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="workload.trace.path=.*no such file"):
        traces.read_trace(tmp_path / "absent.csv")
