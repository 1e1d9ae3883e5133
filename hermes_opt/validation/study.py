"""Run the validation study end to end and write its report directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from hermes_opt.calibration import mlperf_rows
from hermes_opt.calibration import observations as obs_mod
from hermes_opt.compose import aliases, catalog, strict_json
from hermes_opt.compose.calibration_profile import all_profiles
from hermes_opt.validation import coverage, mlperf_validate, report, runner
from sim.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class StudySpec:
    """studies/validation.yaml: data location, report directory, CI subset, targets."""

    name: str
    shared_dir: str
    out: str
    vidur_stride: int
    serving_hardware: tuple[str, ...]
    targets: report.Targets
    mlperf_hardware: tuple[str, ...] = ()  # --fast: MLPerf submissions on these GPUs ...
    mlperf_max_gpus: int = 1               # ... with at most this many GPUs


STUDY_KEYS = ("name", "kind", "description", "shared_dir", "out", "fast", "targets")
FAST_KEYS = ("vidur_stride", "serving_hardware", "mlperf_hardware", "mlperf_max_gpus")
TARGET_KEYS = ("dataset", "metric", "median", "p90")


def _known_keys(path: Path, where: str, node: object, allowed: tuple[str, ...]) -> dict:
    """``node`` as a mapping with only ``allowed`` keys (ConfigError naming the first other key)."""
    if not isinstance(node, dict):
        raise ConfigError(f"{path}: {where}={node!r}: must be a mapping with keys {', '.join(allowed)}")
    for key in node:
        if key not in allowed:
            name = f"{where}.{key}" if where else str(key)
            raise ConfigError(f"{path}: {name}={node[key]!r}: unknown key; allowed: {', '.join(allowed)}")
    return node


def load_spec(name_or_path: str = "validation") -> StudySpec:
    path = Path(name_or_path)
    if not path.suffix:
        path = catalog.STUDIES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"--study={name_or_path!r}: no such study file")
    try:
        node = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:  # YAML syntax or interpolation errors: one line, no traceback
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ConfigError(f"--study={str(path)!r}: not a readable YAML file ({first})") from None
    if not isinstance(node, dict) or node.get("kind") != "validation":
        raise ConfigError(f"--study={str(path)!r}: not a validation study (needs kind: validation)")
    _known_keys(path, "", node, STUDY_KEYS)
    fast = _known_keys(path, "fast", node.get("fast") or {}, FAST_KEYS)
    targets: report.Targets = {}
    raw_targets = node.get("targets") or []
    if not isinstance(raw_targets, list):
        raise ConfigError(f"{path}: targets={raw_targets!r}: must be a list of "
                          "{dataset, metric, median, p90} mappings")
    for i, t in enumerate(raw_targets):
        _known_keys(path, f"targets[{i}]", t, TARGET_KEYS)
        try:
            targets[(str(t["dataset"]), str(t["metric"]))] = (
                float(t["median"]), float(t["p90"]) if t.get("p90") is not None else None)
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{path}: targets[{i}]={t!r}: needs dataset, metric, median "
                              "(and optional p90) numbers") from None
    stride = fast.get("vidur_stride", 9)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ConfigError(f"{path}: fast.vidur_stride={stride!r}: must be an integer >= 1")
    hardware = fast.get("serving_hardware", ["h100_sxm"])
    if not isinstance(hardware, list) or any(h not in catalog.options("hardware") for h in hardware):
        raise ConfigError(f"{path}: fast.serving_hardware={hardware!r}: must be a list of catalog "
                          f"hardware names ({', '.join(catalog.options('hardware'))})")
    mlperf_hw = fast.get("mlperf_hardware", [])
    if not isinstance(mlperf_hw, list) or any(h not in catalog.options("hardware") for h in mlperf_hw):
        raise ConfigError(f"{path}: fast.mlperf_hardware={mlperf_hw!r}: must be a list of catalog "
                          f"hardware names ({', '.join(catalog.options('hardware'))})")
    max_gpus = fast.get("mlperf_max_gpus", 1)
    if isinstance(max_gpus, bool) or not isinstance(max_gpus, int) or max_gpus < 1:
        raise ConfigError(f"{path}: fast.mlperf_max_gpus={max_gpus!r}: must be an integer >= 1")
    return StudySpec(name=str(node.get("name", path.stem)),
                     shared_dir=str(node.get("shared_dir", "../shared")),
                     out=str(node.get("out", "validation_report")),
                     vidur_stride=stride, serving_hardware=tuple(hardware), targets=targets,
                     mlperf_hardware=tuple(mlperf_hw), mlperf_max_gpus=max_gpus)


@dataclass(frozen=True, slots=True)
class StudyResult:
    rows: pd.DataFrame
    errors: pd.DataFrame
    targets: pd.DataFrame
    coverage: pd.DataFrame
    tp_split: pd.DataFrame
    out_dir: Path


def run(*, shared_dir: str | Path | None, out_dir: str | Path | None, fast: bool = False,
        command: str = "hermes-sim validate", spec: StudySpec | None = None,
        measurements: list[str | Path] = (), aliases_files: list[str | Path] = (),
        mlperf_benchmarks: list[str | Path] = ()) -> StudyResult:
    """``measurements``: further tables in the columns of reference/measurements.csv (serving
    rows and MLPerf scenario rows, e.g. another MLPerf round); ``aliases_files`` /
    ``mlperf_benchmarks``: user tables merged over conf/tables/aliases.yaml / mlperf_benchmarks.yaml."""
    spec = spec or load_spec()
    aliases.use_tables([str(p) for p in aliases_files])
    mlperf_rows.use_benchmark_tables([str(p) for p in mlperf_benchmarks])
    extra = [_existing_table(p) for p in measurements]
    for path in extra:  # malformed tables fail before anything is simulated
        mlperf_rows.read_table(path)
    sources = runner.Sources.resolve(shared_dir)
    profiles = all_profiles()
    rows = runner.splitwise_rows(sources.splitwise, profiles)
    rows += runner.vidur_rows(sources.vidur_dir, profiles, stride=spec.vidur_stride if fast else 1)
    keep = (lambda o: o.hardware in spec.serving_hardware) if fast else None
    rows += runner.serving_rows(sources.measurements, profiles, keep=keep)
    rows += runner.itl_fit_rows(sources.measurements)
    mlperf_keep = ((lambda s: s.hardware in spec.mlperf_hardware and s.num_gpus <= spec.mlperf_max_gpus)
                   if fast else None)
    tables = [p for p in sources.mlperf if p.resolve() not in {e.resolve() for e in extra}] + extra
    mlperf_out, mlperf_cov = runner.mlperf_rows(tables, profiles, keep=mlperf_keep)
    rows += mlperf_out
    extra_rows, extra_cov = _extra_serving(extra, profiles, keep)
    rows += extra_rows
    frame = pd.DataFrame.from_records(rows, columns=list(runner.COLUMNS))
    table = report.error_table(frame)
    by_hardware = report.error_table(frame, by=("dataset", "hardware", "metric"))
    by_model = report.error_table(frame, by=("dataset", "model", "metric"))
    targets = report.target_table(table, spec.targets)
    tp_split = pd.DataFrame() if fast else pd.DataFrame.from_records(runner.splitwise_tp_split(sources.splitwise))
    ok = np.isfinite(frame.predicted_roofline.astype(float))  # NaN: its run could not be set up
    ran = {int(k[3:]) for k in frame.key if isinstance(k, str) and k.startswith("row")}
    reproduced_rows = {int(k[3:]) for k in frame[ok].key if isinstance(k, str) and k.startswith("row")}
    expressible = {o.row for o in obs_mod.load_serving(sources.measurements, strict=False)[0]} - ran
    mlperf_frame = pd.DataFrame.from_records(mlperf_cov, columns=["file", "source", "row", "status",
                                                                  "reason"])
    cov_rows = pd.concat([
        coverage.measurements_coverage(sources.measurements, reproduced_rows, expressible),
        coverage.traces_coverage(sources.splitwise, sources.vidur_dir,
                                 set(frame[frame.dataset.str.startswith("splitwise")].key)),
        coverage.merge_table_coverage(mlperf_frame, extra_cov)],
        ignore_index=True)
    cov = coverage.summarize(cov_rows, tables={p.name for p in tables})
    reasons = mlperf_validate.reason_counts(cov_rows[cov_rows.file.isin({p.name for p in tables})])
    out = Path(out_dir) if out_dir else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out / "rows.csv", index=False, float_format="%.6g")
        table.to_csv(out / "errors.csv", index=False, float_format="%.4g")
        by_hardware.to_csv(out / "errors_by_hardware.csv", index=False, float_format="%.4g")
        by_model.to_csv(out / "errors_by_model.csv", index=False, float_format="%.4g")
        targets.to_csv(out / "targets.csv", index=False, float_format="%.4g")
        cov.to_csv(out / "coverage.csv", index=False)
        cov_rows.to_csv(out / "coverage_rows.csv", index=False)
        reasons.to_csv(out / "coverage_reasons.csv", index=False)
        if not tp_split.empty:
            tp_split.to_csv(out / "splitwise_tp_split.csv", index=False, float_format="%.4g")
        written = report.plots(frame, out)
        data = (f"full shared data ({sources.measurements.parent.parent})" if sources.shared else
                "shipped subsets in hermes_opt/data (no ../shared data given or found)")
        (out / "summary.md").write_text(report.markdown(
            table=table, by_hardware=by_hardware, by_model=by_model, targets=targets, coverage=cov,
            tp_split=tp_split, profiles=profiles, reasons=reasons,
            sources=data, command=command, plots_written=written, fast=fast))
        (out / "summary.json").write_text(strict_json.dumps({
            "targets": targets.to_dict(orient="records"), "errors": table.to_dict(orient="records"),
            "coverage": cov.to_dict(orient="records"), "fast": fast, "data": data}, indent=1, default=float))
    return StudyResult(rows=frame, errors=table, targets=targets, coverage=cov, tp_split=tp_split,
                       out_dir=out or Path("."))


def _extra_serving(extra: list[Path], profiles, keep) -> tuple[list[dict], list[pd.DataFrame]]:
    """Serving rows of the extra tables (their MLPerf rows are covered by mlperf_rows) and the
    tables' coverage; a row whose run could not be set up (NaN) is not reproduced."""
    rows, covs = [], []
    for path in extra:
        if all(c in pd.read_csv(path, nrows=0).columns for c in obs_mod.SERVING_COLUMNS):
            got = runner.serving_rows(path, profiles, keep=keep, key_prefix=f"{path.name}:")
            rows += got
            ran = {int(r["key"].rsplit("row", 1)[1]): np.isfinite(float(r["predicted_roofline"]))
                   for r in got}
            skipped = {o.row for o in obs_mod.load_serving(path, strict=False)[0]} - set(ran)
            covs.append(coverage.measurements_coverage(path, {k for k, ok in ran.items() if ok},
                                                       skipped))
    return rows, covs


def _existing_table(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--measurements={path}: no such file")
    return p


def check_shared_dir(text: str) -> str | None:
    """An explicit ``--shared-dir``: the folder holding hw-traces/ and reference/measurements.csv,
    or None for ``none`` (the copies shipped in hermes_opt/data). ConfigError for anything else,
    so a mistyped path never falls back to the shipped data silently."""
    if text.strip().lower() == "none":
        return None
    where = f"--shared-dir={text}"
    root = Path(text)
    if not text.strip():
        raise ConfigError(f"{where}: must name the shared data folder (or none for the shipped data)")
    if not root.exists():
        raise ConfigError(f"{where}: no such directory")
    if not root.is_dir():
        raise ConfigError(f"{where}: not a directory")
    traces, reference = (root / "hw-traces").is_dir(), (root / "reference").is_dir()
    if not traces and not reference:
        raise ConfigError(f"{where}: has neither reference/ nor hw-traces/ (expected the shared data folder)")
    if not traces:
        raise ConfigError(f"{where}: has no hw-traces/ (expected the shared data folder)")
    if not (root / "reference" / "measurements.csv").is_file():
        raise ConfigError(f"{where}: has no reference/measurements.csv (expected the shared data folder)")
    return text
