"""The decision card: the report's first screen, in a buyer's words. One headline sentence
(the products and servers to buy, the engine, the cost per month at the demand) and a short
key/value table: hardware and servers, engine flags, cost per month ($/hour x 730), $ per
million SLO-meeting output tokens, SLO margins, measured headroom, the price's provider, date,
kind and trust, the confidence verdict, the best alternative on other hardware, and the cost at
other loads.

Headroom, the confidence verdict and the cost at other loads come from the post-study
assessment (``card_inputs``: the study's user attribute ``assessment``). Without it those rows
say what was not measured and, where a command measures it, which; never a placeholder number.
The detailed paragraph (``recommend.recommendation``) stays in the report below the charts."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

import pandas as pd

from hermes_opt.report import card_inputs, engine_flags, products, recommend, traffic, vendors
from hermes_opt.report.accounting import best_per, hardware_label
from hermes_opt.report.labels import fmt, metric_label, param_label
from hermes_opt.study.definition import StudySpec

HOURS_PER_MONTH = 730  # 8,760 hours a year / 12: the monthly figure a cloud bill uses
UNITS = {"device": "-hour", "instance": " instance-hour"}


@dataclass(frozen=True, slots=True)
class Card:
    headline: str  # "Recommendation: 2 x NVIDIA B200 in one HGX B200 8-GPU server ..."
    rows: list[tuple[str, str]]  # (what, value), in reading order
    load_table: list[dict] | None = None  # the assessment's cost at other loads (for its chart)


def monthly(usd_per_hour: float) -> float:
    return usd_per_hour * HOURS_PER_MONTH


def _usd(value: float, digits: int = 0) -> str:
    return f"${value:,.{digits}f}"


def _demand(best: pd.Series) -> str:
    trace = traffic.of(best)
    if trace and trace.get("rate_per_s"):
        return f"at the trace's {fmt(trace['rate_per_s'])} requests/s"
    rate = vendors.offered_rate(best)
    return f"at the demand of {fmt(rate)} requests/s" if rate else "at the simulated load"


def _engines(record: dict | None) -> str | None:
    pools = [p for p in (record or {}).get("pools", []) if p.get("engine")]
    names = list(dict.fromkeys(engine_flags.engine_name(p) for p in pools))
    return " + ".join(n for n in names if n) or None


def _without_record(spec: StudySpec, best: pd.Series) -> str:
    """A trial without a deployment record (a custom evaluator's): its layout line, else its
    parameters."""
    lay = vendors.layout(best)
    if lay is not None:
        return lay.description
    params = [f"{n}={recommend.plain_value(best.get(f'param:{n}'))}" for n in spec.space.names
              if recommend.present(best.get(f"param:{n}"))]
    return f"trial {int(best.trial)}" + (f" ({', '.join(params)})" if params else "")


def _headline(spec: StudySpec, best: pd.Series, record: dict | None) -> str:
    what = products.headline_hardware(record) or _without_record(spec, best)
    engine = _engines(record)
    cost = recommend.number(best, "metric:cost_usd_per_hour")
    usd_m, tokens = recommend.usd_per_million_tokens(best)
    text = f"Recommendation: {what}" + (f" on {engine}" if engine else "")
    if not math.isnan(cost):
        text += f": {_usd(monthly(cost))} per month {_demand(best)}"
    if not math.isnan(usd_m):
        text += f", ${usd_m:.3g} per million {tokens.replace(' (steady state)', '')}"
    return text + "."


def _hardware_row(spec: StudySpec, best: pd.Series, record: dict | None) -> str:
    pools = products.deployment_hardware(record)
    if not pools:
        return _without_record(spec, best) + ": the trial has no deployment record"
    models = [p for p in pools if p.accelerated]
    parts = []
    for p in models:
        where = p.server_phrase()
        text = (f"{p.count} in {where}" if where else p.count)
        text += f", {p.replicas} replica{'s' if p.replicas != 1 else ''} of TP {p.tp}"
        parts.append(f"{p.pool}: {text}" if len(models) > 1 else text)
    # stages placed on an LLM pool's GPUs (docs/pipelines.md "Stage placement"): no devices
    guests: dict[str, list[str]] = {}
    for p in (record or {}).get("pools", []):
        if p.get("colocated_on"):
            guests.setdefault(p["colocated_on"], []).append(p["name"])
    for host, names in guests.items():
        listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
        parts.append(f"the {listed} stage{'s' if len(names) > 1 else ''} on the {host} pool's GPUs")
    # the other pools (CPU stages, retrieval): what they run on, in one phrase per product
    others: dict[str, list] = {}
    for p in pools:
        if not p.accelerated and not any(p.pool in names for names in guests.values()):
            others.setdefault(p.product, []).append(p)
    for product, group in others.items():
        names = [p.pool for p in group]
        listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
        parts.append(f"plus {sum(p.devices for p in group)} x {product} for the {listed} "
                     f"pool{'s' if len(names) > 1 else ''}")
    return "; ".join(parts)


def _pools_in_order(record: dict | None) -> list[dict]:
    pools = (record or {}).get("pools", [])
    return ([p for p in pools if p.get("accelerated_model")]
            + [p for p in pools if not p.get("accelerated_model")])


def _engine_row(record: dict | None) -> str | None:
    pools = [p for p in (record or {}).get("pools", []) if p.get("engine")]
    texts = [(p["name"], engine_flags.describe(p)) for p in pools]
    if not texts:
        return None
    if len({t for _, t in texts}) == 1:
        return texts[0][1]
    return "; ".join(f"{name}: {text}" for name, text in texts)


def _cost_row(best: pd.Series) -> str:
    cost = recommend.number(best, "metric:cost_usd_per_hour")
    if math.isnan(cost):
        return "not recorded with this trial"
    return (f"{_usd(monthly(cost))} per month ({_usd(cost, 2)} per hour x {HOURS_PER_MONTH} "
            f"hours) {_demand(best)}")


def _price_row(record: dict | None) -> str:
    seen: dict[str, str] = {}
    for pool in _pools_in_order(record):
        price, hw = pool.get("price"), products.pool_hardware(pool)
        if pool.get("hardware") in seen or not price:
            continue
        unit = UNITS.get(price.get("unit"), "-hour")
        per = f"{hw.noun}{unit}" if price.get("unit") != "instance" else unit.strip()
        kind = str(price.get("kind") or "kind not stated").replace("_", "-")
        seen[pool["hardware"]] = (
            f"{hw.product}: {_usd(price['usd_per_hour'], 2)} per {per}, "
            f"{price.get('provider') or 'provider not stated'}: {price.get('product') or '?'}; "
            f"observed {price.get('date_observed') or '?'}; {kind}; trust "
            f"{price.get('trust') or '?'}")
    if not seen:
        why = ("the trial has no deployment record" if record is None else
               "studies run before the deployment record carried prices")
        return f"provenance not stored with this trial ({why}); the price set is under Provenance"
    sets = {(p["price"]["set"], p["price"].get("set_date")) for p in _pools_in_order(record)
            if p.get("price")}
    return ("; ".join(seen.values()) + ". Price set "
            + ", ".join(f"{s} ({d})" for s, d in sorted(sets))
            + "; trust A-D as in the catalog, D = an estimate")


def _headroom_row(spec: StudySpec, best: pd.Series, assessed: dict) -> str:
    found = assessed.get("headroom")
    if found:
        trial = found.get("trial")
        where = ("" if trial is None or trial == int(best.trial)
                 else f"; measured on trial {trial}")
        return (f"sustains {fmt(found['capacity_rate_per_s'])} requests/s within every SLO "
                f"against the demand of {fmt(found['demand_rate_per_s'])} requests/s "
                f"({found['ratio']:.2f}x{where})")
    capacity, offered = (recommend.number(best, "metric:capacity_rate_per_s"),
                         vendors.offered_rate(best))
    if not math.isnan(capacity) and offered:
        return (f"sustains {fmt(capacity)} requests/s within every SLO against "
                f"{traffic.rate_phrase(best)} ({capacity / offered:.2f}x)")
    command = " ".join(["hermes-opt capacity", f"study={spec.name}",
                        *(shlex.quote(o) for o in recommend.deployment_overrides(best))])
    load = traffic.load_phrase(best) or "one load"
    return f"not measured (the study simulated {load} only); measure it with `{command}`"


def _confidence_row(spec: StudySpec, top: pd.DataFrame, assessed: dict) -> str:
    best = top.iloc[0]
    found = assessed.get("robustness")
    band = (vendors.record(best) or {}).get("error_band")
    model = (f"the simulator's measured error for this engine and hardware: median "
             f"{fmt(band.get('median_pct'))}%, p90 {fmt(band.get('p90_pct'))}% (docs/engines.md)"
             if band else recommend.cost_model_note(best)[0])
    if found:
        text = f"{found['verdict']}, best in {found['p_best']:.0%} of resamples"
        if found["alternative"]:
            text += f"; cannot be told apart from {found['alternative']}"
        if found["break_even"]:
            text += "; another choice wins if " + "; ".join(found["break_even"])
        return f"{text}. {model[0].upper()}{model[1:]}"
    return f"not assessed (the study stores no robustness assessment); {_spread(spec, top)}; {model}"


def _spread(spec: StudySpec, top: pd.DataFrame) -> str:
    """The replicate spread of the objective, and whether the runner-up lies within it."""
    first = spec.objectives[0].metric
    best = top.iloc[0]
    value, std = (recommend.number(best, f"objective:{first}"),
                  recommend.number(best, f"std:{first}"))
    if spec.replicates <= 1 or math.isnan(std) or not value:
        return "one workload seed, so no replicate spread was measured"
    rel = abs(std / value)
    text = f"replicate spread ±{rel:.1%} over {spec.replicates} workload seeds"
    if len(top) > 1:
        runner_up = top.iloc[1]
        gap = recommend.number(runner_up, f"objective:{first}") / value - 1
        within = "within" if abs(gap) <= rel else "outside"
        what = products.short_layout(vendors.record(runner_up))
        ttft = recommend.number(runner_up, "metric:ttft_ms.p99")
        detail = "".join([f": {what}" if what else "",
                          f", p99 TTFT {fmt(ttft)} ms" if not math.isnan(ttft) else ""])
        text += (f"; the next alternative (trial {int(runner_up.trial)}{detail}) is {gap:+.1%}, "
                 f"{within} it")
    return text


def _alternative_row(spec: StudySpec, frame: pd.DataFrame, best: pd.Series) -> str | None:
    table = best_per(frame, spec, "hardware", hardware_label)
    table = table[table.trial.notna()].rename(columns={"label": "hardware"})  # feasible kinds
    if table.empty:
        return None
    kind = hardware_label(best, spec)
    others = table[table.hardware != kind]
    if others.empty:
        return "none: every feasible deployment uses the same hardware"
    alt = frame[frame.trial == int(others.iloc[0].trial)].iloc[0]
    record = vendors.record(alt)
    what = products.headline_hardware(record) or str(others.iloc[0].deployment)
    engine = _engines(record)
    cost = recommend.number(alt, "metric:cost_usd_per_hour")
    usd_m, _ = recommend.usd_per_million_tokens(alt)
    first = spec.objectives[0].metric
    gap = recommend.number(alt, f"objective:{first}") / recommend.number(best, f"objective:{first}") - 1
    return (f"{what}" + (f" on {engine}" if engine else "") + f" (trial {int(alt.trial)}): "
            f"{_usd(monthly(cost))} per month"
            + (f", ${usd_m:.3g} per million tokens" if not math.isnan(usd_m) else "")
            + f"; {gap:+.1%} {metric_label(first)}")


def _load_row(assessed: dict) -> str:
    table = assessed.get("load_table")
    if not table:
        return ("not assessed (the study stores no cost-against-load table): the search ran "
                "at one demand")
    parts = []
    for row in table:
        what = (f"{_usd(monthly(row['usd_per_hour']))}/month, {row['deployment']}"
                if row["usd_per_hour"] is not None else "no deployment meets the SLOs")
        parts.append(f"{fmt(row['multiple'])}x demand: {what}")
    return "; ".join(parts)


def _evidence_row(spec: StudySpec, best: pd.Series) -> str:
    alike = best.get("alike")
    more = len(str(alike).split(",")) if isinstance(alike, str) and alike else 0
    # settings the alike trials vary without changing the result: the buyer may pick any
    ranges = {n: str(best.get(f"range:{n}") or "") for n in spec.space.names
              if not recommend.is_layout_param(n)}
    spans = [f"{param_label(n).lower()} {r}" for n, r in ranges.items()
             if r not in ("", "–") and r != str(recommend.plain_value(best.get(f"param:{n}")))]
    same = f"; {', '.join(spans)} give the same result" if more and spans else ""
    seeds = ", ".join(map(str, spec.replicate_seeds))
    return (f"trial {int(best.trial)}" + (f" (+{more} alike{same})" if more else "")
            + f"; figures are means over workload seed{'s' if len(spec.replicate_seeds) > 1 else ''}"
            f" {seeds}; replay command and breakdowns under Details, #1")


def decision_card(spec: StudySpec, frame: pd.DataFrame, top: pd.DataFrame,
                  assessment: dict | None = None) -> Card | None:
    """The card of the best feasible configuration (None: nothing feasible to recommend).
    ``assessment``: the post-study assessment (keys in ``card_inputs``); a malformed one is
    a ConfigError."""
    assessed = card_inputs.checked(assessment)
    if top.empty:
        return None
    best = top.iloc[0]
    record = vendors.record(best)
    usd_m, tokens = recommend.usd_per_million_tokens(best)
    margins = recommend.slo_margins(spec, best)
    rows = [("Hardware", _hardware_row(spec, best, record)), ("Engine", _engine_row(record)),
            ("Cost", _cost_row(best)),
            ("Per million tokens", f"${usd_m:.3g} per million {tokens}" if not math.isnan(usd_m)
             else "not computed (no throughput recorded)"),
            ("SLO margins", "; ".join(margins) if margins else "the study sets no SLO"),
            ("Headroom", _headroom_row(spec, best, assessed)),
            ("Price", _price_row(record)),
            ("Confidence", _confidence_row(spec, top, assessed)),
            ("Best on other hardware", _alternative_row(spec, frame, best)),
            ("Cost at other loads", _load_row(assessed)),
            ("Evidence", _evidence_row(spec, best))]
    return Card(headline=_headline(spec, best, record), rows=[(k, v) for k, v in rows if v],
                load_table=assessed.get("load_table"))
