"""The one-paragraph recommendation at the top of the report: the deployment to buy in words
(``vendors.layout``), what it costs ($/hour and $ per million output tokens), how far it is from
each SLO bound, its headroom to capacity (or the command that measures it) and how sure we are
(replicate spread, the cost model's validated error band)."""

from __future__ import annotations

import math
import shlex
from typing import Any

import pandas as pd

from hermes_opt.report import traffic, vendors
from hermes_opt.report.labels import fmt, fmt_spread, metric_label, unit
from hermes_opt.report.trials import OVERRIDES, SIMULATED_INFEASIBLE
from hermes_opt.study.definition import StudySpec

# docs/validation.md "Results": median absolute error of the uncalibrated roofline on held-out
# Splitwise Llama2-70B rows (prefill 20.95%, decode step 23.87%, e2e request time 24.85%) and of
# calibrated profiles on rows they were not fitted on (2.2-6.0% medians).
UNCALIBRATED_BAND = ("uncalibrated roofline cost model, validated error about ±24% (median "
                     "absolute error on held-out Splitwise rows: prefill 21%, decode 24%, "
                     "request time 25%; p90 up to 47%; docs/validation.md)")
CALIBRATED_BAND = ("validated held-out error about ±2-6% median (p90 up to 12-27% by figure; "
                   "docs/validation.md)")
TOKENS_PER_S = ("metric:steady_state.goodput_output_tokens_per_s",
                "metric:goodput_output_tokens_per_s", "metric:output_tokens_per_s")


def number(row: pd.Series, column: str) -> float:
    value = row.get(column, math.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def usd_per_million_tokens(row: pd.Series) -> tuple[float, str]:
    """($ per million output tokens, which throughput it used): $/hour / (tokens/hour / 1e6)."""
    cost = number(row, "metric:cost_usd_per_hour")
    for column in TOKENS_PER_S:
        tps = number(row, column)
        if not math.isnan(tps) and tps > 0 and not math.isnan(cost):
            what = ("SLO-meeting output tokens (steady state)" if "steady_state" in column else
                    "SLO-meeting output tokens" if "goodput" in column else "output tokens")
            return cost / (tps * 3600 / 1e6), what
    return math.nan, "output tokens"


def tokens_per_accelerator(row: pd.Series) -> float:
    """Output tokens per second per GPU/accelerator (CPU hosts not counted)."""
    tps, n = number(row, "metric:output_tokens_per_s"), number(row, "metric:num_accelerators")
    return tps / n if not math.isnan(tps) and not math.isnan(n) and n > 0 else math.nan


def slo_margins(spec: StudySpec, row: pd.Series) -> list[str]:
    """"p99 TTFT 139 ms against 1000 ms (86% margin)" per constraint."""
    out = []
    for c in spec.constraints:
        value = number(row, f"metric:{c.metric}")
        if math.isnan(value):
            continue
        u = unit(c.metric)
        margin = ((c.bound - value) if c.op == "<=" else (value - c.bound)) / abs(c.bound or 1)
        label = metric_label(c.metric).replace(" (ms)", "")
        std = fmt_spread(value, number(row, f"std:{c.metric}"), spec.replicates)
        out.append(f"{label} {std}{u} against {fmt(c.bound)}{u} ({margin:.0%} margin)")
    return out


def deployment_overrides(row: pd.Series) -> list[str]:
    """The trial's own overrides as stored (without the study's base and the seed)."""
    stored = row.get(OVERRIDES)
    return [str(o) for o in stored] if isinstance(stored, (list, tuple)) else []


def headroom(spec: StudySpec, row: pd.Series, measured: dict | None = None) -> str:
    """The measured headroom: the assessment's (``measured``: the card's ``headroom`` section),
    a capacity objective's, or the command that measures it."""
    if measured and measured.get("trial") == int(row.trial):
        return (f"Headroom: it sustains {fmt(measured['capacity_rate_per_s'])} requests/s within "
                f"the SLOs, keeping up, against the {fmt(measured['demand_rate_per_s'])} "
                f"requests/s demanded ({measured['ratio']:.2f}x, measured after the study).")
    capacity = number(row, "metric:capacity_rate_per_s")
    offered = vendors.offered_rate(row)
    if not math.isnan(capacity) and offered:
        return (f"Headroom: it sustains {fmt(capacity)} requests/s within the SLOs against "
                f"{traffic.rate_phrase(row)} ({capacity / offered - 1:+.0%}).")
    command = " ".join(["hermes-opt capacity", f"study={spec.name}",
                        *(shlex.quote(o) for o in deployment_overrides(row))])
    phrase = traffic.load_phrase(row)
    load = f" at {phrase}" if phrase else ""
    return (f"Headroom to capacity was not measured (the study simulated it{load} only); "
            f"measure it with `{command}`.")


def cost_model_note(row: pd.Series) -> tuple[str, dict[str, tuple[str, str]]]:
    """(error-band sentence, {pool: (cost model, calibration)}) of the trial's LLM pools."""
    models = vendors.cost_models(row)
    if not models:
        return "cost model not known (the trial has no deployment record)", models
    kinds = {k for k, _ in models.values()}
    engine_note = engine_band_note(vendors.record(row))
    if engine_note:
        return engine_note, models
    profiles = sorted({c for _, c in models.values() if c and c != "none"
                       and not c.startswith("none")})
    if kinds != {"roofline"}:
        return (f"cost model {', '.join(sorted(kinds))}: no validated error band "
                f"(docs/validation.md covers the roofline)", models)
    if not profiles:
        return UNCALIBRATED_BAND, models
    return (f"roofline cost model calibrated with {', '.join(profiles)}, {CALIBRATED_BAND}",
            models)


def engine_band_note(record: dict | None) -> str:
    """The engine model's measured error band of the deployment (its widest pool's), or ''."""
    band = (record or {}).get("error_band")
    if not band:
        return ""
    pool = next((p for p in record.get("pools", []) if p.get("name") == band.get("pool")), {})
    efficiency = pool.get("efficiency") or {}
    entry = efficiency.get("entry") or "no table entry (uncalibrated roofline)"
    return (f"{pool.get('engine') or 'engine'} on {pool.get('hardware', '?')}, efficiency entry "
            f"{entry} ({efficiency.get('match', '?')}); measured error median "
            f"{fmt(band.get('median_pct'))}%, p90 {fmt(band.get('p90_pct'))}% (n={band.get('n')}, "
            f"{band.get('validated_on', '')}; docs/engines.md)")


def recommendation(spec: StudySpec, frame: pd.DataFrame, top: pd.DataFrame,
                   measured_headroom: dict | None = None) -> str:
    """The recommendation in full (below the decision card)."""
    if top.empty:
        simulated = int(frame.outcome.isin(["feasible", *SIMULATED_INFEASIBLE]).sum()) if len(frame) else 0
        return (f"Recommendation: none. No configuration met every SLO within the budget "
                f"({len(frame)} trials, {simulated} simulated): relax the SLOs or the budget, "
                f"widen the search space, or run more trials.")
    best = top.iloc[0]
    lay = vendors.layout(best)
    where = lay.description if lay is not None else ", ".join(
        f"{n}={best.get(f'param:{n}')}" for n in spec.space.names)
    settings = [f"{n}={best.get(f'range:{n}', best.get(f'param:{n}'))}" for n in spec.space.names
                if not is_layout_param(n) and present(best.get(f"param:{n}"))]
    first = spec.objectives[0]
    seeds = len(spec.replicate_seeds)
    objective = fmt_spread(best[f"objective:{first.metric}"],
                           number(best, f"std:{first.metric}"), spec.replicates)
    spread = (f"mean ± std over {seeds} workload seeds" if seeds > 1 else
              "one workload seed, so no replicate spread was measured")
    usd_m, tokens = usd_per_million_tokens(best)
    parts = [f"Recommendation: deploy {where} (trial {int(best.trial)}"
             + (f"; {', '.join(settings)}" if settings else "") + ")."]
    per_gpu = tokens_per_accelerator(best)
    parts.append(f"It costs ${fmt(number(best, 'metric:cost_usd_per_hour'))}/hour"
                 + (f", ${usd_m:.3g} per million {tokens}" if not math.isnan(usd_m) else "")
                 + (f", {per_gpu:,.0f} output tokens/s per accelerator" if not math.isnan(per_gpu)
                    else "")
                 + f"; {metric_label(first.metric)}: {objective} ({spread}).")
    margins = slo_margins(spec, best)
    parts.append("SLO margins: " + "; ".join(margins) + "." if margins else
                 "The study sets no SLO constraints.")
    parts.append(headroom(spec, best, measured_headroom))
    note, _ = cost_model_note(best)
    parts.append(f"Confidence: {note}.")
    if len(top) > 1:
        runner_up = top.iloc[1]
        gap = number(runner_up, f"objective:{first.metric}") / number(best, f"objective:{first.metric}") - 1
        lay2 = vendors.layout(runner_up)
        # the same layout is a distinct alternative through its settings and latencies: say so
        differs = [f"{n}={plain_value(runner_up.get(f'param:{n}'))}" for n in spec.space.names
                   if not is_layout_param(n) and present(runner_up.get(f"param:{n}"))
                   and str(runner_up.get(f"param:{n}")) != str(best.get(f"param:{n}"))]
        same = lay2 is not None and lay is not None and lay2.description == lay.description
        ttft = number(runner_up, "metric:ttft_ms.p99")
        parts.append(f"Next distinct alternative: {lay2.description if lay2 else 'trial'}"
                     + (f" with {', '.join(differs)}" if same and differs else "")
                     + f" (trial {int(runner_up.trial)}, {gap:+.1%} {metric_label(first.metric)}, "
                     f"${fmt(number(runner_up, 'metric:cost_usd_per_hour'))}/hour"
                     + (f", p99 TTFT {fmt(ttft)} ms" if not math.isnan(ttft) else "") + ").")
    return " ".join(parts)


def plain_value(value: Any) -> Any:
    """A parameter value as the user wrote it (a pandas column turns 4096 into 4096.0)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def is_layout_param(name: str) -> bool:
    """Parameters the layout sentence already states (hardware, TP, replicas, pool sizes)."""
    return (name in ("hardware", "cluster.tp", "cluster.num_replicas", "deployment.architecture",
                     "deployment.total_devices")
            or (name.startswith("deployment.") and name.rsplit(".", 1)[1] in
                ("hardware", "tp", "devices", "num_replicas")))
