"""The benchmark plan of one deployment: the client command that replays the simulated workload
against the deployment's entry point (request rate or concurrency, prompt and output lengths,
shared prefixes where the workload has them, number of prompts) and the table of SLO
percentiles to read from its output next to what the simulation predicted.

vLLM and TensorRT-LLM deployments are measured with ``vllm bench serve`` (an OpenAI-compatible
client; its ``--save-result`` JSON is what ``hermes-sim calibrate --from-benchmark`` reads), SGLang
deployments with ``python3 -m sglang.bench_serving``. Whatever a client cannot replay exactly
(log-normal lengths, Zipf popularity, a trace, think time) is said in the plan, with what is
replayed instead."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from typing import Any

from hermes_opt.report.deploy.flag_table import FLAG

VLLM_BENCH_SOURCE = "https://docs.vllm.ai/en/v0.11.0/cli/bench/serve.html"
SGLANG_BENCH_SOURCE = ("https://github.com/sgl-project/sglang/blob/v0.5.2/python/sglang/"
                       "bench_serving.py")
SGLANG_PERCENTILES = ("mean", "p50", "p99")
SQRT3 = math.sqrt(3.0)  # a uniform distribution's half-width is sqrt(3) x its std
# simulated metric -> (vLLM --save-result key, SGLang bench_serving key); {p}: 50 -> median
METRIC_KEYS = {"ttft_ms": ("{p}_ttft_ms", "{p}_ttft_ms"), "tpot_ms": ("{p}_tpot_ms",
                                                                      "{p}_tpot_ms"),
               "itl_ms": ("{p}_itl_ms", "{p}_itl_ms"),
               "e2e_ms": ("{p}_e2el_ms", "{p}_e2e_latency_ms")}


@dataclass
class Plan:
    client: str  # "vllm" | "sglang"
    commands: list[list[str]] = field(default_factory=list)  # one per request type
    notes: list[str] = field(default_factory=list)
    result_files: list[str] = field(default_factory=list)


def _percentile_name(p: str) -> str:
    return "median" if p in ("p50", "median") else ("mean" if p == "mean" else p)


def result_key(metric: str, client: str) -> str | None:
    """``ttft_ms.p99`` -> ``p99_ttft_ms`` (vLLM) or its SGLang name; None if not a latency, or
    a percentile the client does not report (sglang.bench_serving: mean, median, p99)."""
    name, _, pct = metric.partition(".")
    keys = METRIC_KEYS.get(name)
    if keys is None or not pct or (client == "sglang" and pct not in SGLANG_PERCENTILES):
        return None
    return keys[0 if client == "vllm" else 1].replace("{p}", _percentile_name(pct))


def _uniform(lengths: dict[str, Any]) -> tuple[float, float]:
    """(mean, half-width) of the uniform lengths with the simulated mean and std."""
    mean, std = float(lengths["mean"]), float(lengths.get("std") or 0.0)
    return mean, min(SQRT3 * std, 0.99 * mean)


def _lengths_args(client: str, prompt: dict[str, Any],
                  output: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The random dataset's length flags and the notes on what they approximate."""
    notes = []
    for what, d in (("prompt", prompt), ("output", output)):
        mean, half = _uniform(d)
        if d["kind"] == "trace":
            notes.append(f"{what} lengths come from the workload's trace: not expressible with "
                         f"the random dataset (replay the trace with the client's custom "
                         f"dataset); the plan uses the spec's mean {d['mean']:g}")
        elif d["kind"] not in ("fixed", "uniform") or half < SQRT3 * float(d.get("std") or 0):
            notes.append(f"{what} lengths are {d['kind']} (mean {d['mean']:g}, std "
                         f"{d.get('std') or 0:g}) in the simulation; the client draws them "
                         f"uniform with that mean and std {half / SQRT3:.0f} (the widest "
                         f"uniform range above zero is +-{half:.0f})")
    p_mean, p_half = _uniform(prompt)  # the request's own tokens: the prefix comes on top
    o_mean, o_half = _uniform(output)
    if client == "vllm":  # uniform in [L(1-r), L(1+r)], one r for both
        ratio = max(p_half / p_mean if p_mean else 0.0, o_half / o_mean if o_mean else 0.0)
        ratio = min(round(ratio, 3), 0.99)
        return ["--random-input-len", str(round(p_mean)), "--random-output-len",
                str(round(o_mean)), "--random-range-ratio", f"{ratio:g}"], notes
    # SGLang: uniform in [L r, L]: the top of the range and the ratio giving the same mean
    top_p, top_o = p_mean + p_half, o_mean + o_half
    ratio = min((p_mean - p_half) / top_p, (o_mean - o_half) / top_o)
    return ["--random-input-len", str(round(top_p)), "--random-output-len", str(round(top_o)),
            "--random-range-ratio", f"{round(ratio, 3):g}"], notes


def _arrival_args(client: str, arrival: dict[str, Any], share: float) -> tuple[list[str],
                                                                               list[str]]:
    kind = arrival["kind"]
    if kind == "poisson":
        return ["--request-rate", f"{arrival['rate_per_s'] * share:g}"], []
    if kind == "gamma":
        args = ["--request-rate", f"{arrival['rate_per_s'] * share:g}"]
        if client == "vllm":  # vLLM's burstiness is the gamma shape: cv = 1 / sqrt(shape)
            return args + ["--burstiness", f"{1 / arrival['cv'] ** 2:.4g}"], []
        return args, [f"gamma arrivals (cv {arrival['cv']:g}) are not expressible in "
                      f"sglang.bench_serving: it replays Poisson arrivals at the same rate"]
    if kind == "closed_loop":
        notes = [f"think time {arrival['think_time_s']:g} s between a client's requests is not "
                 f"expressible: the client sends the next request at once"] \
            if arrival.get("think_time_s") else []
        return ["--request-rate", "inf", "--max-concurrency",
                str(max(1, round(arrival["concurrency"] * share)))], notes
    if kind == "max_load":
        return ["--request-rate", "inf"], []
    return ["--request-rate", "inf"], [
        "trace arrivals are not expressible with the random dataset: replay the trace's "
        "timestamps with the client's custom dataset instead (the rate here is unbounded)"]


def _prefix_args(client: str, prefix: dict[str, Any] | None, prompts: int,
                 prompt_mean: float, output_mean: float) -> tuple[list[str], list[str], float]:
    """Dataset flags for shared prefixes, notes, and the mean prefix length."""
    if prefix is None:
        return [], [], 0.0
    length = float(prefix["prefix_tokens"]["mean"])
    if client == "sglang":  # groups of prompts sharing one system prompt
        groups = max(1, min(prefix["num_prefixes"], prompts))
        notes = [f"the simulated prefixes (pattern {prefix['pattern']}, Zipf "
                 f"s={prefix['zipf_s']:g}) are replayed as {groups} equally popular groups"] \
            if prefix["zipf_s"] or prefix["pattern"] != "shared" else []
        return ["--dataset-name", "generated-shared-prefix", "--gsp-num-groups", str(groups),
                "--gsp-prompts-per-group", str(max(1, prompts // groups)),
                "--gsp-system-prompt-len", str(round(length)),
                "--gsp-question-len", str(max(1, round(prompt_mean))),
                "--gsp-output-len", str(round(output_mean))], notes, length
    notes = [f"the simulated prefixes (pattern {prefix['pattern']}, {prefix['num_prefixes']} "
             f"ids, Zipf s={prefix['zipf_s']:g}) are replayed as one prefix of {length:g} tokens "
             f"shared by every prompt (vLLM's random dataset has one)"]
    return ["--random-prefix-len", str(round(length))], notes, length


def plan(engine: str, workload: dict[str, Any], slo: dict[str, Any], model: str,
         url_var: str = "$BASE_URL") -> Plan:
    """One client command per request type (the rate split by weight)."""
    client = "sglang" if engine == "sglang" else "vllm"
    out = Plan(client)
    types = workload["request_types"]
    total = sum(t["weight"] for t in types) or 1.0
    for t in types:
        share = t["weight"] / total
        prompts = max(1, round(workload["num_requests"] * share))
        prefix_args, notes, _ = _prefix_args(
            client, t.get("prefix"), prompts, float(t["prompt_tokens"]["mean"]),
            float(t["output_tokens"]["mean"]))
        lengths, length_notes = _lengths_args(client, t["prompt_tokens"], t["output_tokens"])
        arrival, arrival_notes = _arrival_args(client, workload["arrival"], share)
        result = f"result_{t['name']}.json" + ("l" if client == "sglang" else "")
        if client == "vllm":
            argv = ["vllm", "bench", "serve", "--backend", "openai", "--base-url", url_var,
                    "--endpoint", "/v1/completions", "--model", model, "--dataset-name",
                    "random", *lengths, *prefix_args, *arrival, "--num-prompts", str(prompts),
                    "--seed", "0", "--percentile-metrics", "ttft,tpot,itl,e2el",
                    "--metric-percentiles", "50,90,99", *_goodput(slo), "--save-result",
                    "--result-filename", result]
        else:
            dataset = [] if prefix_args else ["--dataset-name", "random"]
            argv = ["python3", "-m", "sglang.bench_serving", "--backend", "sglang", "--base-url",
                    url_var, "--model", model, *dataset, *(lengths if not prefix_args else []),
                    *prefix_args, *arrival, "--num-prompts", str(prompts), "--seed", "0",
                    "--output-file", result]
        if t.get("reasoning") or len(t.get("stages") or []) > 2:
            notes.append(f"request type {t['name']} runs stages {t['stages']}: the client sends "
                         f"plain completions, so only the LLM part is measured")
        out.commands.append(argv)
        out.result_files.append(result)
        out.notes += notes + length_notes + arrival_notes
    return out


def _goodput(slo: dict[str, Any]) -> list[str]:
    """vLLM's --goodput: the share of requests meeting every simulated SLO target."""
    parts = [f"{name}:{slo[key]:g}" for key, name in (("ttft_ms", "ttft"), ("tpot_ms", "tpot"),
                                                       ("e2e_ms", "e2el")) if slo.get(key)]
    return ["--goodput", *parts] if parts else []


def script(p: Plan, header: list[str], port: int) -> str:
    """bench.sh: the commands, run concurrently when there are several request types."""
    lines = ["#!/usr/bin/env bash", *[f"# {h}" if h else "#" for h in header],
             "set -euo pipefail", f'BASE_URL="${{BASE_URL:-http://localhost:{port}}}"', ""]
    several = len(p.commands) > 1
    for argv in p.commands:
        words = [w if w == "$BASE_URL" else shlex.quote(w) for w in argv]
        words = ['"$BASE_URL"' if w == "$BASE_URL" else w for w in words]
        lines.append(" \\\n  ".join(_wrap(words, 3)) + (" &" if several else ""))
    if several:
        lines.append("wait")
    return "\n".join(lines) + "\n"


def _wrap(words: list[str], head: int = 0) -> list[str]:
    """One line for the command (its first ``head`` words at least) and its positional words,
    then one per flag with its values."""
    out: list[str] = [" ".join(words[:head])] if head else []
    for word in words[head:]:
        if not out or not FLAG.match(word.strip("'\"").split("=", 1)[0]):
            if out:
                out[-1] += f" {word}"
            else:
                out.append(word)
        else:
            out.append(word)
    return out
