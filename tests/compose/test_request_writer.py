"""Per-request rows streamed to a file as requests finish (``outputs.RequestWriter``) hold the
same rows as the in-memory ``SimResult.requests`` written at the end (``write_requests``)."""

from __future__ import annotations

import pandas as pd
import pytest

from hermes_opt.compose import outputs
from sim import simulate
from sim.errors import ConfigError
from tests.sim.test_metrics_folding import _tiny_config


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streamed_file_equals_rows_written_at_the_end(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(outputs, "REQUEST_BATCH_ROWS", 37)  # many appends
    config = _tiny_config(400, record=True)
    kept = simulate(config, 2)
    outputs.write_requests(kept, str(tmp_path / f"whole{suffix}"))
    writer = outputs.RequestWriter(str(tmp_path / f"streamed{suffix}"))
    result = simulate(config, 2, request_sink=writer)
    writer.close()
    assert result.requests is None and result.summary == kept.summary
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    whole = read(tmp_path / f"whole{suffix}")
    streamed = read(tmp_path / f"streamed{suffix}")
    assert len(streamed) == 400
    assert list(streamed["finish_s"]) == sorted(streamed["finish_s"])  # completion order
    streamed = streamed.sort_values("id").reset_index(drop=True)
    for column in outputs.REQUEST_COLUMNS:
        a, b = whole[column], streamed[column]
        assert a.isna().equals(b.isna()), column
        assert list(a[a.notna()]) == list(b[b.notna()]), column


def test_csv_bytes_equal_the_pandas_writer_once_sorted(tmp_path):
    config = _tiny_config(150, record=True)
    outputs.write_requests(simulate(config, 4), str(tmp_path / "whole.csv"))
    writer = outputs.RequestWriter(str(tmp_path / "streamed.csv"))
    simulate(config, 4, request_sink=writer)
    writer.close()
    head, *rows = (tmp_path / "streamed.csv").read_text().splitlines(keepends=True)
    rows.sort(key=lambda line: int(line.split(",", 1)[0]))
    assert head + "".join(rows) == (tmp_path / "whole.csv").read_text()


def test_bad_suffix_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="output.requests_path"):
        outputs.RequestWriter(str(tmp_path / "rows.txt"))
