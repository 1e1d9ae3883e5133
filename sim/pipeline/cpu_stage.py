"""Pre/post-processing and rule-based routing on CPU hosts.

Each job holds one core for ``fixed_us + tokens x (us_per_token + guardrail_us_per_token)``
microseconds; a CPU pool is an M/G/c queue with c = hosts x cores (``sim.pipeline.service``), so
cores are the contended resource. Defaults (``sim.pipeline.validate.STAGE_PARAMS``):
tokenization 1 us/token/core (Hugging Face ``tokenizers`` README: "less than 20 seconds to
tokenize a GB of text on a server's CPU", i.e. ~12M tokens/s on a multi-core server, ~1 us/token
on one core), detokenization 0.2 us/token, rule/regex guardrails 2 us/token, 50 us fixed per job
(request parsing, queue hand-off). All are stage knobs in the plan.
"""

from __future__ import annotations

from sim.pipeline.validate import STAGE_PARAMS
from sim.request import Request, StageKind


class CPUStageCost:
    """Service time of one job on one core (no batching: ``work_tokens`` is 1)."""

    unit_work = True  # every job weighs one unit in a batch

    def __init__(self) -> None:
        # id(stage) -> (fixed_s, per_token_s, postprocess?): the stage's knobs, read once
        self._cache: dict[int, tuple[float, float, bool]] = {}

    def work_tokens(self, req: Request) -> int:
        return 1

    def _coefficients(self, stage) -> tuple[float, float, bool]:
        defaults = STAGE_PARAMS[stage.kind]
        per_token = stage.param("us_per_token", defaults["us_per_token"])
        if stage.kind is not StageKind.ROUTE:
            per_token += stage.param("guardrail_us_per_token", defaults["guardrail_us_per_token"])
        coeffs = (stage.param("fixed_us", defaults["fixed_us"]) * 1e-6, per_token * 1e-6,
                  stage.kind is StageKind.POSTPROCESS)
        self._cache[id(stage)] = coeffs
        return coeffs

    def job_time_s(self, req: Request) -> float:
        """``fixed + per_token x tokens``: postprocess detokenizes every sample's output, the
        other stages read the prompt."""
        stage = req.plan[req.stage_index]
        coeffs = self._cache.get(id(stage))
        if coeffs is None:
            coeffs = self._coefficients(stage)
        fixed_s, per_token_s, post = coeffs
        if post:
            return fixed_s + per_token_s * (req.output_tokens * req.samples)
        return fixed_s + per_token_s * req.prompt_tokens

    def batch_time_s(self, batch: list[Request]) -> float:
        return sum(self.job_time_s(req) for req in batch)
