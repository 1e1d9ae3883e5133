"""``hermes-sim --multirun``: each printed JSON line names its job's overrides, and the sweep
ends with ``<hydra.sweep.dir>/summary.csv`` (one row per job, job order); a single run's JSON is
unchanged (no ``overrides`` key). Also the trace's per-replica counter tracks (``ph: C``)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from fakes import subprocess_env

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]


def run(args, cwd, timeout=300):
    proc = subprocess.run(HERMES_SIM + args, cwd=cwd, capture_output=True, text=True,
                          env=subprocess_env(), timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_multirun_lines_carry_overrides_and_the_sweep_writes_a_csv(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    # tp=1 of the 70B model does not fit on one H100: an infeasible row with its reason
    proc = run(["--multirun", "model=llama3_1_70b", "cluster.tp=4,1", "cluster.num_replicas=1,2",
                "workload.num_requests=30", f"hydra.sweep.dir={sweep}", *extra], tmp_path)
    jobs = [["model=llama3_1_70b", f"cluster.tp={tp}", f"cluster.num_replicas={n}",
             "workload.num_requests=30"] for tp in (4, 1) for n in (1, 2)]

    printed = json_lines(proc.stdout)
    assert sorted(p["overrides"] for p in printed) == sorted(jobs[:2])  # feasible jobs only
    for p in printed:
        replicas = int(p["overrides"][2].split("=")[1])
        assert p["pools"]["llm"]["replicas"] == replicas and p["num_devices"] == 4 * replicas

    table = sweep / "summary.csv"
    assert table.exists(), sorted(sweep.rglob("*"))
    with table.open(newline="") as f:
        reader = csv.DictReader(f)
        rows, columns = list(reader), reader.fieldnames
    assert columns[:4] == ["model", "cluster.tp", "cluster.num_replicas", "workload.num_requests"]
    for name in ("status", "ttft_ms.p99", "tpot_ms.p99", "e2e_ms.p99", "output_tokens_per_s",
                 "cost_usd_per_hour", "slo_tokens_per_usd", "reason"):
        assert name in columns
    assert len(rows) == len(jobs)
    assert [[f"{k}={row[k]}" for k in columns[:4]] for row in rows] == jobs  # job-number order
    assert [row["status"] for row in rows] == ["ok", "ok", "infeasible", "infeasible"]
    by_overrides = {tuple(p["overrides"]): p for p in printed}
    for row, job in zip(rows[:2], jobs[:2]):
        summary = by_overrides[tuple(job)]
        assert float(row["ttft_ms.p99"]) == summary["ttft_ms"]["p99"]
        assert float(row["slo_tokens_per_usd"]) == summary["slo_tokens_per_usd"]
        assert float(row["cost_usd_per_hour"]) == summary["cost_usd_per_hour"] > 0
        assert row["reason"] == ""
    for row in rows[2:]:
        assert "does not fit" in row["reason"] and row["ttft_ms.p99"] == ""


def test_single_run_json_has_no_overrides_and_no_csv(tmp_path):
    proc = run(["workload.num_requests=30"], tmp_path)
    (summary,) = json_lines(proc.stdout)
    assert "overrides" not in summary and summary["requests_completed"] == 30
    assert not list(tmp_path.rglob("summary.csv"))


def test_trace_has_kv_queue_and_batch_counters_per_replica(tmp_path):
    trace_path = tmp_path / "t.json"
    proc = run([f"output.trace_path={trace_path}", "workload.num_requests=30",
                "cluster.num_replicas=2"], tmp_path)
    (summary,) = json_lines(proc.stdout)
    events = json.loads(trace_path.read_text())["traceEvents"]
    threads = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert set(threads.values()) == {"replica llm/0", "replica llm/1"}
    counters = [e for e in events if e["ph"] == "C"]
    spans = [e for e in events if e["ph"] == "X"]
    assert spans and counters
    for tid, name in threads.items():
        label = name.removeprefix("replica ")
        mine = [e for e in counters if e["tid"] == tid]
        by_name = {}
        for e in mine:
            assert e["name"].startswith(label + " ") and e["pid"] == 1
            assert isinstance(e["ts"], float) and e["ts"] >= 0
            by_name.setdefault(e["name"], []).append(e["args"])
        assert set(by_name) == {f"{label} KV blocks", f"{label} queue depth",
                                f"{label} batch size"}
        kv, queue, batch = (by_name[f"{label} {s}"] for s in ("KV blocks", "queue depth",
                                                              "batch size"))
        assert len(kv) == len(queue) == len(batch) >= 1
        capacity = {a["used"] + a["free"] for a in kv}
        assert len(capacity) == 1 and capacity.pop() > 0  # used + free = the cache's blocks
        assert all(0 <= a["used"] for a in kv) and max(a["used"] for a in kv) > 0
        assert all(a["waiting"] >= 0 for a in queue)
        assert all(a["seqs"] >= 1 for a in batch)
        assert max(a["seqs"] for a in batch) <= 256  # scheduler.max_num_seqs of continuous
    # one sample per step or decode-run start: as many as the replicas' scheduled activities
    assert len(counters) == 3 * summary["pools"]["llm"]["steps"]
