"""kernel_tables: fits on synthetic AIConfigurator-style tables recover the efficiencies they
were generated from."""

from __future__ import annotations

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from hermes_opt.calibration import kernel_tables as kt  # noqa: E402

HW = {"bf16_dense_tflops": 1000.0, "fp8_dense_tflops": 2000.0, "fp4_dense_tflops": None,
      "mem_bw_gb_per_s": 4000.0, "scaleup_bw_gb_per_s": 450.0}
TRUE_GEMM = {"compute_efficiency": 0.7, "compute_half_tokens": 64.0, "memory_efficiency": 0.8,
             "launch_s": 4e-6}


def _write(path, columns: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def _gemm_table(root):
    m, n, k = (a.ravel() for a in np.meshgrid([1, 8, 64, 512, 4096, 16384],
                                              [1024, 4096, 8192, 16384], [1024, 2048, 7168],
                                              indexing="ij"))
    lat = kt.gemm_latency_ms(TRUE_GEMM, m.astype(float), n.astype(float), k.astype(float),
                             1000e12, 4000e9, 2.0)
    _write(root / "h100_sxm/gemm/vllm/0.1.0/gemm_perf.parquet",
           {"gemm_dtype": ["bfloat16"] * len(m), "kernel_source": ["x"] * len(m),
            "m": m, "n": n, "k": k, "latency": lat})


def _attention_tables(root):
    b, isl, h = (a.ravel() for a in np.meshgrid([1, 4], [1024, 4096], [8, 32, 64], indexing="ij"))
    flops = b * isl * (isl + 1) / 2.0 * 4 * 128 * h
    common = {"head_dim": np.full(len(b), 128), "num_heads": h, "num_key_value_heads": h // 4,
              "window_size": np.zeros(len(b), int), "kv_cache_dtype": ["bfloat16"] * len(b)}
    _write(root / "h100_sxm/attention/vllm/0.1.0/context_attention_perf.parquet",
           {**common, "batch_size": b, "isl": isl, "attn_dtype": ["bfloat16"] * len(b),
            "latency": flops / (1000e12 * 0.4) * 1e3})
    b, step, h = (a.ravel() for a in np.meshgrid([1, 16, 256], [63, 1023, 16383], [8, 32, 64],
                                                 indexing="ij"))
    kv = b * (step + 1 + 100.0) * 2 * 128 * (h // 4) * 2.0
    common = {k: (v[: len(b)] if k != "num_heads" else h) for k, v in common.items()}
    common.update(num_key_value_heads=h // 4, head_dim=np.full(len(b), 128),
                  window_size=np.zeros(len(b), int), kv_cache_dtype=["bfloat16"] * len(b))
    _write(root / "h100_sxm/attention/vllm/0.1.0/generation_attention_perf.parquet",
           {**common, "batch_size": b, "isl": np.ones(len(b), int), "step": step,
            "latency": (kv / (4000e9 * 0.9) + 8e-6) * 1e3})


def _nccl_table(root):
    g, size = (a.ravel() for a in np.meshgrid([2, 4, 8], 2 ** np.arange(10, 28, 2), indexing="ij"))
    lat = kt.allreduce_latency_ms([0.6, 10e-6, 2e-6], g, 2.0 * size, 450e9)
    _write(root / "h100_sxm/comm/nccl/2.20/nccl_perf.parquet",
           {"op_name": ["all_reduce"] * len(g), "nccl_dtype": ["half"] * len(g), "num_gpus": g,
            "message_size": size, "latency": lat})


def test_fit_recovers_known_efficiencies(tmp_path, monkeypatch):
    _gemm_table(tmp_path)
    _attention_tables(tmp_path)
    _nccl_table(tmp_path)
    monkeypatch.setattr(kt, "load_hardware", lambda name, hardware_dir=None: HW)
    result = kt.fit_directory(tmp_path, systems=["h100_sxm"])
    fit = result["vllm"]["h100_sxm"]["bf16"]
    assert fit["compute_efficiency"] == pytest.approx(0.7, rel=0.02)
    assert fit["memory_efficiency"] == pytest.approx(0.8, rel=0.02)
    assert fit["compute_half_tokens"] == pytest.approx(64.0, rel=0.05)
    assert fit["attention_efficiency"] == pytest.approx(0.4, rel=0.01)
    assert fit["decode_attention_efficiency"] == pytest.approx(0.9, rel=0.02)
    assert fit["attention_half_context_tokens"] == pytest.approx(100.0, rel=0.05)
    assert fit["comm_efficiency"] == pytest.approx(0.6, rel=0.02)
    assert fit["allreduce_latency_s"] == pytest.approx(10e-6, rel=0.05)
    assert fit["allreduce_latency_per_peer_s"] == pytest.approx(2e-6, rel=0.1)
    assert fit["heldout_median_pct"] < 1.0  # exact synthetic data: held-out shapes fit too
    assert "fp8" not in result["vllm"]["h100_sxm"]  # no fp8 rows in the table


def test_newest_version_wins(tmp_path):
    for version, lat in (("1.3.0rc20", 2.0), ("1.3.0", 1.0), ("1.2.9", 3.0)):
        _write(tmp_path / f"s/gemm/fw/{version}/gemm_perf.parquet", {"latency": [lat]})
    df, version = kt.newest_table(tmp_path, "s", "gemm", "fw", "gemm_perf.parquet")
    assert version == "1.3.0" and df.latency.iloc[0] == 1.0
