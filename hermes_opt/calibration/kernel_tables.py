"""Fit the roofline's efficiencies (``sim.cost.roofline.RooflineParams``) to measured kernel tables.

The tables follow NVIDIA AIConfigurator's layout (``<system>/<op>/<framework>/<version>/*.parquet``,
latency in ms): GEMMs, context and generation attention, MoE and NCCL all-reduce. Each fit uses the
same formula the roofline charges, so a fitted value can be dropped into a calibration profile as is.
Fits are least squares on log time (a 10 % miss costs the same on a 10 us kernel as on a 10 ms one).
Held-out error: one in three distinct shapes (never rows) is left out of a second fit and predicted.
Results are plain dicts; ``benchmarks/fit_kernel_tables.py`` writes them as YAML.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# AIConfigurator system directory -> our hardware catalog name (hermes_opt/conf/hardware/*.yaml)
AIC_SYSTEMS = {"a100_sxm": "a100_80g", "h100_sxm": "h100_sxm", "h200_sxm": "h200",
               "b200_sxm": "b200", "b300_sxm": "b300", "gb200": "gb200", "gb300": "gb300",
               "l40s": "l40s", "rtx_pro_6000_server": "rtx_pro_6000"}
FRAMEWORKS = ("trtllm", "vllm", "sglang")
# our dtype key -> (table dtype, peak-FLOPs field of the hardware YAML, weight bytes per element)
DTYPES = {"bf16": ("bfloat16", "bf16_dense_tflops", 2.0), "fp8": ("fp8", "fp8_dense_tflops", 1.0),
          "fp8_block": ("fp8_block", "fp8_dense_tflops", 1.0),
          "nvfp4": ("nvfp4", "fp4_dense_tflops", 0.5)}
# KV cache of a bf16 model is bf16; quantized models are served with an fp8 KV cache.
KV_DTYPE = {"bf16": "bfloat16", "fp8": "fp8", "fp8_block": "fp8", "nvfp4": "fp8"}
KV_PEAK = {"bfloat16": "bf16_dense_tflops", "fp8": "fp8_dense_tflops"}
MOE_BINS = (8, 32, 128, 512)  # tokens per expert at which moe_efficiency is reported


def read_table(path: Path):
    """One parquet table as a pandas DataFrame (pyarrow is imported only when a table is read)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading kernel tables needs pyarrow: pip install pyarrow") from exc
    return pq.read_table(path).to_pandas()


def _version_key(name: str) -> tuple:
    # 1.3.0rc20 < 1.3.0 < 1.3.0.post1: numbers sort above the end of a version (0, 0), which
    # sorts above pre-release tags (-1) and below post-release tags (0, 1)
    import re
    parts = re.findall(r"\d+|[a-z]+", name.lower())
    return tuple((1, int(p)) if p.isdigit() else ((0, 1) if p == "post" else (-1, 0))
                 for p in parts) + ((0, 0),)


def newest_table(root: Path, system: str, op: str, framework: str, filename: str, keep=None):
    """(DataFrame, version) of the newest version whose table has rows ``keep`` accepts."""
    base = Path(root) / system / op / framework
    if not base.is_dir():
        return None, None
    for version in sorted((d.name for d in base.iterdir()), key=_version_key, reverse=True):
        path = base / version / filename
        if path.is_file():
            df = read_table(path)
            df = df[keep(df)] if keep is not None else df
            if len(df):
                return df, version
    return None, None


def _least_squares_log(model, x0, measured_ms, bounds):
    """Parameters (in log space) minimising sum(log(model / measured)^2)."""
    from scipy.optimize import least_squares
    log_meas = np.log(measured_ms)
    best = None
    for scale in (1.0, 0.3, 3.0):  # a few starts: the roofline max has kinks
        start = np.clip(np.asarray(x0) + np.log(scale), bounds[0], bounds[1])
        res = least_squares(lambda x: np.log(model(x)) - log_meas, start, bounds=bounds)
        if best is None or res.cost < best.cost:
            best = res
    return best.x


def _holdout_mask(shape_keys) -> np.ndarray:
    """True for rows of every third distinct shape (sorted), so whole shapes are held out."""
    uniq = sorted(set(shape_keys))
    held = {s for i, s in enumerate(uniq) if i % 3 == 1}
    return np.array([s in held for s in shape_keys])


def _error_pct(pred_ms, measured_ms) -> tuple[float, float]:
    err = np.abs(np.asarray(pred_ms) / np.asarray(measured_ms) - 1.0) * 100.0
    return round(float(np.median(err)), 1), round(float(np.percentile(err, 90)), 1)


def _fit_with_holdout(fit, predict, rows, keys):
    """Held-out (median, p90) % error of ``fit`` on 2/3 of the shapes, and the fit on all rows."""
    held = _holdout_mask(keys)
    params = fit(rows[~held])
    errors = _error_pct(predict(params, rows[held]), rows[held].latency.to_numpy())
    return fit(rows), errors


# --- GEMM -----------------------------------------------------------------------------
def gemm_latency_ms(p: dict, m, n, k, peak_flops: float, bw_bytes_s: float, w_bytes: float):
    """The roofline's GEMM time: compute (ramping in M) vs weight + bf16 activation traffic, plus
    a fixed launch time (in the simulator that is part of ``layer_overhead_s``)."""
    ramp = m / (m + p["compute_half_tokens"])
    compute_s = 2.0 * m * n * k / (peak_flops * p["compute_efficiency"] * ramp)
    memory_s = (n * k * w_bytes + 2.0 * m * (n + k)) / (bw_bytes_s * p["memory_efficiency"])
    return (np.maximum(compute_s, memory_s) + p["launch_s"]) * 1e3


def gemm_rows(df, table_dtype: str):
    """Best kernel per (M, N, K) for LLM-layer shapes: N, K >= 1024, M <= 16384."""
    df = df[(df.gemm_dtype == table_dtype) & (df.n >= 1024) & (df.k >= 1024) & (df.m <= 16384)]
    return df.groupby(["m", "n", "k"], as_index=False).latency.min()


def fit_gemm(rows, peak_flops: float, bw_bytes_s: float, w_bytes: float):
    """(params, held-out error) of compute_efficiency, compute_half_tokens, memory_efficiency and
    launch_s. Without the launch term the few-microsecond floor of small GEMMs (N = K = 1024 at
    M = 1 is under 1 us of HBM traffic, ~8 us measured) drags memory_efficiency far down."""
    def predict(p, r):
        return gemm_latency_ms(p, r.m.to_numpy(float), r.n.to_numpy(float), r.k.to_numpy(float),
                               peak_flops, bw_bytes_s, w_bytes)

    def fit(r):
        def unpack(x):
            return {"compute_efficiency": np.exp(x[0]), "compute_half_tokens": np.exp(x[1]),
                    "memory_efficiency": np.exp(x[2]), "launch_s": np.exp(x[3])}
        x = _least_squares_log(lambda x: predict(unpack(x), r), np.log([0.7, 32.0, 0.7, 4e-6]),
                               r.latency.to_numpy(), ([-5, -3, -5, -20], [0, 12, 0, -8]))
        return {key: float(v) for key, v in unpack(x).items()}
    return _fit_with_holdout(fit, predict, rows, list(zip(rows.n, rows.k)))


# --- attention ------------------------------------------------------------------------
def _head_keys(r):
    return list(zip(r.num_heads, r.num_key_value_heads, r.head_dim))


def context_attention_rows(df, kv_dtype: str):
    """Full-attention prompts of >= 1024 tokens; an fp8 KV cache prefers fp8 math when measured."""
    df = df[(df.get("window_size", 0) == 0) & (df.isl >= 1024) & (df.kv_cache_dtype == kv_dtype)]
    if kv_dtype == "fp8" and (df.get("attn_dtype", "") == "fp8").any():
        df = df[df.attn_dtype == "fp8"]
    return df


def fit_context_attention(rows, peak_flops: float):
    """attention_efficiency: causal pairs * 4 * head_dim * heads FLOPs at peak * eff."""
    def ideal_ms(r):
        pairs = r.batch_size * r.isl * (r.isl + 1) / 2.0
        return (pairs * 4.0 * r.head_dim * r.num_heads / peak_flops * 1e3).to_numpy(float)

    def fit(r):  # the log-LS optimum of one scale factor is the geometric mean ratio
        return float(np.exp(np.mean(np.log(ideal_ms(r) / r.latency.to_numpy()))))
    return _fit_with_holdout(fit, lambda eff, r: ideal_ms(r) / eff, rows, _head_keys(rows))


def generation_attention_rows(df, kv_dtype: str):
    return df[(df.get("window_size", 0) == 0) & (df.kv_cache_dtype == kv_dtype)]  # old: no window


def fit_generation_attention(rows, bw_bytes_s: float, kv_bytes: float):
    """decode_attention_efficiency, attention_half_context_tokens and a launch time: KV bytes over
    HBM, with every sequence charged ``half`` extra tokens (the ramp c / (c + half) of the
    roofline), plus the kernel's fixed ~10 us (``layer_overhead_s`` in the simulator)."""
    def predict(p, r):
        ctx = (r.isl + r.step).to_numpy(float)
        per_token = (2.0 * r.head_dim * r.num_key_value_heads * kv_bytes).to_numpy(float)
        return (r.batch_size.to_numpy(float) * (ctx + p[1]) * per_token
                / (bw_bytes_s * p[0]) + p[2]) * 1e3

    def fit(r):
        x = _least_squares_log(lambda x: predict(np.exp(x), r), np.log([0.6, 256.0, 5e-6]),
                               r.latency.to_numpy(), ([-6, 0, -20], [0, 14, -8]))
        return [float(v) for v in np.exp(x)]
    return _fit_with_holdout(fit, predict, rows, _head_keys(rows))


# --- MoE ------------------------------------------------------------------------------
def _moe_mask(df, table_dtype: str):
    """Balanced routing, no expert parallelism, gated (3-matrix) experts."""
    return ((df.moe_dtype == table_dtype) & (df.moe_ep_size == 1)
            & (df.get("distribution", "balanced") == "balanced")
            & ~df.kernel_source.astype(str).str.contains("nongated"))


def moe_rows(df, table_dtype: str):
    """The rows ``_moe_mask`` keeps, best kernel per shape."""
    df = df[_moe_mask(df, table_dtype)]
    keys = ["num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size"]
    return df.groupby(keys, as_index=False).latency.min()


def moe_efficiency(rows, gemm: dict, peak_flops: float, bw_bytes_s: float, w_bytes: float):
    """Roofline time (dense GEMM fit, experts' FLOPs and touched weights) / measured, binned by
    tokens per expert, plus the constant with least log error over 16-512 tokens per expert."""
    t, k, e = (rows[c].to_numpy(float) for c in ("num_tokens", "topk", "num_experts"))
    params = 3.0 * rows.hidden_size * rows.inter_size / rows.moe_tp_size  # per expert per device
    ramp = t / (t + gemm["compute_half_tokens"])
    compute_s = 2.0 * params * t * k / (peak_flops * gemm["compute_efficiency"] * ramp)
    touched = np.minimum(e, t * k)  # balanced routing spreads assignments over distinct experts
    memory_s = touched * params * w_bytes / (bw_bytes_s * gemm["memory_efficiency"])
    ratio = (np.maximum(compute_s, memory_s) * 1e3 / rows.latency).to_numpy(float)
    per_expert = t * k / e
    by_bin = {}
    for tpe in MOE_BINS:
        near = (per_expert >= tpe / 1.5) & (per_expert <= tpe * 1.5)
        by_bin[tpe] = round(float(np.exp(np.mean(np.log(ratio[near])))), 3) if near.any() else None
    band = (per_expert >= 16) & (per_expert <= 512)
    if not band.any():
        return None, by_bin, (None, None)
    keys = list(zip(rows.hidden_size[band], rows.inter_size[band]))
    held = _holdout_mask(keys)
    log_r = np.log(ratio[band])
    train_const = np.exp(np.mean(log_r[~held]))
    errors = _error_pct(ratio[band][held] / train_const, np.ones(held.sum()))
    return float(np.exp(np.mean(log_r))), by_bin, errors


# --- all-reduce -----------------------------------------------------------------------
def allreduce_latency_ms(p, gpus, num_bytes, link_bytes_s: float):
    """``sim.cost.roofline.allreduce_time_s``: fixed + per-peer latency + ring traffic."""
    return (p[1] + p[2] * (gpus - 1)
            + 2.0 * (gpus - 1) / gpus * num_bytes / (link_bytes_s * p[0])) * 1e3


def fit_allreduce(df, link_bytes_s: float):
    """comm_efficiency, allreduce_latency_s, allreduce_latency_per_peer_s from NCCL all_reduce
    in half precision (``message_size`` counts elements: 2 bytes each)."""
    rows = df[(df.op_name == "all_reduce") & (df.nccl_dtype == "half")]

    def predict(p, r):
        return allreduce_latency_ms(p, r.num_gpus.to_numpy(float),
                                    2.0 * r.message_size.to_numpy(float), link_bytes_s)

    def fit(r):  # efficiency capped at 1: RooflineParams requires a fraction
        x = _least_squares_log(lambda x: predict(np.exp(x), r), np.log([0.7, 10e-6, 1e-6]),
                               r.latency.to_numpy(), ([-6, -20, -25], [0, -4, -6]))
        return [float(v) for v in np.exp(x)]
    return _fit_with_holdout(fit, predict, rows, list(rows.message_size))


# --- one (framework, system) ------------------------------------------------------------
def _attention_fits(root, system, framework, kv_dtype, hw) -> dict:
    """Prefill and decode attention fits for one KV dtype (empty if not measured)."""
    peak, bw = hw[KV_PEAK[kv_dtype]], hw["mem_bw_gb_per_s"] * 1e9
    out: dict = {}
    ctx, ctx_ver = newest_table(root, system, "attention", framework,
                                "context_attention_perf.parquet")
    if ctx is not None and peak and len(rows := context_attention_rows(ctx, kv_dtype)):
        eff, err = fit_context_attention(rows, peak * 1e12)
        out.update(attention_efficiency=round(eff, 4), heldout_attention_pct=list(err),
                   attention_version=ctx_ver)
    gen, _ = newest_table(root, system, "attention", framework, "generation_attention_perf.parquet")
    if gen is not None and len(rows := generation_attention_rows(gen, kv_dtype)):
        kv_bytes = 2.0 if kv_dtype == "bfloat16" else 1.0
        (eff, half, launch), err = fit_generation_attention(rows, bw, kv_bytes)
        out.update(decode_attention_efficiency=round(eff, 4),
                   attention_half_context_tokens=round(half, 1),
                   decode_attention_launch_s=float(f"{launch:.3g}"),
                   heldout_decode_attention_pct=list(err))
    return out


def fit_framework_system(root, system: str, framework: str, hw: dict, comm: dict) -> dict:
    """{dtype: fitted parameters} for one framework on one system; ``hw`` is our hardware YAML
    as a dict, ``comm`` the system's all-reduce fit (shared by frameworks)."""
    gemm_df, version = newest_table(root, system, "gemm", framework, "gemm_perf.parquet")
    if gemm_df is None:
        return {}
    bw = hw["mem_bw_gb_per_s"] * 1e9
    out = {}
    for key, (table_dtype, peak_field, w_bytes) in DTYPES.items():
        peak = hw.get(peak_field)
        rows = gemm_rows(gemm_df, table_dtype)
        if not peak or len(rows) < 30:  # dtype not measured, or no peak to scale against
            continue
        gemm, err = fit_gemm(rows, peak * 1e12, bw, w_bytes)
        entry = {k: round(v, 4 if k != "compute_half_tokens" else 1) for k, v in gemm.items()
                 if k != "launch_s"}
        entry["gemm_launch_s"] = float(f"{gemm['launch_s']:.3g}")
        entry.update(n_rows=len(rows), heldout_median_pct=err[0], heldout_p90_pct=err[1])
        entry.update(_attention_fits(root, system, framework, KV_DTYPE[key], hw))
        moe_df, moe_ver = newest_table(root, system, "moe", framework, "moe_perf.parquet",
                                       keep=lambda d, t=table_dtype: _moe_mask(d, t))
        if moe_df is not None and len(mrows := moe_rows(moe_df, table_dtype)):
            const, by_bin, merr = moe_efficiency(mrows, gemm, peak * 1e12, bw, w_bytes)
            entry.update(moe_efficiency=None if const is None else round(const, 4),
                         moe_efficiency_by_tokens_per_expert=by_bin,
                         heldout_moe_pct=list(merr), moe_version=moe_ver)
        entry.update(comm)
        entry["source"] = (f"aiconfigurator-core 0.12.0 systems/data/{system}: "
                           f"gemm/{framework}/{version}/gemm_perf.parquet (+ attention, moe, "
                           f"comm/nccl/{comm.get('nccl_version')})")
        out[key] = entry
    return out


def fit_comm(root, system: str, hw: dict) -> dict:
    """The system's NCCL all-reduce fit (newest NCCL version), as RooflineParams fields."""
    df, version = newest_table(root, system, "comm", "nccl", "nccl_perf.parquet")
    if df is None or not hw.get("scaleup_bw_gb_per_s"):
        return {}
    (eff, lat, per_peer), err = fit_allreduce(df, hw["scaleup_bw_gb_per_s"] * 1e9)
    return {"comm_efficiency": round(eff, 4), "allreduce_latency_s": float(f"{lat:.3g}"),
            "allreduce_latency_per_peer_s": float(f"{per_peer:.3g}"),
            "heldout_comm_pct": list(err), "nccl_version": version}


def load_hardware(name: str, hardware_dir: Path | None = None) -> dict:
    import yaml
    base = hardware_dir or Path(__file__).resolve().parents[1] / "conf" / "hardware"
    return yaml.safe_load((Path(base) / f"{name}.yaml").read_text())


def fit_directory(root, hardware_dir: Path | None = None, systems=None) -> dict:
    """{framework: {our hardware name: {dtype: params}}} over every system and framework found."""
    result: dict = {}
    for system, ours in AIC_SYSTEMS.items():
        if (systems and system not in systems) or not (Path(root) / system).is_dir():
            continue
        hw = load_hardware(ours, hardware_dir)
        comm = fit_comm(root, system, hw)
        for framework in FRAMEWORKS:
            fitted = fit_framework_system(root, system, framework, hw, comm)
            if fitted:
                result.setdefault(framework, {})[ours] = fitted
    return result
