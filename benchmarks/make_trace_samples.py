"""Write the synthetic BurstGPT- and JSONL-format sample traces shipped in hermes_opt/data/traces.

    python benchmarks/make_trace_samples.py

Synthetic (numpy, seed 2024), in the real files' column formats: 400 requests each, gamma
arrivals (cv 2, 2 requests/s: bursty, as BurstGPT's name says), log-normal lengths. The BurstGPT
sample has the real header (``Timestamp,Model,Request tokens,Response tokens,Total tokens,Log
Type``, timestamps in seconds) and, like the real log, a few failed calls with 0 response tokens
(2%), which the reader skips. The Mooncake sample is not generated: it is the first 400 lines of
kvcache-ai/Mooncake ``FAST25-release/traces/conversation_trace.jsonl`` (hermes_opt/data/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "hermes_opt" / "data" / "traces"
N = 400


def _draws(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = 1 / 2.0 ** 2  # cv 2
    times = np.cumsum(rng.gamma(shape, 1 / (shape * 2.0), N))
    prompt = np.clip(np.rint(rng.lognormal(np.log(600), 0.9, N)), 1, 16_000).astype(int)
    output = np.clip(np.rint(rng.lognormal(np.log(180), 0.8, N)), 1, 4_000).astype(int)
    return times, prompt, output


def main() -> None:
    rng = np.random.default_rng(2024)
    times, prompt, output = _draws(rng)
    failed = rng.random(N) < 0.02
    models = np.where(rng.random(N) < 0.8, "ChatGPT", "GPT-4")
    logs = np.where(rng.random(N) < 0.7, "Conversation log", "API log")
    lines = ["Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"]
    for t, m, p, o, f, kind in zip(times, models, prompt, output, failed, logs, strict=True):
        o = 0 if f else int(o)
        lines.append(f"{t:.0f},{m},{p},{o},{p + o},{kind}")
    (OUT / "burstgpt_format_sample.csv").write_text("\n".join(lines) + "\n")
    times, prompt, output = _draws(rng)
    with (OUT / "jsonl_format_sample.jsonl").open("w") as handle:
        for t, p, o in zip(times, prompt, output, strict=True):
            handle.write(json.dumps({"timestamp": round(float(t), 3), "input_tokens": int(p),
                                     "output_tokens": int(o)}) + "\n")


if __name__ == "__main__":
    main()
