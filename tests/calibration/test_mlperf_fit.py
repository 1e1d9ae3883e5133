"""`hermes-sim calibrate --mlperf`: fit on one submitter's MLPerf rows, hold out the others."""

from __future__ import annotations

import pandas as pd
import pytest

from hermes_opt.calibration import calibrate, mlperf_fit
from hermes_opt.compose import catalog
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError

NVIDIA = catalog.DATA_DIR / "reference" / "mlperf_v4.1_nvidia.csv"


@pytest.fixture()
def table(tmp_path):
    """NVIDIA's GH200-144GB Mixtral rows, plus the same rows as if a partner had submitted them
    (with 10 % lower throughput), so the held-out set is known."""
    frame = pd.read_csv(NVIDIA)
    rows = frame[frame.gpu.str.contains("GH200") & frame.model.str.contains("mixtral")]
    partner = rows.copy()
    partner["url"] = partner.url.str.replace("/NVIDIA/", "/Partner/")
    partner["notes"] = partner.notes.str.replace("submitter=NVIDIA", "submitter=Partner")
    partner.loc[partner.metric.str.contains("tokens_per_s"), "value"] *= 0.9
    path = tmp_path / "mlperf.csv"
    pd.concat([rows, partner]).to_csv(path, index=False)
    return path


def request(path, **kw):
    return calibrate.Request(name="t", hardware="gh200_144g", engine="test", precision="fp8",
                             model_family="moe", mlperf=str(path), **kw)


def test_fit_uses_only_the_fit_submitters_and_does_not_get_worse(table, monkeypatch):
    monkeypatch.setattr(mlperf_fit, "GRID", {"compute_efficiency": (0.3, 0.6),
                                             "memory_efficiency": (0.5, 0.9)})
    profile = calibrate.run(request(table))
    prov = profile.provenance
    assert prov["rows"] == {"fit": 2, "held_out": 2}
    assert all(key.startswith("NVIDIA/") for key in prov["fit_submissions"])
    assert prov["held_out_submitters"] == ["Partner"]
    train = [o for o in mlperf_fit.observations(str(table), "gh200_144g", "moe")
             if o.sub.submitter == "NVIDIA"]
    assert mlperf_fit._loss(profile.params, train) <= mlperf_fit._loss(RooflineParams(), train)
    assert profile.validation_source.startswith("MLPerf")


def test_too_few_fit_rows_is_one_clear_error(table):
    with pytest.raises(ConfigError, match="only 0 fit row"):
        calibrate.run(request(table, fit_submitters=("Nobody",)))
