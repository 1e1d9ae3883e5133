"""The exact calibrate commands behind the shipped profiles (``hermes-sim calibrate --recipe``).

Splits (what is held out) are chosen so every held-out figure in docs/validation.md is measured on
rows the fit never saw:

* Splitwise Llama2-70B, per GPU (``--models llama2_70b``: the file's BLOOM-176B rows, in the
  catalog since 2026-12, are not what these profiles were fitted on): hold out batch sizes
  2/8/32, prompt sizes 256/1024/4096 and decode lengths 256/1024/4096 (every other point of
  each sweep); fit on the rest, all TPs.
  (A second split, fit on TP 2 and 8 and test on TP 4, is reported by the validation study.)
* Vidur: fit the operator curve on Llama-2-70B, test on the other model sizes of the same GPU;
  the fitted terms are shrunk 0.75 of the way toward the roofline defaults (``--shrink``).
* TensorRT-LLM v0.17 max-load table, per GPU: fit on Llama 3.1 8B at six ISL/OSL pairs; test on
  Llama 3.1 8B at 128/2048, 1000/1000, 5000/500 and on every Mistral 7B row.
* TensorRT-LLM v0.14 online QPS sweep, per GPU: fit on ISL/OSL 467/256; test on 467/16, 202/214.
"""

from __future__ import annotations

# Shipped copies (hermes_opt/data, sources in its README) so recipes run without ../shared.
SPLITWISE = "{data}/splitwise/perf_model.csv"
VIDUR = "{data}/vidur"
MEASUREMENTS = "{data}/reference/trtllm_measurements.csv"
V017 = "TensorRT-LLM perf-overview (v0.17 table)"
V014 = "TensorRT-LLM perf-overview (online serving table, v0.14)"
SPLITWISE_HOLDOUT = ["--holdout-batch", "2,8,32", "--holdout-prompt", "256,1024,4096",
                     "--holdout-decode-tokens", "256,1024,4096"]
V017_HOLDOUT = ["--holdout-models", "mistral_7b", "--holdout-isl-osl", "128/2048,1000/1000,5000/500"]
V014_HOLDOUT = ["--holdout-isl-osl", "467/16,202/214"]
# Operator fits move 0.75 of the way from the roofline defaults to the fit: the shrinkage chosen by
# leave-one-model-size-out on the other GPU's Vidur rows (benchmarks/bench_transfer.py; A100 and
# H100 both choose 0.75), so a profile fitted on one size carries over to the other.
VIDUR_SHRINK = ["--shrink", "0.75"]
SPLITWISE_ENGINE = "Splitwise characterization runs (DGX, FP16; engine not stated in the data)"


def _splitwise(name: str, hardware: str, variant: str = "") -> list[str]:
    engine = SPLITWISE_ENGINE + (", power-capped" if variant else "")
    return ["--name", name, "--hardware", hardware, "--engine", engine, "--precision", "bf16",
            "--splitwise", SPLITWISE, "--variant", variant, "--models", "llama2_70b",
            *SPLITWISE_HOLDOUT]


def _trtllm(name: str, hardware: str, precision: str, source: str, holdout: list[str]) -> list[str]:
    version = "0.17 (trtllm-bench)" if source == V017 else "0.14 (Triton backend)"
    return ["--name", name, "--hardware", hardware, "--engine", f"TensorRT-LLM {version}",
            "--precision", precision, "--serving", MEASUREMENTS, "--serving-source", source, *holdout]


RECIPES: dict[str, list[str]] = {
    "splitwise_a100_fp16": _splitwise("splitwise_a100_fp16", "a100_80g"),
    "splitwise_h100_fp16": _splitwise("splitwise_h100_fp16", "h100_sxm"),
    "splitwise_h100_pcap_fp16": _splitwise("splitwise_h100_pcap_fp16", "h100_sxm", "pcap"),
    "vidur_a100_fp16": [
        "--name", "vidur_a100_fp16", "--hardware", "a100_80g", "--precision", "bf16",
        "--engine", "Vidur profiler (PyTorch/CUDA, sarathi-serve kernels), FP16",
        "--vidur-compute", f"{VIDUR}/compute__a100__meta-llama__Llama-2-70b-hf__mlp.csv",
        f"{VIDUR}/compute__a100__meta-llama__Meta-Llama-3-70B__mlp.csv",
        f"{VIDUR}/compute__a100__meta-llama__Meta-Llama-3-8B__mlp.csv",
        "--vidur-network", f"{VIDUR}/network__a100_dgx__all_reduce.csv",
        "--holdout-models", "llama3_1_8b,llama3_1_70b", *VIDUR_SHRINK],
    "vidur_h100_fp16": [
        "--name", "vidur_h100_fp16", "--hardware", "h100_sxm", "--precision", "bf16",
        "--engine", "Vidur profiler (PyTorch/CUDA, sarathi-serve kernels), FP16",
        "--vidur-compute", f"{VIDUR}/compute__h100__meta-llama__Llama-2-70b-hf__mlp.csv",
        f"{VIDUR}/compute__h100__meta-llama__Llama-2-7b-hf__mlp.csv",
        "--vidur-network", f"{VIDUR}/network__h100_dgx__all_reduce.csv",
        "--holdout-models", "llama2_7b", *VIDUR_SHRINK],
    "trtllm017_fp8_h100": _trtllm("trtllm017_fp8_h100", "h100_sxm", "fp8", V017, V017_HOLDOUT),
    "trtllm017_fp8_h200": _trtllm("trtllm017_fp8_h200", "h200", "fp8", V017, V017_HOLDOUT),
    "trtllm017_fp8_l40s": _trtllm("trtllm017_fp8_l40s", "l40s", "fp8", V017, V017_HOLDOUT),
    "trtllm017_fp16_a100": _trtllm("trtllm017_fp16_a100", "a100_80g", "bf16", V017, V017_HOLDOUT),
    "trtllm014_bf16_h100": _trtllm("trtllm014_bf16_h100", "h100_sxm", "bf16", V014, V014_HOLDOUT),
    "trtllm014_bf16_h200": _trtllm("trtllm014_bf16_h200", "h200", "bf16", V014, V014_HOLDOUT),
}


def recipe_argv(name: str) -> list[str]:
    from hermes_opt.compose import catalog
    return [a.replace("{data}", str(catalog.DATA_DIR)) for a in RECIPES[name]]
