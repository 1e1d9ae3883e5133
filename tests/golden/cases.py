"""The pinned scenarios: `hermes-sim` overrides whose JSON output must not change by accident.

Shared by ``test_golden.py`` (which compares) and ``regenerate.py`` (which rewrites the pinned
files when a behaviour change is intended and explained in the commit).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> hermes-sim overrides; small request counts keep the whole set under ~20 s
SIM_CASES: dict[str, list[str]] = {
    "default": ["workload.num_requests=400"],
    "static": ["scheduler=static", "workload.num_requests=300", "workload.arrival.rate_per_s=20"],
    "continuous": ["scheduler=continuous", "workload.num_requests=300",
                   "workload.arrival.rate_per_s=20"],
    "mixed": ["scheduler=mixed", "workload.num_requests=300", "workload.arrival.rate_per_s=20"],
    "chunked": ["scheduler=chunked", "workload.num_requests=300", "workload.arrival.rate_per_s=20",
                "cluster.num_replicas=2", "router=least_outstanding_tokens"],
    "bursty_70b_fp8": ["model=llama3_1_70b", "hardware=h200", "cluster.tp=4",
                       "cluster.weight_dtype=fp8", "workload=bursty", "workload.num_requests=300",
                       "scheduler=chunked", "router=join_shortest_queue",
                       "cluster.num_replicas=2"],
    "kv_pressure": ["hardware=l40s", "scheduler=chunked", "workload=max_load",
                    "workload.num_requests=200", "scheduler.gpu_memory_utilization=0.4"],
    "table_cost": ["cost_model=splitwise_table", "model=llama2_70b", "hardware=a100_80g",
                   "cluster.tp=4", "workload.num_requests=200"],
    "calibrated": ["calibration=vidur_a100_fp16", "hardware=a100_80g", "model=llama2_7b",
                   "workload.num_requests=300", "router=power_of_two", "cluster.num_replicas=3"],
    "qa_disagg": ["workload=qa_disagg", "+cluster=qa_disagg_8gpu", "workload.num_requests=200"],
    "chat_rag_kv": ["workload=chat_rag_kv", "+cluster=chat_rag_8gpu", "workload.num_requests=200"],
    "math_reasoning": ["workload=math_reasoning", "+cluster=math_8gpu",
                       "workload.num_requests=120"],
    "pipeline_mix": ["workload=pipeline_mix", "+cluster=mix_8gpu", "workload.num_requests=200"],
    "code_kv": ["workload=code_kv", "+cluster=code_8gpu", "workload.num_requests=200"],
    "rag_news": ["workload=rag_news", "+cluster=rag_8gpu", "workload.num_requests=200"],
}


def sim_path(name: str) -> Path:
    return HERE / "sim_json" / f"{name}.json"


def dumps(summary: dict) -> str:
    """Exactly what `hermes-sim` prints."""
    return json.dumps(summary, sort_keys=True)


def run_sim(overrides: list[str]) -> str:
    """Compose with Hydra exactly as `hermes-sim` does, simulate, price; the printed line."""
    from hermes_opt.compose.evaluate import simulate_config
    from hermes_opt.compose.overrides import hydra_compose
    return dumps(simulate_config(hydra_compose(list(overrides))))


# A real (simulated) study, small: the default study's space and objective on 300-request runs.
# Coverage trials (after n_trials) are off: the pinned trials are the sampler's 16; with the
# default coverage the study appends 10 trials (16-25) for h100_sxm, h200, b200, l40s, mi300x.
STUDY_ARGS = ["n_trials=16", "batch_size=8", "replicates=2", "n_jobs=1",
              "workload.num_requests=300", "coverage.min_per_choice=0"]
STUDY_PATH = HERE / "study_default_small.json"


def run_study(tmp_dir: Path, *, n_jobs: int = 1) -> str:
    """Every trial of that study: number, state, parameters, values and constraints."""
    import optuna

    from hermes_opt.run import runner
    from hermes_opt.study import definition as study
    from hermes_opt.study.objective import named_constraints
    args = [a for a in STUDY_ARGS if not a.startswith("n_jobs=")] + [
        f"n_jobs={n_jobs}", f"storage=sqlite:///{tmp_dir / 'golden.db'}"]
    spec = study.load("default", args)
    result, _ = runner.run_study(spec, progress_stream=None)
    rows = []
    for t in result.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name, "params": t.params,
                     "values": t.values, "constraints": list(named_constraints(t)),
                     "result": t.user_attrs.get("result", {}).get("metrics")})
    assert all(t.state is optuna.trial.TrialState.COMPLETE for t in result.get_trials())
    return json.dumps(rows, sort_keys=True, indent=1)
