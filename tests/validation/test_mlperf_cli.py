"""`hermes-sim validate` with user tables: bad input is one line and exit status 2 (no traceback)."""

from __future__ import annotations

import pytest

from hermes_opt.calibration import mlperf_rows
from hermes_opt.cli.validate_command import parser, validate_main
from hermes_opt.compose import aliases


@pytest.fixture(autouse=True)
def reset_tables():
    yield
    aliases.use_tables([])
    mlperf_rows.use_benchmark_tables([])


def _fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        validate_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("hermes-sim validate: error: ")
    return err


def test_malformed_aliases_file(tmp_path, capsys):
    bad = tmp_path / "aliases.yaml"
    bad.write_text("hardware:\n  - {pattern: '[h100', name: h100_sxm}\n")
    err = _fails(["--aliases", str(bad), "--out", str(tmp_path / "r")], capsys)
    assert str(bad) in err and "hardware[0].pattern" in err and "regular expression" in err
    assert not (tmp_path / "r").exists()


def test_missing_files(tmp_path, capsys):
    assert "no such file" in _fails(["--aliases", str(tmp_path / "nope.yaml")], capsys)
    assert "no such file" in _fails(["--measurements", str(tmp_path / "nope.csv")], capsys)
    assert "no such file" in _fails(["--mlperf-benchmarks", str(tmp_path / "nope.yaml")], capsys)


def test_bad_measurements_table(tmp_path, capsys):
    # a row without a usable value is counted in coverage (test_mlperf_rows); a file without
    # the required columns is bad input
    table = tmp_path / "v50.csv"
    table.write_text("model,gpu,shoe_size\nx,y,3\n")
    err = _fails(["--measurements", str(table)], capsys)
    assert "missing column(s)" in err and str(table) in err


def test_malformed_benchmark_table(tmp_path, capsys):
    bad = tmp_path / "bench.yaml"
    bad.write_text("benchmarks:\n  x:\n    model: llama2_70b\n    isl: {kind: zipf, mean: 3}\n"
                   "    osl: {mean: 3}\n")
    err = _fails(["--mlperf-benchmarks", str(bad)], capsys)
    assert "benchmarks.x.isl.kind='zipf'" in err and "allowed: fixed" in err


def test_help_documents_the_tables():
    text = parser().format_help()
    for needle in ("--measurements", "--aliases", "--mlperf-benchmarks", "mlperf-offline",
                   "Interactive: target_qps", "conf/tables/aliases.yaml"):
        assert needle in text
