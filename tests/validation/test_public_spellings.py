"""Every GPU and model spelling of the public tables maps to the right catalog name (issue 26).

The spellings are a vendored copy of the tables' columns (tests/data/public_spellings.csv), so the
test runs without ../shared; when ../shared/reference is present, a second test checks the copy
still lists every spelling the tables hold.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hermes_opt.compose import aliases

DATA = Path(__file__).resolve().parents[1] / "data" / "public_spellings.csv"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
COLUMNS = {"measurements.csv": {"gpu": "hardware", "model": "model"},
           "mlperf_v4.1.csv": {"gpu": "hardware", "model": "model"},
           "hardware.csv": {"device": "hardware"}, "prices.csv": {"gpu": "hardware"},
           "gpu_tco_2026.csv": {"gpu": "hardware"}}


def _spellings() -> list[dict]:
    with DATA.open() as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


@pytest.fixture(autouse=True)
def shipped_table_only():
    aliases.use_tables([])
    yield
    aliases.use_tables([])


def test_every_public_spelling_maps_as_reviewed():
    rows = _spellings()
    assert len(rows) > 100
    wrong = {(r["kind"], r["spelling"]): (aliases.alias(r["kind"], r["spelling"]), r["expected"])
             for r in rows if aliases.alias(r["kind"], r["spelling"]) != r["expected"]}
    assert not wrong, wrong


def test_longer_product_names_are_not_captured_by_shorter_ones():
    """The most specific entry wins wherever it is listed (not the first that matches)."""
    cases = {"NVIDIA H200 NVL": "h200_nvl", "H200-NVL-141GB": "h200_nvl", "NVIDIA H200-SXM-141GB": "h200",
             "Virtualized NVIDIA H200-SXM-141GB": "h200", "NVIDIA GB200": "gb200",
             "NVIDIA GB200-NVL72": "gb200", "NVIDIA B200-SXM-180GB": "b200",
             "B200 in GB200 (1200W)": "gb200", "AMD Instinct MI325X": "mi325x",
             "AMD Instinct MI355X": "mi355x", "NVIDIA H100-PCIe-80GB": "h100_pcie",
             "NVIDIA H100-SXM-80GB": "h100_sxm", "NVIDIA H100-NVL-94GB": "h100_nvl",
             "A100-PCIe-40GB": "a100_40g", "A100-SXM4-80GB": "a100_80g", "A100 PCIe 80GB": "a100_pcie",
             "NVIDIA GH200-144GB_aarch64": "gh200_144g", "NVIDIA L4": "l4", "NVIDIA L40S": "l40s"}
    got = {raw: aliases.alias("hardware", raw) for raw in cases}
    assert got == cases


def test_specificity_does_not_depend_on_the_order(tmp_path):
    user = tmp_path / "order.yaml"  # the general entry first: the NVL one still wins
    user.write_text("hardware:\n  - {pattern: 'h200(-.*)?', name: h200}\n"
                    "  - {pattern: 'h200-nvl(-.*)?', name: h200_nvl}\n")
    aliases.use_tables([str(user)])
    assert aliases.alias("hardware", "NVIDIA H200 NVL") == "h200_nvl"
    assert aliases.alias("hardware", "NVIDIA H200") == "h200"


def test_a_cell_naming_several_products_is_not_one_of_them():
    name, reason = aliases.resolve("hardware", "B300 / B200 / H200 / H100 SXM / A100 80GB")
    assert name == "" and "names several products" in reason


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/reference not present")
def test_the_vendored_copy_holds_every_spelling_of_the_tables():
    import pandas as pd
    have = {(r["kind"], r["spelling"]) for r in _spellings()}
    missing = set()
    for name, columns in COLUMNS.items():
        if not (SHARED / name).is_file():
            continue
        frame = pd.read_csv(SHARED / name)
        for column, kind in columns.items():
            missing |= {(kind, v) for v in frame[column].dropna().astype(str).unique()} - have
    assert not missing, f"add to {DATA.name}: {sorted(missing)}"
