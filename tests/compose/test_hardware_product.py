"""Every hardware catalog entry names its product as the vendor sells it and how many devices one
server holds, with a source (docs/CATALOG_SCHEMA.md): the report's decision card says
"2 x NVIDIA B200, one HGX B200 8-GPU server" from these fields."""

from __future__ import annotations

import pytest

from hermes_opt.compose import catalog

NAMES = catalog.options("hardware")
# the brand a product name starts with, per catalog vendor (Google sells TPUs as "Google TPU ...")
NODE_NOUNS = ("server", "tray", "host", "VM")  # "s" makes each plural
BRAND = {"NVIDIA": "NVIDIA ", "AMD": "AMD ", "Intel": "Intel ", "Google": "Google TPU"}


def test_the_catalog_is_not_empty():
    assert len(NAMES) >= 20


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_has_a_product_name_in_the_vendors_spelling(name):
    entry = catalog.entry("hardware", name)
    product = str(entry.get("product_name") or "")
    assert product.strip() == product and product, f"hardware {name}: product_name is missing"
    assert product.startswith(BRAND[str(entry.vendor)]), (
        f"hardware {name}: product_name {product!r} should start with {BRAND[str(entry.vendor)]!r}")
    assert name not in product, f"hardware {name}: product_name repeats the catalog key"


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_says_how_many_devices_one_server_holds_and_where_that_comes_from(name):
    node = catalog.entry("hardware", name).get("node")
    assert node is not None, f"hardware {name}: node is missing"
    devices = node.get("devices")
    assert isinstance(devices, int) and not isinstance(devices, bool) and 1 <= devices <= 72
    assert str(node.get("name") or "").strip(), f"hardware {name}: node.name is missing"
    # it reads inside a sentence, singular and plural ("two HGX B200 8-GPU servers")
    assert "(" not in str(node.name) and str(node.name).split()[-1] in NODE_NOUNS, (
        f"hardware {name}: node.name={node.name!r} must end with one of {NODE_NOUNS}, no ()")
    assert "http" in str(node.get("source") or ""), f"hardware {name}: node.source needs a URL"


@pytest.mark.parametrize("name, product, devices", [
    ("b200", "NVIDIA B200", 8), ("mi300x", "AMD Instinct MI300X", 8),
    ("tpu_v6e", "Google TPU v6e", 8), ("tpu_v5p", "Google TPU v5p", 4),
    ("gb200", "NVIDIA GB200 NVL72 GPU", 4), ("gaudi3", "Intel Gaudi 3", 8),
    ("xeon_6980p", "Intel Xeon 6980P", 2)])
def test_known_products_and_server_sizes(name, product, devices):
    entry = catalog.entry("hardware", name)
    assert (entry.product_name, entry.node.devices) == (product, devices)
