"""User catalogs (issue 24): entries under $HERMES_OPT_CONFIG_DIR/<group>/ are offered, checked
like shipped ones, may shadow a shipped one, and say which file they came from."""

from __future__ import annotations

import pytest
import yaml
from user_catalog import ACME_PRICE, acme_catalog, acme_hardware, write

from hermes_opt.compose import candidate, catalog, catalog_schema
from sim.errors import ConfigError


@pytest.fixture
def user_root(tmp_path, monkeypatch):
    root = tmp_path / "user"
    monkeypatch.setenv(catalog.USER_ROOT_ENV, str(root))
    return acme_catalog(root)


def test_the_user_root_is_the_variable_else_the_home_config(monkeypatch, tmp_path):
    monkeypatch.setenv(catalog.USER_ROOT_ENV, str(tmp_path))
    assert catalog.user_root() == tmp_path
    monkeypatch.delenv(catalog.USER_ROOT_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert catalog.user_root() == tmp_path / "home" / ".config" / "hermes-opt"


def test_user_entries_are_offered_and_read_with_their_source(user_root):
    assert "acme_x1" in catalog.options("hardware") and "h100_sxm" in catalog.options("hardware")
    assert catalog.entry("hardware", "acme_x1").vendor == "ACME"
    assert catalog.entry("pricing", "acme_quote").usd_per_hour.acme_x1.value == 2.5
    assert catalog.source("hardware", "acme_x1") == str(user_root / "hardware" / "acme_x1.yaml")
    assert catalog.source("hardware", "h100_sxm") is None  # shipped


def test_a_user_entry_shadows_the_shipped_one_and_says_so(user_root):
    entry = acme_hardware() | {"name": "h100_sxm", "vendor": "NVIDIA", "memory_gb": 81}
    path = write(user_root, "hardware", "h100_sxm", entry)
    assert catalog.entry("hardware", "h100_sxm").memory_gb == 81
    assert catalog.source("hardware", "h100_sxm") == str(path)


def test_every_shipped_entry_passes_the_schema_user_entries_are_held_to():
    for group in catalog_schema.SCHEMAS:
        for name in catalog.options(group):
            catalog.entry(group, name)  # raises on the first wrong key


@pytest.mark.parametrize("group, name, change, needle", [
    ("hardware", "acme_x1", {"memory_gb": "lots"}, "memory_gb='lots': must be a finite number"),
    ("hardware", "acme_x1", {"memroy_gb": 80}, "memroy_gb: unknown key; allowed: name, "),
    ("hardware", "acme_x1", {"kind": "fpga"}, "kind='fpga': allowed: gpu, accelerator, tpu, cpu"),
    ("hardware", "acme_x1", {"generation": "x9"}, "generation='x9': allowed: ampere, "),
    ("hardware", "acme_x1", {"node": {"devices": 0}}, "node.devices=0: must be > 0"),
    ("hardware", "acme_x1", {"name": "acme"}, "name='acme': must equal the file name"),
    ("pricing", "acme_quote", {"usd_per_hour": {"acme_x1": {**ACME_PRICE["usd_per_hour"]["acme_x1"],
                                                            "value": -1}}},
     "usd_per_hour.acme_x1.value=-1: must be > 0"),
    ("pricing", "acme_quote", {"usd_per_hour": {"acme_x1": {**ACME_PRICE["usd_per_hour"]["acme_x1"],
                                                            "kind": "cheap"}}},
     "usd_per_hour.acme_x1.kind='cheap': allowed: on_demand, "),
    ("pricing", "acme_quote", {"provider": None}, "provider=None: must be text"),
])
def test_a_wrong_user_entry_is_one_error_naming_file_field_and_allowed(user_root, group, name,
                                                                        change, needle):
    data = (acme_hardware() if group == "hardware" else dict(ACME_PRICE)) | change
    path = write(user_root, group, name, data)
    with pytest.raises(ConfigError) as err:
        catalog.entry(group, name)
    assert str(err.value).startswith(f"{path}: ") and needle in str(err.value)


def test_malformed_yaml_names_the_file_and_line(user_root):
    path = write(user_root, "hardware", "acme_x1", "name: acme_x1\nnode: [unclosed\n")
    with pytest.raises(ConfigError, match=r"acme_x1.yaml: line 3, column 1: .*must be valid YAML"):
        catalog.entry("hardware", "acme_x1")
    assert str(path) in str(pytest.raises(ConfigError, catalog.entry, "hardware", "acme_x1").value)


def test_a_user_root_that_is_a_file_is_one_error(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv(catalog.USER_ROOT_ENV, str(tmp_path / "afile"))
    with pytest.raises(ConfigError, match="HERMES_OPT_CONFIG_DIR=.*afile': not a directory"):
        catalog.options("hardware")


def test_the_deployment_record_names_user_sources_and_the_user_price_set(user_root):
    cand = candidate.compose(["hardware=acme_x1", "pricing=acme_quote", "model=llama3_1_8b"])
    record = cand.deployment
    assert record["catalog_sources"] == {
        "hardware/acme_x1": str(user_root / "hardware" / "acme_x1.yaml"),
        "pricing/acme_quote": str(user_root / "pricing" / "acme_quote.yaml")}
    assert record["price_set"] == {"name": "acme_quote", "provider": "ACME Cloud",
                                   "date": "2026-12-01",
                                   "source": str(user_root / "pricing" / "acme_quote.yaml")}
    assert record["pools"][0]["price"]["provider"] == "ACME Cloud"
    assert cand.cost.usd_per_hour == 2.5


def test_a_shipped_deployment_record_has_no_sources():
    record = candidate.compose(["model=llama3_1_8b"]).deployment
    assert "catalog_sources" not in record and "price_set" not in record


def test_a_wrong_user_entry_picked_through_hydra_fails_before_simulating(user_root):
    data = yaml.safe_load((user_root / "hardware" / "acme_x1.yaml").read_text())
    write(user_root, "hardware", "acme_x1", data | {"mem_bw_gb_per_s": "fast"})
    with pytest.raises(ConfigError, match="acme_x1.yaml: mem_bw_gb_per_s='fast'"):
        candidate.compose(["hardware=acme_x1", "pricing=acme_quote", "model=llama3_1_8b"])


def test_a_user_workload_and_model_are_named_by_the_options_chosen(user_root):
    write(user_root, "workload", "mine",
          (catalog.CONF_DIR / "workload" / "chat.yaml").read_text())
    model = yaml.safe_load((catalog.CONF_DIR / "model" / "llama3_1_8b.yaml").read_text())
    write(user_root, "model", "my8b", model | {"name": "my8b"})
    record = candidate.compose(["workload=mine", "model=my8b"]).deployment
    assert record["catalog_sources"] == {"model/my8b": str(user_root / "model" / "my8b.yaml"),
                                         "workload/mine": str(user_root / "workload" / "mine.yaml")}
