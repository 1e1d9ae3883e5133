"""benchmarks/silicon_ttft_breakdown.py reads bench_silicon_sample's JSON (no simulation)."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "silicon_ttft_breakdown.py"


def _module():
    spec = importlib.util.spec_from_file_location("silicon_ttft_breakdown", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(backend, mode, conc, isl, pred, meas, queue):
    return {"backend": backend, "mode": mode, "concurrency": conc, "isl": isl, "ttft_ms": pred,
            "silicon_ttft_ms": meas, "queue_mean_ms": queue}


def test_breakdown_groups_ratios_and_filters_the_mode(tmp_path, capsys):
    rows = [_row("vllm", "agg", 4, 1024, 50.0, 100.0, 0.0),      # 0.5x, no queue
            _row("vllm", "agg", 4, 1024, 100.0, 100.0, 0.0),     # 1x
            _row("vllm", "agg", 128, 8192, 400.0, 100.0, 300.0),  # 4x, queue 3/4
            _row("vllm", "disagg", 4, 1024, 1.0, 100.0, 0.0),    # filtered out by --mode agg
            {"id": "x", "reason": "model not in catalog"}]        # not simulated: skipped
    path = tmp_path / "silicon.json"
    path.write_text(json.dumps({"rows": rows}))
    assert _module().main([str(path), "--mode", "agg"]) == 0
    out = capsys.readouterr().out.splitlines()
    everything = next(line for line in out if line.startswith("vllm") and " all " in line)
    assert "n    3" in everything and "pred/meas  1.00" in everything
    low = next(line for line in out if "c<=4" in line)
    assert "n    2" in low and "queue share  0.00" in low
    high = next(line for line in out if "c65-256" in line)
    assert "pred/meas  4.00" in high and "queue share  0.75" in high
    assert any("isl<=8.3k" in line for line in out)
    scatter = next(line for line in out if line.startswith("vllm") and " all " not in line
                   and "c" not in line.split()[1])
    # one row in [0.5, 1), one in [1, 2), one in [4, 8)
    assert [int(x) for x in scatter.split()[1:]] == [0, 0, 0, 0, 0, 1, 1, 0, 1, 0]
