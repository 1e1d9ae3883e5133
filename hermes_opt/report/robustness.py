"""Would the recommendation survive the model's error and the prices? (docs/opt.md "The
decision"). Computed at report time from the stored assessment (``hermes_opt.run.assess``): no
simulation, so a report can be rewritten with other price ranges.

At a fixed demand every candidate that holds the SLOs delivers the same SLO-meeting tokens, so
the best one is the cheapest that holds. Two things can change which that is:

* **The model's error.** Each candidate's measured capacity (a multiple of the demand) is off by
  its engine-efficiency entry's error: a log-normal factor whose 90th percentile of |error| is the
  entry's measured p90 band (``record["error_band"]``; ``DEFAULT_BAND_P90_PCT`` where none was
  measured). Candidates on the same entry share one draw: their errors are the same error. A
  candidate holds when its capacity after the error is at least the study's headroom.
* **The prices.** Each device's price varies by its trust grade (``TRUST_SIGMA``, log-normal,
  one draw per device kind shared by every candidate using it), or uniformly within a range the
  caller gives (``price_ranges``).

``P(best)``: the share of ``SAMPLES`` joint draws (seeded by the study seed) in which the
recommendation is the cheapest candidate that holds. Break-even prices are exact: the price of an
alternative's device below which it would cost less than the recommendation, and the price of
the recommendation's device above which the alternative would.

When an alternative is within the noise of the recommendation (its objective differs by less
than twice the replicates' combined spread, and at least ``NOISE_FLOOR``) and is simpler (fewer
pools, then fewer devices), the simpler one is recommended and the reason stated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SAMPLES = 4000
ROBUST_P_BEST = 0.9  # the verdict "robust" from this probability of staying best
DEFAULT_BAND_P90_PCT = 30.0
Z90 = 1.6449  # the 90th percentile of |N(0, 1)| is its 95th percentile
# one standard deviation of a price's log, by trust grade (docs/CATALOG_SCHEMA.md "trust")
TRUST_SIGMA = {"A": 0.03, "B": 0.08, "C": 0.15, "D": 0.25}
UNGRADED_SIGMA = 0.15
NOISE_FLOOR = 0.01
COST_OBJECTIVES = {("slo_tokens_per_usd", "maximize"), ("goodput_tokens_per_usd", "maximize"),
                   ("output_tokens_per_usd", "maximize"), ("cost_usd_per_hour", "minimize")}


def _sigma_of_band(candidate: dict) -> float:
    band = candidate.get("error_band") or {}
    p90 = band.get("p90_pct") or DEFAULT_BAND_P90_PCT
    return math.log1p(p90 / 100) / Z90


def _cost(candidate: dict, prices: dict[str, float]) -> float:
    usd = candidate.get("other_usd_per_hour", 0.0)
    for pool in candidate["pools"].values():
        base = candidate["prices"][pool["hardware"]]["usd_per_hour"]
        usd += pool["usd_per_hour"] * (prices[pool["hardware"]] / base if base else 1.0)
    return usd


def simulate_choices(candidates: list[dict], headroom: float, seed: int,
                     price_ranges: dict[str, tuple[float, float]] | None = None,
                     samples: int = SAMPLES) -> np.ndarray:
    """The winning candidate's index per joint draw (-1: none holds)."""
    rng = np.random.default_rng(seed)
    entries = sorted({e for c in candidates for e in c["efficiency_entries"]})
    sigma = {e: max(_sigma_of_band(c) for c in candidates if e in c["efficiency_entries"])
             for e in entries}
    error = {e: rng.normal(0.0, sigma[e], samples) for e in entries}
    skus = sorted({k for c in candidates for k in c["prices"]})
    drawn = {}
    for sku in skus:
        facts = next(c["prices"][sku] for c in candidates if sku in c["prices"])
        if price_ranges and sku in price_ranges:
            low, high = price_ranges[sku]
            drawn[sku] = rng.uniform(low, high, samples)
        else:
            s = TRUST_SIGMA.get(str(facts.get("trust", "")).strip().upper()[:1], UNGRADED_SIGMA)
            drawn[sku] = facts["usd_per_hour"] * np.exp(rng.normal(0.0, s, samples))
    costs = np.empty((len(candidates), samples))
    holds = np.empty((len(candidates), samples), dtype=bool)
    for i, c in enumerate(candidates):
        # the worst error among its pools' entries decides (a pipeline is as fast as its slowest)
        factor = np.min([np.exp(-error[e]) for e in c["efficiency_entries"]], axis=0)
        holds[i] = c["capacity_multiple"]["low"] * factor >= headroom
        costs[i] = _cost(c, drawn)
    costs = np.where(holds, costs, np.inf)
    winner = np.argmin(costs, axis=0)  # ties: the first (best-ranked) candidate
    return np.where(np.isfinite(costs.min(axis=0)), winner, -1)


def break_even(rec: dict, alt: dict) -> list[dict[str, Any]]:
    """Prices at which ``alt`` would cost what ``rec`` costs: alt's device cheaper, or rec's
    dearer, the other prices as they are. Only for devices one uses and the other does not."""
    out = []
    rec_cost, alt_cost = rec["usd_per_hour"], alt["usd_per_hour"]
    for who, other_cost, mine, other in (("alternative", rec_cost, alt, rec),
                                         ("recommendation", alt_cost, rec, alt)):
        for sku, facts in mine["prices"].items():
            if sku in other["prices"]:
                continue
            share = sum(p["usd_per_hour"] for p in mine["pools"].values() if p["hardware"] == sku)
            if share <= 0:
                continue
            rest = mine["usd_per_hour"] - share
            price = facts["usd_per_hour"] * (other_cost - rest) / share
            out.append({"device": sku, "side": who, "now_usd_per_hour": facts["usd_per_hour"],
                        "break_even_usd_per_hour": max(price, 0.0),
                        "alternative_trial": alt["trial"]})
    return out


def simpler(a: dict, b: dict) -> bool:
    """Whether deployment ``a`` is simpler than ``b``: fewer pools, then fewer devices."""
    key = lambda c: (len(c["pools"]), sum(p["devices"] for p in c["pools"].values()))  # noqa: E731
    return key(a) < key(b)


def within_noise(rec: dict, alt: dict) -> tuple[bool, float, float]:
    """(within, relative difference, noise) of the objective."""
    value = abs(rec["objective"]) or 1.0
    diff = abs(rec["objective"] - alt["objective"]) / value
    noise = max(NOISE_FLOOR, 2 * math.hypot(rec.get("objective_std") or 0.0,
                                           alt.get("objective_std") or 0.0) / value)
    return diff < noise, diff, noise


def analyse(assessment: dict, objective: tuple[str, str], seed: int,
            price_ranges: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """The report's robustness section (module docstring): ``{"choice", "why", "p_best",
    "verdict", "alternative", "break_even", "competitors"}``, or ``{"skipped": reason}``."""
    if assessment.get("skipped"):
        return {"skipped": assessment["skipped"]}
    if objective not in COST_OBJECTIVES:
        return {"skipped": f"objective {objective[1]} {objective[0]}: the probability of being "
                           f"best is computed for cost objectives at a fixed demand"}
    cands = assessment["candidates"]
    headroom = assessment.get("headroom_required", 1.0)
    rec, why = cands[0], None
    for alt in cands[1:]:
        near, diff, noise = within_noise(cands[0], alt)
        if near and simpler(alt, rec):
            rec = alt
            why = (f"trial {alt['trial']} is within the noise of the best (trial "
                   f"{cands[0]['trial']}: {diff:.1%} apart, noise {noise:.1%}) and simpler "
                   f"({len(alt['pools'])} pool(s), "
                   f"{sum(p['devices'] for p in alt['pools'].values())} devices)")
    order = [rec, *[c for c in cands if c is not rec]]
    winners = simulate_choices(order, headroom, seed, price_ranges)
    p_best = float(np.mean(winners == 0))
    shares = {order[i]["trial"]: float(np.mean(winners == i)) for i in range(len(order))}
    rival = max(order[1:], key=lambda c: (shares[c["trial"]], -c["trial"]), default=None)
    others = [c for c in order[1:] if set(c["kinds"]) != set(rec["kinds"])]
    best_other = others[0] if others else None
    verdict = ("robust" if p_best >= ROBUST_P_BEST or rival is None else
               f"within the noise of trial {rival['trial']} ({rival['layout']})")
    evens = []
    for alt in others:
        evens.extend(break_even(rec, alt))
    return {"choice": rec["trial"], "why": why, "p_best": p_best, "verdict": verdict,
            "rival": rival["trial"] if rival is not None else None,
            "shares": shares, "alternative": best_other["trial"] if best_other else None,
            "break_even": evens, "samples": SAMPLES,
            "none_holds": float(np.mean(winners == -1))}
