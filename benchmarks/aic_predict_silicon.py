"""AIConfigurator's own TTFT/TPOT predictions for the agg rows of its ``silicon_sample.csv``.

Runs under a separate venv holding only ``aiconfigurator-core`` (never imported by hermes-opt):

    python3.11 -m venv /work/venv-aic
    /work/venv-aic/bin/pip install /tmp/aic/aiconfigurator_core-*.whl
    /work/venv-aic/bin/python benchmarks/aic_predict_silicon.py [--csv PATH] [--out CSV]
        [--workers N] [--models-only-in LIST]

Per agg row: ``get_database(system, backend, version)`` (the row's backend_version when AIC lists
it as queryable, else its ``current`` slot), ``get_model(model_path, ModelConfig(tp, pp,
attention_dp, moe_tp, moe_ep, gemm/moe quant modes of the row))`` and ``backend.run_agg`` at
``batch_size`` = the row's concurrency with ``ctx_tokens`` = max(isl, 8192) bounded by
isl * (batch - 1) (AIC's own agg sweep keeps at least one generation request per step). Writes
``id, aic_ttft_ms, aic_tpot_ms, aic_version, reason``; disagg rows get a reason (not attempted).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

OUT_DEFAULT = Path(__file__).resolve().parent / "data" / "aic_silicon_predictions.csv"
FIELDS = ("id", "aic_ttft_ms", "aic_tpot_ms", "aic_version", "aic_quant", "reason")


def default_csv() -> Path:
    import importlib.util
    spec = importlib.util.find_spec("aiconfigurator_core")
    return Path(list(spec.submodule_search_locations)[0]) / "systems" / "silicon_sample.csv"


def _int(row: dict, key: str, default: int = 1) -> int:
    v = (row.get(key) or "").strip()
    return int(float(v)) if v else default


_DB: dict = {}


def database(system: str, backend: str, version: str):
    from aiconfigurator_core.sdk.perf_database import get_database
    key = (system, backend, version)
    if key not in _DB:
        db, used = None, None
        for v in ([version] if version else []) + ["current"]:
            try:
                db = get_database(system, backend, v)
            except Exception:  # noqa: BLE001 - unlisted versions raise; fall back to current
                db = None
            if db is not None:
                used = v
                break
        _DB[key] = (db, used)
    return _DB[key]


def predict(row: dict) -> dict:
    out = {"id": row["id"]}
    if row.get("mode") != "agg":
        return {**out, "reason": "disagg: not attempted"}
    try:
        from aiconfigurator_core.sdk import common, config
        from aiconfigurator_core.sdk.backends.factory import get_backend
        from aiconfigurator_core.sdk.models import get_model

        db, used = database(row["system"], row["backend"], (row.get("backend_version") or "").strip())
        if db is None:
            return {**out, "reason": "no AIC database"}
        b, isl, osl = _int(row, "batch_size", 0), _int(row, "isl", 0), _int(row, "osl", 0)
        if min(b, isl, osl) <= 0:
            return {**out, "reason": "isl/osl/batch missing"}
        gemm = (row.get("gemm_quant_mode") or "").strip()
        moe = (row.get("moe_quant_mode") or "").strip()
        low = (row.get("precision") or "").strip() in ("fp8", "fp4", "int4")
        kwargs = {}
        if _int(row, "moe_tp_size", 0) or _int(row, "moe_ep_size", 0):
            kwargs = {"moe_tp_size": _int(row, "moe_tp_size"), "moe_ep_size": _int(row, "moe_ep_size")}
        ctx = max(isl, 8192)
        if b > 1:
            ctx = min(ctx, isl * (b - 1))
        error = None
        # the row's quant modes first; if AIC has no data for them, its checkpoint defaults
        for label, g, m in (("row", gemm, moe), ("checkpoint default", "", "")):
            try:
                mc = config.ModelConfig(
                    tp_size=_int(row, "tp_size"), pp_size=_int(row, "pp_size"),
                    attention_dp_size=_int(row, "attention_dp_size") or 1,
                    gemm_quant_mode=common.GEMMQuantMode[g] if g else None,
                    moe_quant_mode=common.MoEQuantMode[m] if m else None,
                    kvcache_quant_mode=(common.KVCacheQuantMode.fp8 if low
                                        else common.KVCacheQuantMode.bfloat16),
                    fmha_quant_mode=common.FMHAQuantMode.bfloat16,
                    system=row["system"], **kwargs)
                model = get_model(row["model_path"], mc, row["backend"])
                summary = get_backend(row["backend"]).run_agg(
                    model, db, config.RuntimeConfig(batch_size=b, isl=isl, osl=osl), ctx_tokens=ctx)
            except Exception as exc:  # noqa: BLE001 - try the next quant choice
                error = exc
                continue
            if summary.check_oom():
                return {**out, "reason": "AIC: out of memory", "aic_version": used}
            res = summary.get_result_dict()
            if not res:
                return {**out, "reason": "AIC: no result", "aic_version": used}
            return {**out, "aic_ttft_ms": float(res["ttft"]), "aic_tpot_ms": float(res["tpot"]),
                    "aic_version": res.get("version", used), "aic_quant": label}
        raise error
    except Exception as exc:  # noqa: BLE001 - one reason per row, the run goes on
        msg = re.sub(r"\s+", " ", f"{type(exc).__name__}: {exc}")[:120]
        return {**out, "reason": f"AIC error: {msg}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ids", type=Path, help="only rows whose id is a line of this file")
    args = ap.parse_args(argv)
    with open(args.csv or default_csv(), newline="") as f:
        rows = list(csv.DictReader(f))
    if args.ids:
        keep = set(args.ids.read_text().split())
        rows = [r for r in rows if r["id"] in keep]
    # group rows by (system, backend, version) so each worker loads each database once
    rows.sort(key=lambda r: (r["system"], r["backend"], r.get("backend_version") or "", r["id"]))
    t0 = time.perf_counter()
    results = []
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for i, res in enumerate(pool.map(predict, rows, chunksize=16), 1):
            results.append(res)
            if i % 100 == 0 or i == len(rows):
                print(f"  {i}/{len(rows)}  {time.perf_counter() - t0:6.1f} s", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in sorted(results, key=lambda r: r["id"]):
            w.writerow({k: r.get(k, "") for k in FIELDS})
    print(f"wrote {len(results)} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
