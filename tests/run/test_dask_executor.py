"""The pluggable evaluation pool: a study on a Dask LocalCluster (2 worker processes) gives
exactly the trials of the same study on the loky pool (same parameters, same values, the same
trials table but for the timing column ``sim_s``)."""

from __future__ import annotations

import pytest

from hermes_opt.report.trials import trial_rows
from hermes_opt.run import runner
from hermes_opt.study.definition import from_dict
from sim.errors import ConfigError

pytest.importorskip("distributed")

from test_screening import small_raw  # noqa: E402  (tests/run is on sys.path under pytest)


def table(study, spec) -> str:
    frame = trial_rows(study, spec)
    return frame.drop(columns=["sim_s"]).to_csv(index=False)


def test_dask_local_cluster_gives_the_loky_trials(tmp_path):
    """6 points of the screened study (tests/run/test_screening.py checks 1 worker's)."""
    tables, params, values = {}, {}, {}
    for label, changes in {"loky": {"n_jobs": 2},
                           "dask": {"n_jobs": 2, "executor": "dask"}}.items():
        raw = small_raw(tmp_path, label, n_trials=6, batch_size=3, **changes)
        raw["space"]["deployment.colocated.hardware"]["choices"] = ["h200", "gaudi3", "b200"]
        spec = from_dict(raw)
        study, stats = runner.run_study(spec, progress_stream=None)
        assert stats.workers == spec.n_jobs
        tables[label] = table(study, spec)
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        params[label] = [t.params for t in trials]
        values[label] = [t.values for t in trials]
    assert params["dask"] == params["loky"]
    assert values["dask"] == values["loky"]
    assert tables["dask"] == tables["loky"]
    assert "analytic" in tables["dask"] and "simulator" in tables["dask"]


def test_unreachable_scheduler_is_one_clear_error(monkeypatch):
    from hermes_opt.run import dask_pool
    monkeypatch.setattr(dask_pool, "CONNECT_TIMEOUT_S", 1)
    with pytest.raises(ConfigError) as err:
        with dask_pool.DaskPool(2, "tcp://127.0.0.1:9"):
            pass
    message = str(err.value)
    assert message.startswith("executor.address='tcp://127.0.0.1:9': cannot connect to a Dask "
                              "scheduler there within 1 s") and "\\n" not in message


@pytest.mark.parametrize("executor, needle", [
    ("spark", "executor='spark': allowed: loky, dask"),
    ({"kind": "ray"}, "executor.kind='ray': allowed: loky, dask"),
    ({"kind": "dask", "address": "localhost"}, "executor.address='localhost': a Dask scheduler "
                                                "address like tcp://host:8786"),
    ({"kind": "loky", "address": "tcp://h:8786"}, "executor.address='tcp://h:8786'"),
])
def test_bad_executor_settings(tmp_path, executor, needle):
    with pytest.raises(ConfigError) as err:
        from_dict(small_raw(tmp_path, "bad", executor=executor))
    assert str(err.value).startswith(needle), str(err.value)
