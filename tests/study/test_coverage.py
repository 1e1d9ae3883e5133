"""Coverage top-up (hermes_opt/study/coverage.py): which keys are watched, how a conditional
choice is pinned, what each choice still lacks and the batch that fills it, exactly."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from hermes_opt.study import coverage
from hermes_opt.study.coverage import CoverageSpec, parse_coverage
from hermes_opt.study.definition import from_dict, load
from hermes_opt.study.space import parse_space
from sim.errors import ConfigError

ARCH, COL_HW, COL_TP = "deployment.architecture", "deployment.colocated.hardware", \
    "deployment.colocated.tp"
PRE_HW, PRE_DEV = "deployment.prefill.hardware", "deployment.prefill.devices"
SPACE = parse_space({
    ARCH: {"choices": ["colocated", "disaggregated"]},
    COL_HW: {"choices": ["h200", "b200"], "when": {ARCH: "colocated"}},
    COL_TP: {"choices": [1, 2], "when": {ARCH: "colocated"}},
    PRE_HW: {"choices": ["h200", "b200"], "when": {ARCH: "disaggregated"}},
    PRE_DEV: {"type": "int", "low": 1, "high": 7, "when": {ARCH: "disaggregated"}},
})
DIST = {ARCH: CategoricalDistribution(["colocated", "disaggregated"]),
        COL_HW: CategoricalDistribution(["h200", "b200"]), COL_TP: CategoricalDistribution([1, 2]),
        PRE_HW: CategoricalDistribution(["h200", "b200"]), PRE_DEV: IntDistribution(1, 7)}


def told(number, params, status="ok", label=None):
    trial = create_trial(params=params, distributions={k: DIST[k] for k in params}, value=1.0,
                         user_attrs={"result": {"status": status},
                                     **({"coverage": label} if label else {})})
    trial.number = number
    return trial


def col(hw, tp):
    return {ARCH: "colocated", COL_HW: hw, COL_TP: tp}


def dis(hw, devices):
    return {ARCH: "disaggregated", PRE_HW: hw, PRE_DEV: devices}


TRIALS = [told(0, col("h200", 1)), told(1, col("h200", 2), status="infeasible"),
          told(2, dis("h200", 3)), told(3, dis("h200", 5)), told(4, dis("h200", 5))]


def test_hardware_engine_and_architecture_keys_are_watched_in_space_order():
    assert [p.name for p in coverage.keys(SPACE)] == [ARCH, COL_HW, PRE_HW]
    dse = load("dse_chat").space
    assert [p.name for p in coverage.keys(dse)] == [
        ARCH, COL_HW, PRE_HW, "deployment.decode.hardware"]
    assert [p.name for p in coverage.keys(load("default").space)] == ["hardware"]
    pools = parse_space({"cluster.pools.gpu.hardware": {"choices": ["h200"]},
                         "cluster.pools.gpu.engine": {"choices": ["vllm", "sglang"]},
                         "cluster.tp": {"choices": [1, 2]}})
    assert [p.name for p in coverage.keys(pools)] == ["cluster.pools.gpu.hardware",
                                                       "cluster.pools.gpu.engine"]


def test_a_conditional_choice_is_pinned_with_the_parents_its_condition_needs():
    assert coverage.pin(SPACE, PRE_HW, "b200") == {ARCH: "disaggregated", PRE_HW: "b200"}
    assert coverage.pin(SPACE, ARCH, "colocated") == {ARCH: "colocated"}
    chained = parse_space({"a.x": {"choices": ["p", "q"]},
                           "a.y": {"choices": [1, 2, 3], "when": {"a.x": ["q"]}},
                           "b.hardware": {"choices": ["h200"], "when": {"a.y": [2, 3]}}})
    assert coverage.pin(chained, "b.hardware", "h200") == {"a.x": "q", "a.y": 2,
                                                           "b.hardware": "h200"}
    never = parse_space({"a.x": {"choices": ["p"]},
                         "b.hardware": {"choices": ["h200"], "when": {"a.x": ["z"]}}})
    assert coverage.pin(never, "b.hardware", "h200") is None


def test_the_best_configuration_moves_to_another_choice_where_the_branch_allows():
    best = dis("h200", 3)
    fixed = {ARCH: "disaggregated", PRE_HW: "b200"}
    assert coverage.transfer(SPACE, best, fixed) == dis("b200", 3)
    # the best is disaggregated: it has no colocated TP to move to a colocated choice
    assert coverage.transfer(SPACE, best, {ARCH: "colocated", COL_HW: "b200"}) is None


def test_what_each_choice_lacks_and_the_batch_that_fills_it():
    """min_per_choice 3 (at most 6 coverage trials per choice). Sub-spaces of at most 6 points
    (colocated: 2 kinds x 2 TP; one kind: 2 TP) give their untried points; larger ones
    (disaggregated: 2 kinds x 7 prefill device counts) the best trial moved to the choice first,
    then the pin for the sampler. Trials 3 and 4 are one candidate: it counts once."""
    best = dict(TRIALS[2].params)
    found = {n.label: (n.trials, n.simulated) for n in
             coverage.needs(SPACE, CoverageSpec(), TRIALS, best)}
    assert found == {
        f"{ARCH}=colocated": (((col("b200", 1), True), (col("b200", 2), True)), 1),
        f"{ARCH}=disaggregated": ((({ARCH: "disaggregated"}, False),), 2),
        f"{COL_HW}=b200": (((col("b200", 1), True), (col("b200", 2), True)), 0),
        f"{PRE_HW}=h200": ((({ARCH: "disaggregated", PRE_HW: "h200"}, False),), 2),
        f"{PRE_HW}=b200": (((dis("b200", 3), True),
                            ({ARCH: "disaggregated", PRE_HW: "b200"}, False),
                            ({ARCH: "disaggregated", PRE_HW: "b200"}, False)), 0),
    }  # colocated h200: both of its points were tried (one did not fit): nothing left
    batch, served = coverage.plan(SPACE, CoverageSpec(), TRIALS, 8, best)
    pin_b200 = {ARCH: "disaggregated", PRE_HW: "b200"}
    assert batch == [  # choices take turns; a whole point another choice already has is skipped
        (col("b200", 1), f"{ARCH}=colocated"),
        ({ARCH: "disaggregated"}, f"{ARCH}=disaggregated"),
        ({ARCH: "disaggregated", PRE_HW: "h200"}, f"{PRE_HW}=h200"),
        (dis("b200", 3), f"{PRE_HW}=b200"),
        (col("b200", 2), f"{ARCH}=colocated"),
        (pin_b200, f"{PRE_HW}=b200"), (pin_b200, f"{PRE_HW}=b200")]
    assert [n.label for n in served] == [f"{ARCH}=colocated", f"{ARCH}=disaggregated",
                                         f"{PRE_HW}=h200", f"{PRE_HW}=b200"]
    assert coverage.plan(SPACE, CoverageSpec(), TRIALS, 3, best)[0] == batch[:3]


def test_attempts_are_bounded_and_an_unfinished_trial_waits_for_its_result():
    # six coverage trials for prefill b200 so far, none simulated: no more for it
    tried = [told(10 + i, dis("b200", 1 + i), status="infeasible",
                  label=f"{PRE_HW}=b200") for i in range(6)]
    labels = {n.label for n in coverage.needs(SPACE, CoverageSpec(), TRIALS + tried)}
    assert f"{PRE_HW}=b200" not in labels and f"{PRE_HW}=h200" in labels
    running = create_trial(state=TrialState.RUNNING, params={}, distributions={})
    assert coverage.plan(SPACE, CoverageSpec(), [*TRIALS, running], 8) == ([], [])
    assert coverage.needs(SPACE, CoverageSpec(min_per_choice=0), TRIALS) == []


def test_the_study_key_one_line_errors():
    assert parse_coverage(None) == CoverageSpec(min_per_choice=3)
    assert parse_coverage({"min_per_choice": 0}).min_per_choice == 0
    for raw, message in (
            ({"min_per_choice": -1}, "coverage.min_per_choice=-1: must be an integer in 0..100"),
            ({"min_per_choice": 2.5}, "coverage.min_per_choice=2.5: must be an integer in 0..100"),
            ({"min": 3}, "coverage=['min']: allowed: min_per_choice"),
            (3, "coverage=3: must be {min_per_choice: <int>}")):
        with pytest.raises(ConfigError) as err:
            from_dict({"name": "x", "space": {"hardware": {"choices": ["h200"]}},
                       "coverage": raw})
        assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_coverage_is_a_run_setting_not_part_of_the_definition():
    assert load("default").config_hash == load("default", ["coverage.min_per_choice=0"]).config_hash
    assert load("default", ["coverage.min_per_choice=5"]).coverage.min_per_choice == 5


def test_a_pinned_trial_suggests_its_fixed_values_and_samples_the_rest():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = coverage.ask_pinned(study, {ARCH: "disaggregated", PRE_HW: "b200"}, "x=y")
    params = SPACE.suggest(trial)
    assert params[ARCH] == "disaggregated" and params[PRE_HW] == "b200"
    assert set(params) == {ARCH, PRE_HW, PRE_DEV}
    stored = study.get_trials()[0]
    assert stored.state is TrialState.RUNNING and stored.user_attrs == {"coverage": "x=y"}
