"""Steady-state goodput: the rate at which SLO-meeting tokens are served once warm-up is over and
before the drain, so a burst's tail cannot decide the score.

Fixed demand: requests arrive at the workload's rate. The window is the middle of the *arrivals*,
from the ``WARMUP_FRACTION`` quantile to the ``1 - DRAIN_FRACTION`` quantile of arrival times.
Every request that arrived in it counts, whenever it finished; rejected ones count as missing
their SLO. So

    steady goodput tokens/s = sum(output tokens of window requests meeting every SLO) / window_s

which equals arrival rate x mean output tokens x SLO attainment when the deployment keeps up.
Two deployments that both meet the SLOs at the demand then score the same tokens/s and the cheaper
one wins on tokens per dollar; a deployment that falls behind loses the requests whose TTFT or
TPOT it breaks. "First arrival to last completion" instead divides by a span that a fast decode
tail shortens and a slow one stretches, which is what made different P:D splits look flat.

When every request arrives at once (``max_load``, a burst) there is no arrival rate to measure;
the window is then the middle of the *completions* (the same quantiles of finish times) and the
rate is the SLO-meeting tokens finishing in it, i.e. the sustained service rate once the pipeline
is full and before the last requests drain (``basis: completion``).
"""

from __future__ import annotations

import numpy as np

from sim.metrics.stability import burst, stability

WARMUP_FRACTION = 0.1
DRAIN_FRACTION = 0.1
MIN_WINDOW_REQUESTS = 20  # fewer requests than this: the window is the whole run


def steady_state(arrival: np.ndarray, finish: np.ndarray, output: np.ndarray, ok: np.ndarray,
                 rejected_arrival: np.ndarray) -> dict:
    """``{basis, window_start_s, window_end_s, window_s, requests, slo_attainment,
    output_tokens_per_s, goodput_output_tokens_per_s}`` of the steady window."""
    n = arrival.size
    empty = {"basis": "arrival", "window_start_s": 0.0, "window_end_s": 0.0, "window_s": 0.0,
             "requests": 0, "slo_attainment": 0.0, "output_tokens_per_s": 0.0,
             "goodput_output_tokens_per_s": 0.0, "stability": burst("none_completed")}
    if n == 0:
        return empty
    every = np.concatenate([arrival, rejected_arrival]) if rejected_arrival.size else arrival
    basis, times = "arrival", arrival
    lo_q, hi_q = ((WARMUP_FRACTION, 1 - DRAIN_FRACTION) if every.size >= MIN_WINDOW_REQUESTS
                  else (0.0, 1.0))
    lo, hi = np.quantile(every, [lo_q, hi_q])
    if hi - lo <= 0:  # everything arrived together: measure the completions instead
        basis, times = "completion", finish
        lo, hi = np.quantile(finish, [lo_q, hi_q]) if n >= MIN_WINDOW_REQUESTS else (
            float(arrival.min()), float(finish.max()))
        if hi - lo <= 0:
            return dict(empty, basis=basis, stability=burst())
    inside = (times >= lo) & (times <= hi)
    window_s = float(hi - lo)
    counted = int(inside.sum())
    if basis == "arrival" and rejected_arrival.size:
        counted += int(((rejected_arrival >= lo) & (rejected_arrival <= hi)).sum())
    return {
        "basis": basis, "window_start_s": float(lo), "window_end_s": float(hi),
        "window_s": window_s, "requests": counted,
        "slo_attainment": float(ok[inside].sum() / counted) if counted else 0.0,
        "output_tokens_per_s": float(output[inside].sum()) / window_s,
        "goodput_output_tokens_per_s": float(output[inside & ok].sum()) / window_s,
        "stability": stability(arrival, finish, rejected_arrival, (float(lo), float(hi)), basis),
    }
