"""Headroom, redundancy and stability checks of a study's trials (hermes_opt/run/checks.py), on
the real simulator: one H100 replica of Llama-3.1-8B serves 25 requests/s of chat within the
interactive SLOs, but not 50 (it falls behind), and with one replica nothing spares it."""

from __future__ import annotations

import pytest

from hermes_opt.run import checks
from hermes_opt.run.runner import run_study
from hermes_opt.run.worker import Simulate
from hermes_opt.study.definition import from_dict
from hermes_opt.study.objective import KEEPS_UP, named_constraints
from sim import variants
from sim.errors import ConfigError

BASE = ["model=llama3_1_8b", "hardware=h100_sxm", "workload=chat",
        "workload.num_requests=2000", "workload.arrival.rate_per_s=25", "slo=interactive"]


def spec(tmp_path, **changes):
    raw = {"name": "checks", "base": BASE,
           "space": {"cluster.num_replicas": {"choices": [1, 2, 3]}},
           "constraints": ["ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50"],
           "sampler": "grid", "n_trials": 3, "batch_size": 3, "n_jobs": 1, "replicates": 1,
           "storage": f"sqlite:///{tmp_path / 'study.db'}"}
    raw.update(changes)
    return from_dict(raw)


def outcomes(study):
    rows = {}
    for t in study.get_trials(deepcopy=False):
        named = named_constraints(t)
        rows[t.params["cluster.num_replicas"]] = (all(v <= 0 for v in named.values()), named,
                                                  t.user_attrs["result"])
    return rows


def test_without_checks_one_replica_is_feasible(tmp_path):
    study, _ = run_study(spec(tmp_path), progress_stream=None)
    rows = outcomes(study)
    assert [rows[n][0] for n in (1, 2, 3)] == [True, True, True]
    assert set(rows[1][1]) == {"runnable", "ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50", KEEPS_UP}
    assert rows[1][2]["stability"]["status"] == "keeps_up"
    assert "checks" not in rows[1][2]


def test_headroom_fails_the_replica_that_falls_behind_at_twice_the_demand(tmp_path):
    study, _ = run_study(spec(tmp_path, headroom=2.0), progress_stream=None)
    rows = outcomes(study)
    assert [rows[n][0] for n in (1, 2, 3)] == [False, True, True]
    one = rows[1][2]["checks"]["headroom 2x"]
    assert one["checked"] and not one["feasible"]
    assert one["keeps_up"] > 0  # at 50 requests/s it falls behind
    assert rows[1][1]["headroom 2x"] == pytest.approx(one["violation"])
    assert rows[2][2]["checks"]["headroom 2x"]["feasible"]
    from hermes_opt.report.trials import trial_rows
    frame = trial_rows(study, spec(tmp_path, headroom=2.0)).set_index("trial")
    one_trial = next(t.number for t in study.trials if t.params["cluster.num_replicas"] == 1)
    assert frame.loc[one_trial, "outcome"] == "fails headroom or n+1"  # every SLO met at 25/s
    assert frame.loc[one_trial, "reason"] == "fails headroom 2x"
    from hermes_opt.report.why_none import why_none
    assert why_none(frame.reset_index()[frame.reset_index().trial == one_trial],
                    spec(tmp_path, headroom=2.0)) == (
        "1 simulated, SLOs met at the demand, but fails headroom 2x")


def test_redundancy_needs_a_spare_replica(tmp_path):
    study, _ = run_study(spec(tmp_path, redundancy="n+1"), progress_stream=None)
    rows = outcomes(study)
    assert [rows[n][0] for n in (1, 2, 3)] == [False, True, True]
    assert rows[1][1]["redundancy n+1"] == checks.NOT_CHECKED
    assert "single replica" in rows[1][2]["checks"]["redundancy n+1"]["reason"]
    two = rows[2][2]["checks"]["redundancy n+1"]
    assert two["checked"] and two["feasible"]


def test_a_trial_failing_at_the_demand_is_not_stress_simulated(tmp_path):
    study, _ = run_study(spec(tmp_path, headroom=1.5, base=[
        *BASE[:-2], "workload.arrival.rate_per_s=60", "slo=interactive"]), progress_stream=None)
    one = outcomes(study)[1]
    assert not one[0]
    assert one[2]["checks"]["headroom 1.5x"] == {"checked": False,
                                                 "reason": "fails at the demand already"}


def test_study_settings_are_checked():
    with pytest.raises(ConfigError, match=r"headroom=0\.5: must be a number in 1\.\.10"):
        from_dict({"name": "x", "space": {"cluster.tp": {"choices": [1]}}, "headroom": 0.5})
    with pytest.raises(ConfigError, match=r"headroom=nan"):
        from_dict({"name": "x", "space": {"cluster.tp": {"choices": [1]}},
                   "headroom": float("nan")})
    with pytest.raises(ConfigError, match="redundancy='n\\+2': allowed: none, n\\+1"):
        from_dict({"name": "x", "space": {"cluster.tp": {"choices": [1]}}, "redundancy": "n+2"})
    with pytest.raises(ConfigError, match="need the built-in simulator"):
        from_dict({"name": "x", "space": {"cluster.tp": {"choices": [1]}}, "headroom": 1.2,
                   "evaluator": "fakes:fake_evaluator"})


def test_a_short_run_that_cannot_tell_is_extended():
    """200 requests at 60/s on one replica: the run ends before the batch fills; the worker
    runs the requests the verdict asks for and then sees the replica fall behind."""
    overrides = [*BASE[:3], "workload.num_requests=200", "workload.arrival.rate_per_s=60",
                 "slo=interactive"]
    sim = Simulate()
    summary = sim.run(sim.prepare(overrides, None), 0)
    stability = summary["steady_state"]["stability"]
    assert stability["extended_from_requests"] == 200
    assert stability["extended_to_requests"] >= 1000
    assert stability["status"] == "falls_behind"


def test_variants_scale_the_demand_and_take_a_replica_down():
    from hermes_opt.compose.candidate import compose
    config = compose([*BASE, "cluster.num_replicas=2"]).config
    assert variants.with_load(config, 1.5).workload.arrival.rate_per_s == 37.5
    down = variants.one_replica_down(config)
    assert [p.num_replicas for p in down.pools] == [1]
    assert "single replica" in variants.one_replica_down(down)


def test_the_assessment_measures_headroom_and_sizes_for_multiples_of_the_demand(tmp_path):
    from hermes_opt.run.assess import ASSESSMENT, Probe, run_probe
    s = spec(tmp_path)
    study, stats = run_study(s, progress_stream=None)
    got = study.user_attrs[ASSESSMENT]
    assert [c["trial"] for c in got["candidates"]][0] == next(
        t.number for t in study.trials if t.params["cluster.num_replicas"] == 1)
    one = got["candidates"][0]
    low, high = one["capacity_multiple"]["low"], one["capacity_multiple"]["high"]
    assert 1.2 < low < high <= low * 1.05 + 1e-9
    overrides = (*BASE, "cluster.num_replicas=1")
    assert run_probe(Probe("x", overrides, low), 0, s.constraints)["holds"]
    assert not run_probe(Probe("x", overrides, high), 0, s.constraints)["holds"]
    rows = {r["multiple"]: r for r in got["load_table"]}
    assert rows[1.0]["layout"] == "llm 1 x h100_sxm (1 replica of tp 1)"
    assert all(r["verified"] for r in rows.values())
    five = rows[5.0]
    replicas = int(five["layout"].split(" x ")[0].split()[-1])
    assert replicas == -(-5 // low) or replicas == -(-5 // low) + 1  # ceil(5 / capacity), +1 bump
    fewer = run_probe(Probe("x", overrides, 5.0, (("llm", replicas - 1),)), 0, s.constraints)
    assert not fewer["holds"]
    assert stats.assess_s > 0
    # run again: nothing new, the stored assessment is kept
    study, again = run_study(s, progress_stream=None)
    assert study.user_attrs[ASSESSMENT] == got


def test_headroom_needs_a_demand_to_scale(tmp_path):
    from hermes_opt.run.preflight import check_base
    s = spec(tmp_path, headroom=1.2, base=[*BASE, "workload.arrival.kind=max_load"])
    with pytest.raises(ConfigError, match="headroom=1.2: the base workload has arrival kind "
                                          "max_load"):
        check_base(s)
