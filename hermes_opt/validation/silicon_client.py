"""The benchmark clients that measured ``silicon_sample.csv`` rows, as a hermes-sim closed-loop
workload: how many clients, how lengths are drawn, how many requests one run sends.

* SemiAnalysis InferenceX exports (``db-dump/...``, ``source_file=<date>.csv``) ran vLLM's
  ``benchmark_serving.py``: lengths uniform in ``[0.8 L, L]`` (``RANDOM_RANGE_RATIO``), 10 prompts
  per client, all queued at once after unmeasured warm-ups.
* AIConfigurator's own gap-analysis collections state no client; a fixed-length closed loop is
  assumed (aiperf / genai-perf with stddev 0).
"""

from __future__ import annotations

import re

MIN_REQUESTS = 64
MAX_REQUESTS = 4096  # bounds a run's cost; InferenceX's 10 x conc exceeds it only above 409 clients

# benchmark clients (module docstring): how lengths are drawn and how many requests one run sends
CLIENT_BENCHMARK_SERVING = "benchmark_serving"  # InferenceX: uniform [0.8 L, L], 10 x conc
CLIENT_FIXED = "fixed"  # fixed ISL/OSL closed loop (aiperf / genai-perf, stddev 0)
RANGE_RATIO = 0.8  # InferenceX RANDOM_RANGE_RATIO (.github/workflows/benchmark-tmpl.yml)
PROMPTS_PER_CLIENT = 10  # InferenceX --num-prompts "$((CONC * 10))"


def client_of(row: dict[str, str]) -> str:
    """Which benchmark client measured the row (module docstring): AIConfigurator's own
    gap-analysis collections are fixed-length; the InferenceX exports ran benchmark_serving."""
    source = row.get("silicon_data_source") or ""
    if "gap-analysis" in source or not source.strip():
        return CLIENT_FIXED
    if source.startswith("db-dump/") or re.match(r"source_file=\d{4}-\d{2}-\d{2}\.csv", source):
        return CLIENT_BENCHMARK_SERVING
    return CLIENT_FIXED


def num_requests(concurrency: int, client: str = CLIENT_FIXED) -> int:
    """benchmark_serving sends 10 prompts per client; a fixed-length client states no count, so
    four waves of the closed loop (a steady state); both bounded for speed."""
    if client == CLIENT_BENCHMARK_SERVING:
        return max(MIN_REQUESTS, min(PROMPTS_PER_CLIENT * concurrency, MAX_REQUESTS))
    return max(MIN_REQUESTS, min(4 * concurrency, MAX_REQUESTS), concurrency * 2)


def length_spec(tokens: int, client: str) -> str:
    """One length distribution of the client: fixed, or benchmark_serving's uniform integers
    in ``[int(RANGE_RATIO * tokens), tokens]`` (a continuous uniform of that mean and range,
    rounded and clipped to it)."""
    low = int(RANGE_RATIO * tokens)
    if client != CLIENT_BENCHMARK_SERVING or low >= tokens:
        return f"{{kind: fixed, mean: {tokens}, std: 0, min_tokens: 1, max_tokens: 1000000}}"
    mean = (low + tokens) / 2
    std = (tokens - low) / 12 ** 0.5  # a uniform over [low, tokens]
    return (f"{{kind: uniform, mean: {mean!r}, std: {std!r}, min_tokens: {max(low, 1)}, "
            f"max_tokens: {tokens}}}")


def workload_overrides(isl: int, osl: int, concurrency: int,
                       client: str = CLIENT_FIXED) -> list[str]:
    return ["workload=closed_loop", f"workload.arrival.concurrency={concurrency}",
            f"workload.num_requests={num_requests(concurrency, client)}",
            "~workload.request_types.chat",
            f"+workload.request_types.fixed={{weight: 1.0, plan: [generate], "
            f"prompt_tokens: {length_spec(isl, client)}, "
            f"output_tokens: {length_spec(osl, client)}}}"]
