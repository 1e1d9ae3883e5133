"""Which rows a profile is fitted on and which it is tested on (held out).

A row is held out when any of its coordinates is in a holdout list (model, TP, batch size, prompt
size, decode tokens, ISL/OSL pair, token count), or — when no list is given — when its
configuration is every ``every``-th in sorted order. The split is stored in the profile so the
validation study reports error on exactly the rows the fit never saw.
"""

from __future__ import annotations

from hermes_opt.calibration.observations import (
    CollectiveObservation,
    OperatorObservation,
    ServingObservation,
    StepObservation,
)
from hermes_opt.compose.calibration_profile import Holdout


def _key(obs: object) -> str:
    if isinstance(obs, StepObservation):
        return obs.config_key
    if isinstance(obs, OperatorObservation):
        return f"{obs.model}/{obs.hardware}/tp{obs.tp}/n{obs.num_tokens:06d}"
    if isinstance(obs, CollectiveObservation):
        return f"{obs.hardware}/w{obs.num_workers}/s{obs.size_bytes:015.0f}"
    o: ServingObservation = obs  # type: ignore[assignment]
    return f"{o.model}/{o.hardware}/{o.isl:06d}/{o.osl:06d}"


def _coordinates_held_out(h: Holdout, obs: object) -> bool:
    model = getattr(obs, "model", "")
    if model and model in h.models:
        return True
    if getattr(obs, "tp", None) in h.tp:
        return True
    if isinstance(obs, StepObservation):
        decode_tokens = (obs.config_key.rsplit("/t", 1)[-1] if "/t" in obs.config_key else "")
        # Decode length changes only the decode measurement: the prefill of such a configuration
        # is the same shape as a training row's, so it is not counted as held out.
        return (obs.batch_size in h.batch or obs.prompt_tokens in h.prompt
                or (obs.phase == "decode" and decode_tokens.isdigit()
                    and int(decode_tokens) in h.decode_tokens))
    if isinstance(obs, OperatorObservation):
        return obs.num_tokens in h.num_tokens
    if isinstance(obs, ServingObservation):
        return f"{obs.isl}/{obs.osl}" in h.isl_osl
    return False


def split(rows: list, holdout: Holdout) -> tuple[list, list]:
    """(train, test) — deterministic; configurations, not single metrics, are held out together."""
    if holdout.explicit:
        test_mask = [_coordinates_held_out(holdout, r) for r in rows]
    elif holdout.every == 0:
        test_mask = [False] * len(rows)
    else:
        keys = sorted({_key(r) for r in rows})
        held = {k for i, k in enumerate(keys) if i % holdout.every == holdout.every - 1}
        test_mask = [_key(r) in held for r in rows]
    train = [r for r, t in zip(rows, test_mask) if not t]
    test = [r for r, t in zip(rows, test_mask) if t]
    return train, test


def is_held_out(row: object, rows: list, holdout: Holdout) -> bool:
    """Whether ``row`` is in the test part of ``split(rows, holdout)``."""
    if holdout.explicit:
        return _coordinates_held_out(holdout, row)
    if holdout.every == 0:
        return False
    keys = sorted({_key(r) for r in rows})
    index = keys.index(_key(row))
    return index % holdout.every == holdout.every - 1

