"""The ``spec_decoding`` section -> the main model's ``SpecDecodeSpec`` (docs/speculative.md).

The acceptance is the user's (``acceptance_rate`` for every position, or
``acceptance_per_position``) or a public default from ``conf/tables/spec_acceptance.yaml``, picked
by method, model and ``dataset``; a published acceptance length per draft length becomes the
conditional acceptance of each position.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig

from hermes_opt.compose import catalog
from hermes_opt.compose.values import enum_value, model_spec, number
from sim.errors import ConfigError, require
from sim.hardware.speculative import SpecDecodeSpec, SpecMethod

FIELD = "spec_decoding"
TABLE = catalog.CONF_DIR / "tables" / "spec_acceptance.yaml"


@cache
def table() -> tuple[dict[str, Any], ...]:
    return tuple(yaml.safe_load(TABLE.read_text())["entries"])


def rates_from_lengths(lengths: list[float]) -> tuple[float, ...]:
    """Conditional acceptance of each position from acceptance lengths per draft length."""
    rates, previous_length, previous_all = [], 1.0, 1.0
    for length in lengths:
        all_kept = length - previous_length  # P(the first i drafts are all kept)
        rates.append(min(1.0, max(0.0, all_kept / previous_all)) if previous_all > 0 else 0.0)
        previous_length, previous_all = length, all_kept
    return tuple(rates)


def public_default(method: SpecMethod, model: str, dataset: str | None) -> dict[str, Any]:
    """The table entry for this method, model and dataset, or one line saying what there is."""
    rows = [e for e in table() if e["method"] == method.value and model in e["models"]]
    if dataset is not None:
        rows = [e for e in rows if e["dataset"] == dataset]
    if not rows:
        known = sorted({f"{e['method']}/{m}/{e['dataset']}" for e in table() for m in e["models"]})
        raise ConfigError(
            f"{FIELD}.dataset={dataset!r}: no public acceptance for method={method.value} on "
            f"model {model} (conf/tables/spec_acceptance.yaml has method/model/dataset: "
            f"{', '.join(known)}); give {FIELD}.acceptance_rate or acceptance_per_position")
    return rows[0]


def _rates(node: Any, method: SpecMethod, model: str, k: int) -> tuple[tuple[float, ...], str]:
    rate = number(node, "acceptance_rate", FIELD)
    listed = node.get("acceptance_per_position")
    if rate is not None and listed is not None:
        raise ConfigError(f"{FIELD}.acceptance_rate={rate}: give it or acceptance_per_position, "
                          "not both")
    if rate is not None:
        return (rate,) * k, f"{FIELD}.acceptance_rate={rate}"
    if listed is not None:
        require(isinstance(listed, (list, ListConfig)), f"{FIELD}.acceptance_per_position",
                listed, "must be a list of probabilities [a1, a2, ...]")
        values = tuple(number({"v": v}, "v", f"{FIELD}.acceptance_per_position[{i}]")
                       for i, v in enumerate(listed))
        return values, f"{FIELD}.acceptance_per_position"
    entry = public_default(method, model, node.get("dataset"))
    lengths = entry["acceptance_length"]
    if k > len(lengths):
        raise ConfigError(f"{FIELD}.draft_tokens={k}: the public default {entry['dataset']!r} "
                          f"covers draft_tokens 1..{len(lengths)}; give {FIELD}.acceptance_rate")
    return rates_from_lengths(lengths), f"{entry['dataset']}: {' '.join(entry['source'].split())}"


def spec_decoding_spec(cfg: DictConfig) -> SpecDecodeSpec:
    """The main model's speculative decoding (method none: off)."""
    node = cfg.get(FIELD)
    if node is None:
        return SpecDecodeSpec()
    method = enum_value(SpecMethod, node.get("method") or "none", f"{FIELD}.method")
    if method is SpecMethod.NONE:
        return SpecDecodeSpec()
    k = number(node, "draft_tokens", FIELD, integer=True)
    require(k is not None and k >= 1, f"{FIELD}.draft_tokens", k, "must be an integer >= 1")
    rates, source = _rates(node, method, str(cfg.model.name), k)
    draft = None
    if method is SpecMethod.DRAFT_MODEL:
        name = node.get("draft_model")
        require(name is not None, f"{FIELD}.draft_model", name,
                "method=draft_model needs a model catalog name")
        draft = model_spec(catalog.entry("model", str(name), f"{FIELD}.draft_model"))
    elif node.get("draft_model") is not None:
        raise ConfigError(f"{FIELD}.draft_model={node.get('draft_model')!r}: only for "
                          f"method=draft_model, not {method.value}")
    return SpecDecodeSpec(method=method, draft_tokens=k, acceptance_per_position=rates,
                          draft_model=draft, source=source)
