"""The one way hermes-opt writes JSON: strict JSON (RFC 8259), never ``NaN`` or ``Infinity``.

Python's ``json`` writes a float NaN as the bare word ``NaN``, which is not JSON: ``jq``,
JavaScript's ``JSON.parse`` and most other readers reject the whole document. A metric is NaN
when there is nothing to compute it from (a percentile of the latencies of no completed request:
every request rejected), and infinite when a ratio divides by zero. Such a value is written as
``null``, and the document's top-level object gets a ``null_reasons`` entry naming each such
value by its path (``ttft_ms.p99``) with what it was and why, so a reader can tell an undefined
metric from a missing one. Every JSON file or line hermes-sim, hermes-opt, validate and
calibrate print or write goes through ``dumps`` (which also refuses to write a non-finite
number it missed: ``allow_nan=False``).
"""

from __future__ import annotations

import json
import math
from typing import Any

NULL_REASONS = "null_reasons"  # top-level key: path -> why the value there is null
WHY = {"nan": "NaN: undefined, nothing to compute it from (e.g. no request completed)",
       "inf": "Infinity: unbounded (a ratio over zero)",
       "-inf": "-Infinity: unbounded (a ratio over zero)"}


def clean(value: Any, reasons: dict[str, str] | None = None, path: str = "") -> Any:
    """``value`` with every non-finite float replaced by None (numpy scalars as Python
    numbers); each replacement's path and reason added to ``reasons``."""
    if isinstance(value, dict):
        return {k: clean(v, reasons, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v, reasons, f"{path}[{i}]") for i, v in enumerate(value)]
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        if reasons is not None:
            reasons[path or "(value)"] = WHY["nan" if math.isnan(value) else
                                             ("inf" if value > 0 else "-inf")]
        return None
    return value


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``obj`` as strict JSON (module docstring); ``kwargs`` as for
    ``json.dumps`` (``sort_keys``, ``indent``, ``default``)."""
    default = kwargs.pop("default", None)
    if default is not None:  # apply it first, so what it returns is cleaned too
        obj = json.loads(json.dumps(obj, default=default))
    reasons: dict[str, str] = {}
    out = clean(obj, reasons)
    if reasons and isinstance(out, dict):
        out[NULL_REASONS] = {**out.get(NULL_REASONS, {}), **reasons}
    return json.dumps(out, allow_nan=False, **kwargs)
