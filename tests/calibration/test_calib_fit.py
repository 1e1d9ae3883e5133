"""Readers, splits and the fitter: recover known parameters from synthetic measurements, reject
malformed files with one clear line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from hermes_opt.calibration import fit
from hermes_opt.calibration import observations as obs_mod
from hermes_opt.calibration.calibrate import inconsistent_step_configs
from hermes_opt.calibration.observations import StepObservation, ape, parse_load
from hermes_opt.calibration.predict import predict
from hermes_opt.calibration.splits import Holdout, is_held_out, split
from hermes_opt.compose import catalog
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError

TRUE = RooflineParams(compute_efficiency=0.55, memory_efficiency=0.8, attention_efficiency=0.3,
                      comm_efficiency=0.6, allreduce_latency_s=1.5e-5, step_overhead_s=4e-3,
                      compute_half_tokens=80, layer_overhead_s=3e-5, seq_overhead_s=3e-4,
                      prefill_seq_overhead_s=6e-3, decode_attention_efficiency=0.45)


def synthetic_steps(params: RooflineParams) -> list[StepObservation]:
    rows = []
    for tp in (2, 4, 8):
        for batch, prompt in [(1, 128), (1, 256), (1, 512), (1, 1024), (1, 2048), (1, 4096),
                              (2, 512), (4, 512), (8, 512), (16, 512), (32, 512)]:
            key = f"synthetic/tp{tp}/b{batch}/p{prompt}/t128"
            for phase in ("prefill", "decode"):
                rows.append(StepObservation(source="t", model="llama2_70b", hardware="h100_sxm",
                                            variant="", tp=tp, phase=phase, batch_size=batch,
                                            prompt_tokens=prompt, context_tokens=prompt + 64.0,
                                            measured_s=1.0, config_key=key))
    measured = predict(rows, params)
    return [dataclasses.replace(o, measured_s=float(m)) for o, m in zip(rows, measured)]


def test_fit_recovers_step_times_on_held_out_rows():
    rows = synthetic_steps(TRUE)
    train, test = split(rows, Holdout(batch=(2, 8), prompt=(256, 2048)))
    assert train and test and not set(map(id, train)) & set(map(id, test))
    result = fit.fit_rows(train, "step", num_starts=2)
    errors = ape(predict(test, result.params), [o.measured_s for o in test])
    assert np.median(errors) < 1.0 and errors.max() < 5.0
    # and the uncalibrated roofline is far off on the same rows (the fit did something)
    assert np.median(ape(predict(test, RooflineParams()), [o.measured_s for o in test])) > 10.0


def test_split_holds_out_configurations_and_decode_length_only_for_decode():
    rows = synthetic_steps(TRUE)
    h = Holdout(decode_tokens=(128,))
    train, test = split(rows, h)
    assert {o.phase for o in test} == {"decode"} and {o.phase for o in train} == {"prefill"}
    every = Holdout(every=3)
    _, test3 = split(rows, every)
    keys = sorted({o.config_key for o in rows})
    assert {o.config_key for o in test3} == {k for i, k in enumerate(keys) if i % 3 == 2}
    assert all(is_held_out(o, rows, every) for o in test3)
    assert split(rows, Holdout(every=0))[1] == []


def test_inconsistent_configurations_are_found():
    rows = synthetic_steps(TRUE)
    broken = [dataclasses.replace(o, measured_s=o.measured_s / 10)
              if o.batch_size == 32 and o.tp == 2 and o.phase == "prefill" else o for o in rows]
    bad = inconsistent_step_configs(broken)
    assert list(bad) == ["synthetic/tp2/b32/p512/t128"] and "faster than batch" in bad["synthetic/tp2/b32/p512/t128"]
    assert inconsistent_step_configs(rows) == {}


def test_splitwise_reader_takes_medians_and_maps_names():
    rows = obs_mod.load_splitwise(catalog.DATA_DIR / "splitwise" / "perf_model.csv")
    llama = [o for o in rows if o.raw_model == "llama2-70b"]
    assert {o.model for o in llama} == {"llama2_70b"}
    assert {o.hardware for o in llama} == {"a100_80g", "h100_sxm"}
    assert {o.model for o in rows if o.raw_model == "bloom-176b"} == {"bloom_176b"}  # in the catalog since 2026-12
    one = next(o for o in llama if o.config_key == "llama2-70b/h100-80gb/tp2/b1/p512/t128" and o.phase == "prefill")
    frame = pd.read_csv(catalog.DATA_DIR / "splitwise" / "perf_model.csv")
    sel = frame[(frame.model == "llama2-70b") & (frame.hardware == "h100-80gb") & (frame.tensor_parallel == 2)
                & (frame.batch_size == 1) & (frame.prompt_size == 512) & (frame.token_size == 128)]
    assert one.measured_s == pytest.approx(sel.prompt_time.median() / 1e3)


def write(tmp_path, text: str, name: str = "steps.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,message", [
    ("model,tp,phase,batch_size,prompt_tokens,time_ms\n", "missing column(s) ['context_tokens']"),
    ("model,tp,phase,batch_size,prompt_tokens,context_tokens,time_ms\nllama2_70b,2,warmup,1,1,1,1\n",
     "column 'phase' row 2 = 'warmup': allowed: prefill, decode"),
    ("model,tp,phase,batch_size,prompt_tokens,context_tokens,time_ms\ngpt5,2,decode,1,1,1,1\n",
     "row 2 model='gpt5': unknown"),
    ("model,tp,phase,batch_size,prompt_tokens,context_tokens,time_ms\nllama2_70b,2,decode,1,1,1,fast\n",
     "steps.csv:2: time_ms='fast': must be a finite number > 0"),
])
def test_steps_reader_rejects_bad_input_with_one_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        obs_mod.load_steps(write(tmp_path, text), "h100_sxm")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        obs_mod.load_splitwise(tmp_path / "nope.csv")


@pytest.mark.parametrize("text,expected", [
    ("max load (all 30000 requests queued at t=0)", ("max_load", 0.0, 1, 30000)),
    ("QPS=INF", ("max_load", 0.0, 1, 0)), ("QPS=4", ("poisson", 4.0, 1, 0)),
    ("RPS=8 (2400 prompts)", ("poisson", 8.0, 1, 2400)), ("concurrency=16", ("closed_loop", 0.0, 16, 0)),
    ("batch=4", None)])
def test_arrival_modes_parse(text, expected):
    assert parse_load(text) == expected
