"""Offline per-GPU throughput of one GPU in systems of different sizes (issue 26 must-show).

    python benchmarks/bench_offline_scaling.py [--gpus 8 72 288] [--waves N] [--whole-run]

LoadGen's Offline keeps every replica busy, so a system's per-GPU throughput should not depend on
its size. Each case is an MLPerf submission built here (no results table: the figure compared is
the simulator's own, across sizes) and run through ``mlperf_engine.EngineSimulators``, the path
``hermes-sim validate`` uses for the calibrated column: layout chosen by best Offline throughput,
then per-GPU output tokens/s. A 72-GPU NVL72 system is 72 GPUs in replicas of the same layouts
(one NVLink domain is not modelled here). ``--waves`` sets ``mlperf_sim.ENGINE['offline_waves']``
(samples per replica, in running batches, without the 16,000 cap) to check the steady window is steady; ``--whole-run``
adds the same run's first-arrival-to-last-completion rate (fill and drain included).
"""

from __future__ import annotations

import argparse
import time

from hermes_opt.calibration import mlperf_engine, mlperf_sim
from hermes_opt.calibration import mlperf_rows as mr
from hermes_opt.compose import aliases

CASES = (("llama2-70b-99", "NVIDIA B200-SXM-180GB", "fp8"), ("llama2-70b-99", "NVIDIA GB200", "fp8"),
         ("deepseek-r1", "NVIDIA B200-SXM-180GB", "fp4"), ("deepseek-r1", "NVIDIA GB200", "fp4"),
         ("mixtral-8x7b", "NVIDIA H100-SXM-80GB", "fp8"))


def submission(bench_id: str, gpu: str, gpus: int, precision: str) -> mr.Submission:
    bench = mr.benchmark_table().find(bench_id)
    hardware, why = aliases.resolve("hardware", gpu)
    if why:
        raise SystemExit(why)
    return mr.Submission(key=f"{gpu} x{gpus}", file="-", benchmark_raw=bench_id, scenario="Offline",
                         target_qps=None, gpu_raw=gpu, num_gpus=gpus,
                         weights=mr.weights_kind(precision, ""), submitter="NVIDIA", system="",
                         engine_raw="TensorRT-LLM", benchmark=bench, hardware=hardware,
                         model=bench.model)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpus", type=int, nargs="+", default=[8, 72])
    p.add_argument("--waves", type=int, default=None)
    p.add_argument("--whole-run", action="store_true")
    args = p.parse_args()
    if args.waves is not None:  # exactly that many batches: the per-replica cap lifted
        mlperf_sim.ENGINE["offline_waves"] = args.waves
        mlperf_sim.ENGINE["offline_max_requests"] = 10**7
    sims = mlperf_engine.EngineSimulators()
    print("| benchmark | GPU | GPUs | layout | tokens/s per GPU | vs smallest |")
    print("|---|---|---|---|---|---|")
    for bench, gpu, precision in CASES:
        first = None
        for n in args.gpus:
            t0 = time.time()
            pred, _ = sims.predict(submission(bench, gpu, n, precision))
            if isinstance(pred, str):
                print(f"| {bench} | {gpu} | {n} | not expressible: {pred} | | |")
                continue
            per_gpu = pred.figures["output_tokens_per_s"] / n
            first = first or per_gpu
            whole = ""
            if args.whole_run:
                sim, _ = sims.for_submission(submission(bench, gpu, n, precision))
                run = sim.summary(pred.layout, mr.benchmark_table().find(bench), None,
                                  mlperf_sim.offline_requests(pred.layout))
                whole = f"whole run {run['output_tokens_per_s'] / pred.layout.tp:.0f} "
            print(f"| {bench} | {gpu} | {n} | tp={pred.layout.tp} x {pred.layout.replicas}, "
                  f"{pred.layout.weights.value}, batch {pred.layout.max_num_seqs} | {per_gpu:.0f} | "
                  f"{per_gpu / first:.3f} | {whole}({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
