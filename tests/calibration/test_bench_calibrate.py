"""``hermes-sim calibrate --from-benchmark`` (issue 25 items 2 and 3).

The round trip: a deployment is simulated under a perturbed "true" model (decode 1.3x slower,
prefill 0.8x, 0.5x the engine's KV budget), its benchmark outputs are synthesized in each client's
format (vLLM, SGLang, genai-perf, aiperf: one load point or two each), the profile is fitted from
them through the command, and the recovered knobs and a small study's ranking are compared with
the truth. Bad input is one line, exit 2, and no profile written."""

from __future__ import annotations

import json
from pathlib import Path

import bench_synth
import pytest

from hermes_opt.calibration import bench_calibrate, bench_fit
from hermes_opt.calibration.bench_formats import BenchmarkRun, Lengths
from hermes_opt.cli.calibrate_command import calibrate_main
from hermes_opt.compose import calibration_profile as profile
from hermes_opt.compose import candidate as candidate_mod
from hermes_opt.compose import catalog, evaluate
from hermes_opt.compose.calibration_profile import Holdout, Profile

REAL = Path(__file__).parents[1] / "data" / "benchmarks" / "sglang_llama3_3_70b_4xh200_online.jsonl"
REAL_DEPLOYMENT = "hardware=h200 model=llama3_3_70b engine=sglang cluster.tp=4"
DEPLOYMENT = ["hardware=l40s", "model=llama3_1_8b", "engine=vllm"]
TRUTH = bench_fit.Knobs(prefill_scale=0.8, decode_scale=1 / 1.3, kv_capacity_factor=0.5)
# Recovered within (relative): the data are noise-free, so what is left is the simplex's
# tolerance and the KV cache's whole blocks.
TOLERANCE = {"prefill_scale": 0.03, "decode_scale": 0.02, "kv_capacity_factor": 0.05}
# The front-end latency (truth 0) trades a little against the prefill scale on TTFT.
FRONTEND_TOLERANCE_S = 0.005
ISL, OSL = 1000, 200
# client -> load points (rate req/s, concurrency, requests): light to KV-bound (aiperf at 160)
PLAN = {"vllm": [(2.0, None, 150)], "sglang": [(5.0, None, 200), (10.0, None, 300)],
        "genai-perf": [(None, 16, 200)], "aiperf": [(None, 160, 400)]}
# the small study: configurations of the profile's hardware, ranked by the default objective
STUDY = {"1x tp1": [], "2x tp1": ["cluster.num_replicas=2"], "1x tp2": ["cluster.tp=2"],
         "3x tp1": ["cluster.num_replicas=3"], "1x tp1 seqs64": ["scheduler.max_num_seqs=64"]}
STUDY_WORKLOAD = ["workload.arrival.rate_per_s=12", "workload.num_requests=500"]


@pytest.fixture
def user_root(tmp_path, monkeypatch):
    root = tmp_path / "catalog"
    (root / "calibration").mkdir(parents=True)
    monkeypatch.setenv(catalog.USER_ROOT_ENV, str(root))
    return root


def _run(client: str, rate, concurrency, n) -> BenchmarkRun:
    return BenchmarkRun(where=client, client=client, model=None, tp=None, engine=None,
                        arrival="poisson" if rate else "closed_loop", rate_per_s=rate,
                        concurrency=concurrency, num_requests=n,
                        input_tokens=Lengths(mean=ISL, low=ISL, high=ISL),
                        output_tokens=Lengths(mean=OSL, low=OSL, high=OSL))


def synthesize(folder: Path) -> list[str]:
    """The truth's benchmark outputs, one file per client."""
    config = candidate_mod.compose(DEPLOYMENT).config
    files = []
    for client, loads in PLAN.items():
        objects = []
        for rate, concurrency, n in loads:
            (summary,) = bench_fit.predict(config, [_run(client, rate, concurrency, n)], TRUTH)
            objects.append(bench_synth.WRITERS[client](summary, rate=rate, concurrency=concurrency,
                                                       isl=ISL, osl=OSL, n=n))
        files.append(str(bench_synth.write(folder / f"{client}_out.json", client, objects)))
    return files


def write_truth_profile(root: Path) -> None:
    pool = candidate_mod.compose(DEPLOYMENT).config.pools[0]
    truth = Profile(name="truth_l40s", hardware="l40s", engine=pool.engine, precision="bf16",
                    params=bench_fit.scaled_params(pool.cost_model.roofline, TRUTH),
                    kv_capacity_factor=TRUTH.kv_capacity_factor, holdout=Holdout(every=0))
    (root / "calibration" / "truth_l40s.yaml").write_text(truth.to_yaml())


def ranking(calibration: str) -> list[str]:
    score = {}
    for name, extra in STUDY.items():
        candidate = candidate_mod.compose(DEPLOYMENT + STUDY_WORKLOAD + extra
                                          + [f"calibration={calibration}"])
        score[name] = evaluate.simulate_candidate(candidate, 0)["slo_tokens_per_usd"]
    return sorted(score, key=lambda n: (-round(score[n], 6), n))


def test_round_trip_recovers_the_truth_and_its_ranking(tmp_path, user_root, capsys):
    files = synthesize(tmp_path)
    calibrate_main(["--name", "fitted_l40s", "--from-benchmark", *files,
                    "--deployment-overrides", " ".join(DEPLOYMENT), "--max-evals", "60"])
    out = capsys.readouterr().out
    fitted = profile.load("fitted_l40s")
    knobs = fitted.provenance["fitted_knobs"]
    print(f"recovered {knobs} truth {TRUTH}")
    for name, tolerance in TOLERANCE.items():
        truth = getattr(TRUTH, name)
        assert abs(knobs[name] / truth - 1) <= tolerance, (name, knobs[name], truth)
    assert knobs["frontend_latency_s"] <= FRONTEND_TOLERANCE_S  # the truth has none
    assert fitted.kv_capacity_factor == pytest.approx(knobs["kv_capacity_factor"])
    assert "kv_capacity_factor" in fitted.provenance["fitted_params"]
    # the error on the measurements falls, per metric (printed before/after for every file)
    after = fitted.provenance["fit_error_pct"]
    before = fitted.provenance["uncalibrated_fit_error_pct"]
    for metric in ("ttft_mean_ms", "tpot_mean_ms", "output_throughput_tokens_per_s"):
        assert after[metric]["median"] < min(2.0, before[metric]["median"]), metric
    assert "median |error| fitted       tpot_mean_ms" in out and "aiperf_out.json" in out
    write_truth_profile(user_root)
    truth_rank, fitted_rank, before_rank = ranking("truth_l40s"), ranking("fitted_l40s"), \
        ranking("engine")
    print(f"ranking truth={truth_rank} fitted={fitted_rank} uncalibrated={before_rank}")
    assert fitted_rank == truth_rank


def test_the_fit_is_deterministic():
    config = candidate_mod.compose(DEPLOYMENT).config
    runs = [_run("vllm", 2.0, None, 60), _run("aiperf", None, 64, 80)]
    for run, s in zip(runs, bench_fit.predict(config, runs, TRUTH)):
        run.measured.update({"ttft_mean_ms": s["ttft_ms"]["mean"], "tpot_mean_ms": s["tpot_ms"]["mean"]})
    first = bench_fit.fit(config, runs, max_evals=12)
    assert bench_fit.fit(config, runs, max_evals=12) == first


def test_a_record_or_a_summary_names_the_deployment(tmp_path):
    candidate = candidate_mod.compose(DEPLOYMENT + ["workload.num_requests=20"])
    summary = evaluate.simulate_candidate(candidate, 0)
    record = {"deployment": summary["deployment"], "workload": {"name": "chat"}, "slo": {},
              "predicted": {"slo_tokens_per_usd": summary["slo_tokens_per_usd"]}}
    bench = synthesize(tmp_path)[:1]
    for name, data in (("summary.json", summary), ("record.json", record)):
        path = tmp_path / name
        path.write_text(json.dumps(data))
        req = bench_calibrate.Request(name="x", benchmarks=tuple(bench), deployment=str(path))
        composed, overrides, runs = bench_calibrate.prepare(req)
        assert overrides[:3] == DEPLOYMENT
        assert composed.deployment["pools"][0]["scheduler"] == \
            summary["deployment"]["pools"][0]["scheduler"]
        assert [r.client for r in runs] == ["vllm"]


def _bad(tmp_path, name: str, obj) -> str:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def _vllm(**changes) -> dict:
    summary = {"duration_s": 10.0, "requests_completed": 50, "requests_per_s": 5.0,
               "output_tokens_per_s": 100.0, "total_tokens_per_s": 600.0,
               **{k: {"mean": 10.0, "p50": 9.0, "p90": 12.0, "p99": 20.0}
                  for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")}}
    obj = bench_synth.vllm(summary, rate=5.0, concurrency=None, isl=ISL, osl=OSL, n=50)
    return {**obj, **changes}


def _two_pool_record() -> dict:
    pool = {"name": "prefill", "role": "prefill", "hardware": "l40s", "model": "llama3_1_8b"}
    return {"deployment": {"pools": [pool, {**pool, "name": "decode", "role": "decode"}]}}


@pytest.mark.parametrize("case, needle", [
    ("unknown", "unknown format"),
    ("model", "model='Qwen/Qwen3-8B': the deployment serves llama3_1_8b"),
    ("tp", "tp=2: the deployment's llm pool runs tp=1; allowed: 1"),
    ("engine", "backend='sglang': the deployment's llm pool runs vllm 0.11; allowed: vllm"),
    ("lengths", "input+output tokens=200200: longer than llama3_1_8b's context (131072)"),
    ("nan", "p99_ttft_ms=nan: must be a finite number"),
    ("record", "a record is re-composed for one colocated LLM pool only"),
    ("both", "--deployment / --deployment-overrides: give exactly one"),
    ("no_record", "deployment: missing"),
    ("int4", "weight_dtype='int4': a calibration profile describes bf16 or fp8 weights"),
    ("holdout", "--holdout-runs=2: allowed: positions 1..1 of the runs read"),
    ("holdout_text", "--holdout-runs='x': must be comma-separated run positions"),
])
def test_bad_input_is_one_line_exit_2_and_no_profile(tmp_path, user_root, capsys, case, needle):
    bench = _bad(tmp_path, "b.json", {"unknown": {"hello": 1}} if case == "unknown" else
                 _vllm(model_id="Qwen/Qwen3-8B") if case == "model" else
                 _vllm(tensor_parallel_size=2) if case == "tp" else
                 _vllm(backend="sglang") if case == "engine" else
                 _vllm(total_input_tokens=50 * 200000) if case == "lengths" else
                 _vllm(p99_ttft_ms=float("nan")) if case == "nan" else _vllm())
    where = ["--deployment-overrides", " ".join(DEPLOYMENT)]
    if case == "record":
        where = ["--deployment", _bad(tmp_path, "record.json", _two_pool_record())]
    if case == "both":
        where += ["--deployment", _bad(tmp_path, "record.json", _two_pool_record())]
    if case == "no_record":
        where = ["--deployment", _bad(tmp_path, "record.json", {"ttft_ms": {}})]
    if case == "int4":
        where = ["--deployment-overrides", " ".join(DEPLOYMENT) + " cluster.weight_dtype=int4"]
    if case == "holdout":
        where += ["--holdout-runs", "2"]
    if case == "holdout_text":
        where += ["--holdout-runs", "x"]
    with pytest.raises(SystemExit) as code:
        calibrate_main(["--name", "nope", "--from-benchmark", bench, *where])
    assert code.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hermes-sim calibrate: error: ") and "\n" not in err
    assert needle in err
    assert not list((user_root / "calibration").iterdir())


def test_the_published_sglang_benchmark_matches_its_deployment():
    req = bench_calibrate.Request(name="x", benchmarks=(str(REAL),), overrides=REAL_DEPLOYMENT)
    candidate, _, runs = bench_calibrate.prepare(req)
    assert len(runs) == 7 and candidate.config.pools[0].tp == 4


@pytest.mark.slow
def test_the_published_sglang_benchmark_calibrates(user_root, capsys):
    """~40 s of CPU: fit on the 5 random-dataset runs of Llama 3.3 70B on 4 x H200 (SGLang), the
    2 ShareGPT runs held out."""
    calibrate_main(["--name", "dc_h200", "--from-benchmark", str(REAL), "--holdout-runs", "6,7",
                    "--deployment-overrides", REAL_DEPLOYMENT, "--max-evals", "60"])
    fitted = profile.load("dc_h200")
    prov = fitted.provenance
    assert prov["rows"] == {"fit": 25, "held_out": 10}
    # fitted runs: TTFT and ITL improve; held-out ShareGPT runs: TTFT does (ITL does not: 17.4 %
    # -> 20.3 % on the two runs, docs/validation.md says why)
    for part, metrics in (("fit", ("ttft_median_ms", "itl_median_ms")),
                          ("heldout", ("ttft_median_ms",))):
        after, before = prov[f"{part}_error_pct"], prov[f"uncalibrated_{part}_error_pct"]
        for metric in metrics:
            assert after[metric]["median"] < before[metric]["median"], (part, metric)
