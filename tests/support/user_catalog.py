"""A user catalog in a temporary folder: a made-up GPU (acme_x1, the h100_sxm entry's schema
with its own name, vendor and product) and its negotiated price (acme_quote)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from hermes_opt.compose import catalog

ACME_PRICE = {
    "name": "acme_quote", "provider": "ACME Cloud", "description": "our negotiated ACME X1 quote",
    "date": "2026-12-01",
    "usd_per_hour": {"acme_x1": {
        "value": 2.5, "unit": "device", "provider": "ACME Cloud", "kind": "reserved",
        "product": "ACME X1, 1-year reservation", "date_observed": "2026-12-01",
        "source": "quote Q-123 from ACME sales", "trust": "A"}},
}


def acme_hardware() -> dict:
    entry = yaml.safe_load((catalog.CONF_DIR / "hardware" / "h100_sxm.yaml").read_text())
    entry.update(name="acme_x1", vendor="ACME", product_name="ACME X1",
                 display_name="ACME X1 96GB", memory_gb=96, memory_gib=95.5,
                 source="ACME X1 datasheet rev 2", notes="made up for a test")
    return entry


def write(root: Path, group: str, name: str, data: dict | str) -> Path:
    path = root / group / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def acme_catalog(root: Path) -> Path:
    write(root, "hardware", "acme_x1", acme_hardware())
    write(root, "pricing", "acme_quote", ACME_PRICE)
    return root


def package_fingerprint() -> dict[str, tuple[int, str]]:
    """Every file under the installed package's conf/ and studies/: mtime and content hash."""
    out = {}
    for folder in (catalog.CONF_DIR, catalog.STUDIES_DIR):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out[str(path)] = (path.stat().st_mtime_ns,
                                  hashlib.sha256(path.read_bytes()).hexdigest())
    return out
