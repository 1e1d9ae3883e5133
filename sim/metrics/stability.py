"""Does the deployment keep up with its demand? A fixed-demand run can meet every SLO over a
short burst while its queue grows without bound: the first requests fill empty batch slots, and
the run ends before the backlog reaches the p99. This check looks at the run's flow, not its
latencies.

Backlog B(t) = requests arrived by t - requests that left by t (completed or rejected). A
deployment that keeps up holds B around a level (Little's law: arrival rate x time in system);
one that falls behind serves at its capacity mu < lambda, so B grows by (lambda - mu) per second.
In the second half of the steady window (``sim.metrics.steady``; the first half absorbs the
pipeline filling up), we compare departures with arrivals:

    completion_ratio = departures in (mid, hi] / arrivals in (mid, hi]

* ``keeps_up``: ratio >= 1 - tolerance. The tolerance is ``KEEP_UP_TOLERANCE`` plus three
  standard deviations of a stable backlog's fluctuation (~sqrt(B(mid))) over the arrivals counted,
  so short stable runs are not flagged by chance.
* ``falls_behind``: below that, and either the shortfall is more than filling can explain (a
  deployment that keeps up but holds each request for the fill time F still completes, in a
  half of length H, the requests that arrived up to F before it: ratio >= 1 - F / H), or the
  run is long enough for the fill to be over: the half measured starts at least
  ``FILL_MULTIPLE`` x the fill time after the first arrival. A deployment that is still
  filling its batches completes fewer requests than arrive for about the time a request spends
  in it before queues build: the fill time is the median time in system of the warm-up requests
  (those arriving before the window), capped at ``FIRST_REQUESTS_MULTIPLE`` x that of the very
  first ones (``FIRST_FRACTION`` of the run, at least ``FIRST_MIN``), which found the deployment
  empty. The cap matters when it is grossly overloaded: its warm-up requests already queue, and
  their time in system measures the overload, not the fill.
* ``too_short``: below the ratio, but the run ends before the fill time is over; the requests
  needed to tell are in ``requests_to_tell`` (the caller may extend the run, or must not score it
  as keeping up).
* ``none_completed``: no request completed (all rejected): it does not keep up.
* ``burst``: every request arrived at once (``max_load``): there is no demand rate to keep up
  with, so the check does not apply.
"""

from __future__ import annotations

import math

import numpy as np

KEEP_UP_TOLERANCE = 0.03
FILL_MULTIPLE = 2.0
FIRST_FRACTION = 0.001
FIRST_MIN = 5
# a full batch steps slower than an empty one: the fill takes a few first-request latencies
FIRST_REQUESTS_MULTIPLE = 3.0
# the run is (warm-up 10 % + half the window 40 %) = half the arrival span before the measured
# half; to have it span FILL_MULTIPLE fill times the run needs 2 x FILL_MULTIPLE fill times,
# doubled for margin
_SPANS_TO_TELL = 4 * FILL_MULTIPLE

MAX_REQUESTS_TO_TELL = 10**9
STATUSES = ("keeps_up", "falls_behind", "too_short", "burst", "none_completed")


def verdict(*, first_arrival_s: float, window: tuple[float, float], arrivals_in_half: float,
            departures_in_half: float, backlog_at_mid: float, fill_s: float,
            arrival_rate_per_s: float) -> dict:
    """The stability record from the counts (shared by the exact and the folded summaries)."""
    lo, hi = window
    mid = 0.5 * (lo + hi)
    tolerance = KEEP_UP_TOLERANCE + (3 * math.sqrt(max(backlog_at_mid, 1.0)) / arrivals_in_half
                                     if arrivals_in_half > 0 else 1.0)
    ratio = departures_in_half / arrivals_in_half if arrivals_in_half > 0 else 0.0
    measured_from_s = mid - first_arrival_s
    half_s = hi - mid
    if ratio >= 1 - tolerance:
        status = "keeps_up"
    elif (half_s > 0 and ratio < 1 - tolerance - fill_s / half_s) or (
            measured_from_s >= FILL_MULTIPLE * fill_s):
        status = "falls_behind"
    else:
        status = "too_short"
    return {"status": status, "completion_ratio": ratio, "tolerance": tolerance,
            "fill_s": fill_s, "measured_from_s": measured_from_s,
            "requests_to_tell": _requests(_SPANS_TO_TELL * fill_s * arrival_rate_per_s)}


def _requests(needed: float) -> int:
    # a window of zero width has an unbounded rate: say "more than any run holds"
    return int(math.ceil(needed)) if math.isfinite(needed) and needed < MAX_REQUESTS_TO_TELL \
        else MAX_REQUESTS_TO_TELL


def fill_time_s(arrival: np.ndarray, finish: np.ndarray, window_start_s: float) -> float:
    """The time a request spends in the deployment before queues build (module docstring)."""
    time_in_system = finish - arrival
    warm = arrival < window_start_s
    warm_s = float(np.median(time_in_system[warm] if warm.any() else time_in_system))
    k = min(arrival.size, max(FIRST_MIN, int(arrival.size * FIRST_FRACTION)))
    first = np.argsort(arrival, kind="stable")[:k]
    return min(warm_s, FIRST_REQUESTS_MULTIPLE * float(np.median(time_in_system[first])))


def burst(status: str = "burst") -> dict:
    """The record when the check does not apply (``burst``) or nothing completed."""
    return {"status": status, "completion_ratio": 1.0 if status == "burst" else 0.0,
            "tolerance": 0.0, "fill_s": 0.0, "measured_from_s": 0.0, "requests_to_tell": 0}


def stability(arrival: np.ndarray, finish: np.ndarray, rejected_arrival: np.ndarray,
              window: tuple[float, float], basis: str) -> dict:
    """From every completed request's arrival and finish time and the rejected ones' arrival
    times (they leave when refused); ``window`` and ``basis`` from ``steady.steady_state``."""
    lo, hi = window
    if basis != "arrival" or arrival.size == 0 or hi <= lo:
        return burst()
    every = np.concatenate([arrival, rejected_arrival]) if rejected_arrival.size else arrival
    leave = np.concatenate([finish, rejected_arrival]) if rejected_arrival.size else finish
    mid = 0.5 * (lo + hi)
    first = float(every.min())
    return verdict(first_arrival_s=first, window=(lo, hi),
                   arrivals_in_half=float(((every > mid) & (every <= hi)).sum()),
                   departures_in_half=float(((leave > mid) & (leave <= hi)).sum()),
                   backlog_at_mid=float((every <= mid).sum() - (leave <= mid).sum()),
                   fill_s=fill_time_s(arrival, finish, lo),
                   arrival_rate_per_s=float(((every >= lo) & (every <= hi)).sum()) / (hi - lo))
