"""Benchmark-client outputs synthesized from a simulator summary, in each client's own format
(field names as the clients write them; see hermes_opt/calibration/bench_formats.py), for the
round-trip and parser tests."""

from __future__ import annotations

import json
from pathlib import Path

HF_ID = "meta-llama/Llama-3.1-8B-Instruct"


def _dist(summary: dict, key: str) -> dict:
    d = summary[key]
    return {"mean": d["mean"], "median": d["p50"], "p99": d["p99"]}


def vllm(summary: dict, *, rate: float | None, concurrency: int | None, isl: int, osl: int,
         n: int) -> dict:
    out = {"date": "20261207-120000", "endpoint_type": "openai", "backend": "vllm",
           "label": None, "model_id": HF_ID, "tokenizer_id": HF_ID, "num_prompts": n,
           "request_rate": rate if rate is not None else "inf", "burstiness": 1.0,
           "max_concurrency": concurrency, "duration": summary["duration_s"],
           "completed": summary["requests_completed"], "total_input_tokens": n * isl,
           "total_output_tokens": n * osl, "request_throughput": summary["requests_per_s"],
           "request_goodput": None, "output_throughput": summary["output_tokens_per_s"],
           "total_token_throughput": summary["total_tokens_per_s"]}
    for name, key in (("ttft", "ttft_ms"), ("tpot", "tpot_ms"), ("itl", "itl_ms"),
                      ("e2el", "e2e_ms")):
        d = _dist(summary, key)
        out.update({f"mean_{name}_ms": d["mean"], f"median_{name}_ms": d["median"],
                    f"std_{name}_ms": 0.0, f"p99_{name}_ms": d["p99"]})
    return out


def sglang(summary: dict, *, rate: float | None, concurrency: int | None, isl: int, osl: int,
           n: int) -> dict:
    # SGLang's client against a vLLM server (--backend vllm), as the round trip's deployment is
    out = {"backend": "vllm", "dataset_name": "random",
           "request_rate": rate if rate is not None else float("inf"),
           "max_concurrency": concurrency, "sharegpt_output_len": None,
           "random_input_len": isl, "random_output_len": osl, "random_range_ratio": 1.0,
           # newer SGLang records the server's arguments (GET /get_server_info)
           "server_info": {"model_path": HF_ID, "tp_size": 1, "mem_fraction_static": 0.88},
           "duration": summary["duration_s"], "completed": summary["requests_completed"],
           "total_input_tokens": n * isl, "total_output_tokens": n * osl,
           "total_output_tokens_retokenized": n * osl,
           "request_throughput": summary["requests_per_s"],
           "input_throughput": summary["input_tokens_per_s"],
           "output_throughput": summary["output_tokens_per_s"]}
    for name, key in (("e2e_latency", "e2e_ms"), ("ttft", "ttft_ms"), ("tpot", "tpot_ms"),
                      ("itl", "itl_ms")):
        d = _dist(summary, key)
        out.update({f"mean_{name}_ms": d["mean"], f"median_{name}_ms": d["median"],
                    f"std_{name}_ms": 0.0, f"p99_{name}_ms": d["p99"]})
    return out


def _record(summary: dict, key: str) -> dict:
    d = summary[key]
    return {"unit": "ms", "avg": d["mean"], "p50": d["p50"], "p90": d["p90"], "p99": d["p99"],
            "min": d["p50"] * 0.5, "max": d["p99"] * 1.1, "std": 0.0}


def _export(summary: dict, isl: int, osl: int) -> dict:
    return {
        "request_throughput": {"unit": "requests/sec", "avg": summary["requests_per_s"]},
        "request_latency": _record(summary, "e2e_ms"),
        "time_to_first_token": _record(summary, "ttft_ms"),
        "inter_token_latency": _record(summary, "tpot_ms"),
        "output_token_throughput": {"unit": "tokens/sec", "avg": summary["output_tokens_per_s"]},
        "output_sequence_length": {"unit": "tokens", "avg": osl, "p50": osl, "min": osl, "max": osl},
        "input_sequence_length": {"unit": "tokens", "avg": isl, "p50": isl, "min": isl, "max": isl},
    }


def genai_perf(summary: dict, *, rate: float | None, concurrency: int | None, isl: int, osl: int,
               n: int) -> dict:
    return {**_export(summary, isl, osl),
            "input_config": {"model": [HF_ID], "service_kind": "openai", "endpoint_type": "chat",
                             "streaming": True, "concurrency": concurrency, "request_rate": rate,
                             "request_count": n, "synthetic_input_tokens_mean": isl,
                             "synthetic_input_tokens_stddev": 0, "output_tokens_mean": osl,
                             "output_tokens_stddev": 0}}


def aiperf(summary: dict, *, rate: float | None, concurrency: int | None, isl: int, osl: int,
           n: int) -> dict:
    loadgen = {"request_count": n, **({"concurrency": concurrency} if concurrency else {}),
               **({"request_rate": rate} if rate else {})}
    return {**_export(summary, isl, osl),
            "benchmark_duration": {"unit": "sec", "avg": summary["duration_s"]},
            "request_count": {"unit": "requests", "avg": n},
            "total_isl": {"unit": "tokens", "avg": n * isl},
            "total_osl": {"unit": "tokens", "avg": n * osl},
            "was_cancelled": False,
            "input_config": {"endpoint": {"model_names": [HF_ID], "type": "chat",
                                          "streaming": True},
                             "input": {"prompt": {"output_tokens": {"mean": osl}}},
                             "loadgen": loadgen}}


WRITERS = {"vllm": vllm, "sglang": sglang, "genai-perf": genai_perf, "aiperf": aiperf}


def write(path: Path, client: str, objects: list[dict]) -> Path:
    """One JSON object (JSON Lines for SGLang: one line per run)."""
    if client == "sglang":
        path.write_text("".join(json.dumps(o) + "\n" for o in objects))
    else:
        assert len(objects) == 1
        path.write_text(json.dumps(objects[0], indent=2))
    return path
