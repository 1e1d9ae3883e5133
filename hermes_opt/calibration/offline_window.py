"""Offline throughput over the steady middle of a run (LoadGen's Offline, hermes_opt.calibration.mlperf_sim).

All samples of one replica are queued at t = 0. The run has three phases: the **fill** (the first
running batch is prefilled; no decode yet), the **steady** phase (a finished sample's slot is
refilled from the queue at once, so the batch stays full) and the **drain** (the queue is empty;
the batch shrinks as the last, longest samples finish). LoadGen's Offline lasts at least 600 s
with samples repeated as needed, so on a real system of any size the steady phase is nearly the
whole run; a simulation of a few waves of the batch is not, so its rate is measured on the steady
window only:

* window start: the time the first ``running_batch`` samples have their first token (fill done);
* window end: the last admission (the queue is empty from then on: the drain starts);
* output tokens in the window: each sample's tokens spread evenly between its first token and its
  finish (decode emits one token per step), the part inside the window counted.

Samples/s is that token rate over the run's mean output tokens per sample. Counting tokens by
time, not completions in a window, avoids the bias of long-tailed outputs: the samples finishing
early in a run are the short ones. What remains is a small upward bias of a short run: the batch
starts young (short contexts, cheap attention) and takes about one long sample's decode to reach
its steady mix. Per GPU with 5 / 10 / 40 running batches per replica (``python
benchmarks/bench_offline_scaling.py --gpus 8 --waves N --whole-run``): Mixtral-8x7B on H100
(TP1) 9408 / 8965 / 8750 tokens/s (whole run, fill and drain included: 7418 / 8020 / 8487),
llama2-70b on B200 (TP1) 7523 / 7340 / 7202 (6831 / 7006 / 7119), DeepSeek-R1 on B200 (NVFP4,
TP4) 3028 / 2952 / 2910 (2256 / 2540 / 2799): the 10 batches ``mlperf_sim`` runs read 1.4-2.5 %
above 40.
"""

from __future__ import annotations

import numpy as np


class Rows:
    """Per-request figures collected as a simulation runs (``sim.simulate(request_sink=...)``)."""

    def __init__(self) -> None:
        self.first_s: list[float] = []
        self.finish_s: list[float] = []
        self.start_s: list[float] = []
        self.output: list[int] = []

    def __call__(self, row: dict) -> None:
        if row["status"] != "completed":
            return
        self.first_s.append(row["first_token_s"])
        self.finish_s.append(row["finish_s"])
        self.start_s.append(row["gen_start_s"])
        self.output.append(row["output_tokens"])


def steady_rates(rows: Rows, running_batch: int) -> tuple[float, float, float] | None:
    """(output tokens/s, samples/s, window s) over the steady window, or None when the run has
    no steady phase (fewer samples than about two running batches)."""
    n = len(rows.output)
    if n < 2 * max(1, running_batch):
        return None
    first = np.asarray(rows.first_s, dtype=float)
    finish = np.asarray(rows.finish_s, dtype=float)
    output = np.asarray(rows.output, dtype=float)
    lo = float(np.sort(first)[min(running_batch, n) - 1])
    hi = float(np.max(rows.start_s))
    if hi <= lo:
        return None
    # token k (1..out) of a sample at first + (k - 1) / (out - 1) * (finish - first)
    span = np.maximum(finish - first, 0.0)
    a = np.clip((lo - first) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    b = np.clip((hi - first) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    inside = np.where(span > 0, (b - a) * output, ((first >= lo) & (first <= hi)) * output)
    tokens_per_s = float(inside.sum()) / (hi - lo)
    return tokens_per_s, tokens_per_s / float(output.mean()), hi - lo
