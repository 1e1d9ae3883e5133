"""Engine settings of a published serving run, by engine name and version (not by table).

A results table states its engine (``engine`` column: "vLLM", "TensorRT-LLM via Triton ...",
"SGLang") and version (``engine_version``, or inside the engine text: "vLLM v0.10.1", "SGLang
0.5.2", "TensorRT-LLM 1.0rc"). The settings the table leaves out (running-batch cap, KV memory
share) are each engine version's published defaults, listed below with their sources. A version
not listed takes the nearest listed one at or below it (else the oldest), and the row's ``setup``
records the fallback; an engine not recognised takes ``DEFAULT`` (recorded too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from hermes_opt.compose.profile_select import engine_of_text


@dataclass(frozen=True, slots=True)
class Settings:
    engine: str
    version: tuple[int, ...]
    max_num_seqs: int
    memory_fraction: float
    source: str
    large_device_seqs: int = 0  # > 0: the cap on devices >= 70 GiB that are not Ampere
    note: str = ""  # the fallback taken, if any

    @property
    def label(self) -> str:
        return f"{self.engine} {'.'.join(map(str, self.version))}" if self.version else self.engine

    def seqs_on(self, memory_gib: float, generation: str) -> int:
        if self.large_device_seqs and memory_gib >= 70 and generation != "ampere":
            return self.large_device_seqs
        return self.max_num_seqs


TABLE: dict[str, tuple[Settings, ...]] = {  # oldest first
    "trtllm": (
        Settings("trtllm", (0, 14), 256, 0.9,
                 "TensorRT-LLM perf-overview, online serving table v0.14 (Triton tensorrtllm_backend: "
                 "max_batch_size 256, kv_cache_free_gpu_mem_fraction 0.9)"),
        Settings("trtllm", (0, 17), 2048, 0.95,
                 "TensorRT-LLM perf-overview v0.17 (trtllm-bench: max_batch_size 2048, "
                 "kv_cache_free_gpu_mem_fraction 0.95 'in most cases')"),
    ),
    "vllm": (
        Settings("vllm", (0, 6), 256, 0.9,
                 "vLLM V0 EngineArgs defaults (max_num_seqs 256, gpu_memory_utilization 0.9)"),
        Settings("vllm", (0, 8), 256, 0.9,
                 "vLLM V1 engine (default from 0.8): max_num_seqs 1024 on H100/H200-class GPUs "
                 "(vllm PRs #12369, #16158; >= 70 GiB and not A100 since #17885), else 256; "
                 "gpu_memory_utilization 0.9 (conf/engine/vllm.yaml)", large_device_seqs=1024),
    ),
    "sglang": (
        Settings("sglang", (0, 3), 2048, 0.88,
                 "SGLang ServerArgs: max_running_requests from the request pool (2048 and up), "
                 "mem_fraction_static 0.88 at TP 1 (ServerArgs: 0.87 at TP 2, 0.85 at 4, 0.81 at 8)"),
    ),
}
DEFAULT = Settings("unknown engine", (), 256, 0.9,
                   "no engine named: vLLM V0-like defaults (256 sequences, 0.9 of memory)")

_VERSION = re.compile(r"(?<![\d.])v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: object) -> tuple[int, ...]:
    """'v0.19.1 (FA3)' -> (0, 19, 1); 'SGLang 0.5.2' -> (0, 5, 2); 'TensorRT-LLM 1.0rc' -> (1, 0);
    () when the text carries no version ('sglang main@43124cdd')."""
    m = _VERSION.search(str(text))
    return tuple(int(g) for g in m.groups() if g is not None) if m else ()


def resolve(engine: object, version: object = "", source: object = "") -> Settings:
    """Settings of ``engine`` (a table's engine text, else its source text) at ``version`` (the
    engine_version cell, else a version written in the engine text)."""
    name = engine_of_text(str(engine)) or engine_of_text(str(source))
    if not name:
        return DEFAULT
    wanted = parse_version(version) if str(version).strip() not in ("", "nan") else ()
    if not wanted and engine_of_text(str(engine)):
        wanted = parse_version(engine)
    options = TABLE[name]
    if not wanted:
        return _noted(options[-1], f"{name}: version not given, settings of {options[-1].label}")
    exact = next((s for s in options if s.version == wanted[:len(s.version)]), None)
    if exact is not None:
        return exact
    below = [s for s in options if s.version <= wanted]
    chosen = below[-1] if below else options[0]
    got = ".".join(map(str, wanted))
    return _noted(chosen, f"{name} {got} not listed: settings of {chosen.label} (nearest)")


def _noted(s: Settings, note: str) -> Settings:
    return replace(s, note=note)
