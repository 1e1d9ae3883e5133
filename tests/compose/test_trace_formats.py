"""Public trace formats for ``workload=trace``: each shipped sample is recognised from its content
and read whole; JSON lines accept the common key spellings; every malformed line is one
ConfigError naming file:line, the field, its value and what is allowed; windowing keeps what it
says."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hermes_opt.compose import trace_formats, traces
from sim.errors import ConfigError

SAMPLES = {  # shipped file: (format, requests replayed, rows skipped)
    "azure_format_sample.csv": ("azure", 600, 0),
    "burstgpt_format_sample.csv": ("burstgpt", 396, 4),
    "jsonl_format_sample.jsonl": ("jsonl", 400, 0),
    "mooncake_conversation_sample.jsonl": ("mooncake", 400, 0),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_shipped_sample_is_detected_and_read(name):
    fmt, count, skipped = SAMPLES[name]
    path = traces.resolve(name)
    assert trace_formats.detect(path) == fmt
    trace = traces.read_trace(path)
    assert (trace.fmt, len(trace.arrival_s), trace.skipped_rows) == (fmt, count, skipped)
    assert np.all(np.diff(trace.arrival_s) >= 0) and min(trace.prompt_tokens) >= 1
    assert (trace.prefix_id is not None) == (fmt == "mooncake")


def test_mooncake_timestamps_are_milliseconds():
    trace = traces.read_trace(traces.resolve("mooncake_conversation_sample.jsonl"))
    # the file's last timestamp of the 400 lines is 141000 ms after its first
    assert trace.arrival_s[-1] - trace.arrival_s[0] == pytest.approx(141.0)


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("keys, scale", [
    (("timestamp", "input_length", "output_length"), 1.0),
    (("arrival_s", "prompt_tokens", "completion_tokens"), 1.0),
    (("Timestamp_ms", "Input_Tokens", "Output_Tokens"), 1e-3),
    (("time", "prompt_len", "response_tokens"), 1.0),
])
def test_jsonl_key_spellings(tmp_path, keys, scale):
    t, i, o = keys
    path = write_jsonl(tmp_path / "t.jsonl", [{t: 0, i: 10, o: 3}, {t: 500, i: 20, o: 4}])
    trace = traces.read_trace(path)
    assert trace.fmt == "jsonl"
    assert trace.arrival_s == (0.0, 500 * scale)
    assert trace.prompt_tokens == (10, 20) and trace.output_tokens == (3, 4)


def test_time_unit_ms_reads_a_unitless_time_as_milliseconds(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"timestamp": 0, "input_tokens": 5, "output_tokens": 1},
                                              {"timestamp": 2000, "input_tokens": 5,
                                               "output_tokens": 1}])
    assert traces.read_trace(path, time_unit="ms").arrival_s == (0.0, 2.0)


GOOD = {"timestamp": 1, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}


@pytest.mark.parametrize("bad, match", [
    ({"timestamp": -5}, r":2: timestamp=-5: must be a finite time >= 0"),
    ({"timestamp": float("nan")}, r":2: timestamp=nan: must be a finite time >= 0"),
    ({"timestamp": 0}, r":2: timestamp=0.0: must not be earlier than the previous request's "
                       r"\(line 1\)"),
    ({"input_length": 0}, r":2: input_length=0: must be a whole number >= 1"),
    ({"output_length": 2.5}, r":2: output_length=2.5: must be a whole number >= 1"),
    ({"hash_ids": "abc"}, r":2: hash_ids='abc': must be a list of integer block hashes"),
])
def test_a_malformed_mooncake_line_names_file_line_field_and_allowed(tmp_path, bad, match):
    path = write_jsonl(tmp_path / "m.jsonl", [GOOD, {**GOOD, "timestamp": 2, **bad}])
    with pytest.raises(ConfigError, match=f"m.jsonl{match}"):
        traces.read_trace(path)


def test_a_line_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{oops\n")
    with pytest.raises(ConfigError, match=r"m.jsonl:2: not valid JSON"):
        traces.read_trace(path)


def test_a_record_without_token_keys_lists_the_spellings(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"timestamp": 0, "tokens": 5}])
    with pytest.raises(ConfigError, match=r"t.jsonl:1: no input tokens key .*input_length"):
        traces.read_trace(path)


BURST = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"


@pytest.mark.parametrize("row, match", [
    ("-3,ChatGPT,10,5,15,API log", r"b.csv:3: Timestamp=-3.0: must be a finite number of seconds"),
    ("nan,ChatGPT,10,5,15,API log", r"b.csv:3: Timestamp=nan"),
    ("0,ChatGPT,10,5,15,API log", r"b.csv:3: Timestamp=0.0: must not be earlier"),
    ("9,ChatGPT,-1,5,4,API log", r"b.csv:3: Request tokens=-1.0: must be a whole number >= 0"),
])
def test_a_malformed_burstgpt_row_names_file_line_field_and_allowed(tmp_path, row, match):
    path = tmp_path / "b.csv"
    path.write_text(BURST + "5,GPT-4,10,5,15,API log\n" + row + "\n")
    with pytest.raises(ConfigError, match=match):
        traces.read_trace(path)


def test_burstgpt_failed_calls_are_skipped_and_counted(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(BURST + "5,GPT-4,10,5,15,API log\n6,ChatGPT,12,0,12,API log\n"
                    "8,ChatGPT,7,3,10,Conversation log\n")
    trace = traces.read_trace(path)
    assert trace.prompt_tokens == (10, 7) and trace.skipped_rows == 1
    assert trace.arrival_s == (5.0, 8.0)


def test_an_unknown_header_lists_the_formats(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("when,in,out\n1,2,3\n")
    with pytest.raises(ConfigError, match="matches no known format.*burstgpt"):
        traces.read_trace(path)


def test_window_start_and_duration_are_seconds_after_the_first_request():
    times = np.array([10.0, 11.0, 12.0, 20.0, 21.0, 40.0])
    keep = traces.window(times, 1.0, 10.0, False)  # [11, 21) relative to 10
    assert times[keep].tolist() == [11.0, 12.0, 20.0]
    assert times[traces.window(times, 10.0, None, False)].tolist() == [20.0, 21.0, 40.0]


def test_the_busiest_window_holds_the_most_requests():
    times = np.array([0.0, 50.0, 100.0, 101.0, 102.0, 103.0, 200.0])
    assert times[traces.window(times, 0.0, 5.0, True)].tolist() == [100.0, 101.0, 102.0, 103.0]


@pytest.mark.parametrize("kwargs, match", [
    ({"start_s": 1e6}, r"workload.trace.start_s=1000000.0: the window holds no request"),
    ({"duration_s": 0}, r"workload.trace.duration_s=0: must be seconds > 0"),
    ({"busiest": True}, r"workload.trace.busiest=true: needs workload.trace.duration_s"),
    ({"fmt": "csv"}, r"workload.trace.format='csv': allowed: auto, azure"),
])
def test_bad_window_settings_are_one_line(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        traces.read_trace(traces.resolve("jsonl_format_sample.jsonl"), **kwargs)


def test_summary_says_the_real_rate_and_lengths():
    trace = traces.read_trace(traces.resolve("burstgpt_format_sample.csv"))
    got = traces.summary(trace, 10**6, 0.5)
    span = (trace.arrival_s[-1] - trace.arrival_s[0]) * 0.5
    assert got["requests"] == 396 and got["span_s"] == pytest.approx(span)
    assert got["rate_per_s"] == pytest.approx(395 / span, rel=1e-6)
    assert got["prompt_tokens"]["p50"] == pytest.approx(np.percentile(trace.prompt_tokens, 50))
    assert got["skipped_rows"] == 4 and "shared_prefix" not in got


def test_hermes_sim_refuses_a_bad_trace_in_one_line_with_exit_2(tmp_path):
    import subprocess
    import sys
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, {**GOOD, "timestamp": -3}])
    proc = subprocess.run([sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()",
                           "workload=trace_mooncake", f"workload.trace.path={path}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"hermes-sim: error: {path}:2: timestamp=-3: must be a finite time >= 0"]
