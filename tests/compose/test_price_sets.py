"""Every price set under conf/pricing is well formed and honest about provenance.

One set per provider (each entry priced by that provider, or by one of the companies a provider-class
set such as ``neocloud`` lists), mixed sets say so, every price carries its source and date, and every
priced name is a catalog hardware entry; CPU kinds are priced per CPU-only instance (except the
legacy per-socket default set, whose values tests elsewhere pin).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hermes_opt.compose.pricing import PRICE_KINDS

CONF = Path(__file__).resolve().parents[2] / "hermes_opt" / "conf"
PRICE_SETS = sorted((CONF / "pricing").glob("*.yaml"))
HARDWARE = {p.stem: OmegaConf.load(p) for p in (CONF / "hardware").glob("*.yaml")}
MIXED = "mixed"
UNITS = {"device", "instance"}
LEGACY_PER_SOCKET = {"ondemand_2026_11"}  # CPU entries priced per socket; values pinned by the default study
KV_TIERS = {"hbm", "dram", "cxl", "ssd", "remote"}
TRUST = ("A", "B", "C", "D")  # as in hardware.csv; D = estimate or proxy


def _load(path: Path):
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def _allowed_providers(price_set: dict) -> set[str]:
    members = price_set.get("providers") or [price_set["provider"]]
    return {str(p).lower() for p in members}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_there_is_a_set_per_provider_and_a_mixed_one():
    providers = {str(_load(p)["provider"]).lower() for p in PRICE_SETS}
    assert {"aws", "gcp", "azure", "neocloud", MIXED} <= providers


@pytest.mark.parametrize("path", PRICE_SETS, ids=lambda p: p.stem)
def test_price_set_header(path):
    price_set = _load(path)
    assert price_set["name"] == path.stem
    assert str(price_set.get("provider") or "").strip(), "every price set names its provider (or 'mixed')"
    assert str(price_set.get("date") or "").strip()
    assert str(price_set.get("description") or "").strip()
    if str(price_set["provider"]).lower() == MIXED:
        assert "mix" in price_set["description"].lower(), "a mixed set says so in its description"
        assert "providers" not in price_set
    assert price_set["usd_per_hour"], "a price set prices at least one device"


@pytest.mark.parametrize("path", PRICE_SETS, ids=lambda p: p.stem)
def test_device_prices_have_value_source_date_and_provider(path):
    price_set = _load(path)
    single = str(price_set["provider"]).lower() != MIXED
    allowed = _allowed_providers(price_set)
    for name, entry in price_set["usd_per_hour"].items():
        where = f"{path.stem}.usd_per_hour.{name}"
        assert _is_number(entry.get("value")) and entry["value"] > 0, f"{where}.value must be a finite number > 0"
        for field in ("source", "date_observed", "provider"):
            assert str(entry.get(field) or "").strip(), f"{where}.{field} is missing"
        if single:
            assert str(entry["provider"]).lower() in allowed, (
                f"{where}.provider={entry['provider']!r} is not the set's provider ({sorted(allowed)})")
        unit = entry.get("unit", "device")
        assert unit in UNITS, f"{where}.unit={unit!r} must be one of {sorted(UNITS)}"
        assert entry.get("kind") in PRICE_KINDS, (
            f"{where}.kind={entry.get('kind')!r} must be one of {PRICE_KINDS} (the report names it)")
        assert str(entry.get("trust") or "") in TRUST, f"{where}.trust must be one of {TRUST}"


@pytest.mark.parametrize("path", PRICE_SETS, ids=lambda p: p.stem)
def test_every_priced_name_is_a_catalog_hardware_entry(path):
    priced = set(_load(path)["usd_per_hour"])
    missing = sorted(priced - set(HARDWARE))
    assert not missing, f"{path.stem} prices hardware with no conf/hardware/<name>.yaml: {missing}"


@pytest.mark.parametrize("path", PRICE_SETS, ids=lambda p: p.stem)
def test_cpu_pools_are_priced_per_cpu_only_instance(path):
    price_set = _load(path)
    for name, entry in price_set["usd_per_hour"].items():
        if name not in HARDWARE:
            continue  # reported by test_every_priced_name_is_a_catalog_hardware_entry
        where = f"{path.stem}.usd_per_hour.{name}"
        is_cpu = HARDWARE[name].kind == "cpu"
        unit = entry.get("unit", "device")
        if not is_cpu:
            assert unit == "device", f"{where}: accelerators are priced per device (host included)"
        elif path.stem not in LEGACY_PER_SOCKET:
            assert unit == "instance", f"{where}: CPU kinds are priced per CPU-only instance (unit: instance)"
            vcpus = entry.get("instance_vcpus")
            assert isinstance(vcpus, int) and vcpus > 0, f"{where}.instance_vcpus must be a positive integer"
            assert str(entry.get("product") or "").strip(), f"{where}.product names the instance"


@pytest.mark.parametrize("path", PRICE_SETS, ids=lambda p: p.stem)
def test_memory_tier_prices(path):
    price_set = _load(path)
    single = str(price_set["provider"]).lower() != MIXED
    allowed = _allowed_providers(price_set)
    for tier, entry in (price_set.get("memory_usd_per_gb_hour") or {}).items():
        where = f"{path.stem}.memory_usd_per_gb_hour.{tier}"
        assert tier in KV_TIERS, f"{where}: unknown KV tier (known: {sorted(KV_TIERS)})"
        assert _is_number(entry.get("value")) and entry["value"] >= 0, f"{where}.value must be finite and >= 0"
        assert str(entry.get("source") or "").strip(), f"{where}.source is missing"
        if single:
            assert str(entry.get("provider") or "").lower() in allowed, (
                f"{where}.provider={entry.get('provider')!r} is not the set's provider ({sorted(allowed)})")


@pytest.mark.parametrize("path", PRICE_SETS, ids=lambda p: p.stem)
def test_price_set_composes_with_hydra(path):
    from hermes_opt.compose.overrides import hydra_compose

    cfg = hydra_compose([f"pricing={path.stem}"])
    assert cfg.pricing.name == path.stem
