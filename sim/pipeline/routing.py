"""Model routing: a ROUTE stage picks which model pool serves the request's generation.

The ROUTE stage itself runs on a CPU pool (a rule: cost ``fixed_us + us_per_token x tokens``) or a
classifier pool (a small model's forward pass over the query, ``EncoderCost``). Its decision:

* ``weighted``: target ``i`` with probability ``weight_i`` (the classifier's verdict mix),
* ``length``: prompt tokens <= ``threshold_tokens`` -> ``targets[0]``, else ``targets[1]``,
* ``cascade``: every request starts on ``targets[0]``; after its generation there, a fraction
  ``targets[i].weight`` escalates to ``targets[i + 1]`` and generates again from scratch (the user
  sees the final model's answer: its TTFT counts from the escalated generation's first token).
Randomness comes from the stream ``route.<request type>``.
"""

from __future__ import annotations

import numpy as np

from sim.pipeline.validate import STAGE_PARAMS
from sim.request import Request, RouteMode, Stage, StageKind


def decide(stage: Stage, req: Request, rng: np.random.Generator) -> None:
    targets = stage.targets
    if stage.mode is RouteMode.LENGTH:
        threshold = stage.param("threshold_tokens", STAGE_PARAMS[StageKind.ROUTE]["threshold_tokens"])
        index = 0 if req.prompt_tokens <= threshold else 1
    elif stage.mode is RouteMode.CASCADE:
        index = 0
    else:
        weights = np.array([t.weight for t in targets], dtype=float)
        u = rng.random() * weights.sum()
        index = min(int(np.searchsorted(np.cumsum(weights), u, side="right")), len(targets) - 1)
    req.route_level = index
    req.routed_pool = targets[index].pool


def escalate(stage: Stage, req: Request, rng: np.random.Generator) -> bool:
    """Cascade: after a generation on level ``route_level``, maybe move up one level."""
    if stage.mode is not RouteMode.CASCADE or req.route_level + 1 >= len(stage.targets):
        return False
    if rng.random() >= stage.targets[req.route_level].weight:
        return False
    req.route_level += 1
    req.routed_pool = stage.targets[req.route_level].pool
    return True
