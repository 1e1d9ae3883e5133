"""``sampler: grid``: counting a conditional space, visiting every point exactly once (also across
an interruption and with 1 or 2 workers), stopping when the space is exhausted, one-line errors
for keys that cannot be enumerated."""

from __future__ import annotations

import io
import itertools
import warnings

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from hermes_opt.run import runner
from hermes_opt.run.progress import space_line
from hermes_opt.study.definition import from_dict
from hermes_opt.study.sampling import GRID_POINT, ExhaustiveSampler
from hermes_opt.study.space import parse_space
from sim.errors import ConfigError

# 2 x 3 x (continuous: 1 | chunked: 2 chunk sizes) = 18 points; the fake evaluator ignores the
# scheduler, and hardware x tp covers feasible and infeasible candidates
GRID_SPACE = {
    "hardware": {"choices": ["h100_sxm", "l40s"]},
    "cluster.tp": {"choices": [1, 2, 4]},
    "scheduler": {"choices": ["continuous", "chunked"]},
    "scheduler.chunk_size_tokens": {"type": "int", "low": 512, "high": 1024, "step": 512,
                                    "when": {"scheduler": "chunked"}},
}
GRID_POINTS = 18


def brute_force(space) -> set[tuple]:
    """Every point by brute force: all combinations of every key's values, each reduced to the
    keys whose condition holds (in order), deduplicated."""
    grids = [p.grid() for p in space.parameters]
    points = set()
    for values in itertools.product(*grids):
        chosen = {}
        for param, value in zip(space.parameters, values):
            if param.active(chosen):
                chosen[param.name] = value
        points.add(tuple(chosen.items()))
    return points


def random_space(rng: np.random.Generator) -> dict:
    """A random conditional space: categorical, int (stepped, log) and stepped float keys, each
    possibly conditional on one or two earlier keys (also on values they never take)."""
    node, values = {}, {}
    for i in range(int(rng.integers(2, 6))):
        name = f"k.p{i}"
        kind = rng.choice(["categorical", "int", "float", "log"])
        if kind == "categorical":
            choices = [str(c) for c in rng.choice(list("abcde"), int(rng.integers(1, 4)),
                                                  replace=False)]
            spec, vals = {"choices": choices}, choices
        elif kind == "int":
            low, step = int(rng.integers(0, 4)), int(rng.integers(1, 3))
            spec = {"type": "int", "low": low, "high": low + int(rng.integers(0, 5)), "step": step}
            vals = list(range(low, spec["high"] + 1, step))
        elif kind == "log":
            spec = {"type": "int", "low": 1, "high": int(rng.integers(1, 6)), "log": True}
            vals = list(range(1, spec["high"] + 1))
        else:
            spec = {"type": "float", "low": 0.1, "high": 0.1 + 0.1 * int(rng.integers(0, 4)),
                    "step": 0.1}
            vals = [round(0.1 * (k + 1), 10) for k in range(4)]
        if values and rng.random() < 0.7:
            when = {}
            for parent in rng.choice(list(values), int(rng.integers(1, min(2, len(values)) + 1)),
                                     replace=False):
                pool = values[parent] + ["never"]
                picked = rng.choice(len(pool), int(rng.integers(1, len(pool) + 1)), replace=False)
                when[str(parent)] = [pool[int(j)] for j in picked]
            spec["when"] = when
        node[name], values[name] = spec, vals
    return node


@pytest.mark.parametrize("seed", range(40))
def test_point_count_of_a_conditional_space_equals_brute_force(seed):
    space = parse_space(random_space(np.random.default_rng(seed)))
    expected = brute_force(space)
    listed = space.enumerate()
    assert space.num_points() == len(expected) == len(listed)
    # numbering without listing: point(i) is the i-th enumerated point, each point once
    assert [space.point(i) for i in range(space.num_points())] == listed
    assert {tuple(p.items()) for p in listed} == expected


def test_point_count_of_the_grid_space_and_of_a_wide_conditional_int():
    assert parse_space(GRID_SPACE).num_points() == GRID_POINTS
    space = parse_space({"a.n": {"type": "int", "low": 1, "high": 10**9},
                         "a.flag": {"choices": [True, False], "when": {"a.n": [5, 7]}},
                         "a.x": {"type": "float", "low": 0, "high": 1}})
    assert space.num_points() == 10**9 + 2  # counted without listing; a.x counts once
    assert space.continuous == ["a.x"]
    assert parse_space({}).num_points() == 1  # the base scenario alone


def test_float_steps_are_exact_decimals():
    space = parse_space({"a.x": {"type": "float", "low": 0.1, "high": 0.75, "step": 0.1}})
    assert space.parameters[0].grid() == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]


def grid_spec(fake_spec, **changes):
    return fake_spec(**{"space": GRID_SPACE, "sampler": "grid", "n_trials": 100,
                        "batch_size": 4, "replicates": 1, **changes})


def points_of(study) -> list[frozenset]:
    return [frozenset(t.params.items()) for t in study.get_trials(deepcopy=False)]


def all_points(space) -> set[frozenset]:
    return {frozenset(p) for p in brute_force(space)}


def test_grid_study_visits_every_point_once_and_stops(fake_spec, tmp_path):
    log = tmp_path / "evals.log"
    out = io.StringIO()
    spec = grid_spec(fake_spec, evaluator="fakes:logging_evaluator",
                     base=["model=llama3_1_70b", f"fake.log={log}"])
    study, stats = runner.run_study(spec, progress_stream=out)
    trials = study.get_trials()
    assert len(trials) == stats.trials_told == GRID_POINTS
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert set(points_of(study)) == all_points(spec.space)  # every point, none twice
    evaluated = log.read_text().splitlines()  # one line per (point, replicate) evaluated
    assert len(evaluated) == len(set(evaluated)) == GRID_POINTS * spec.replicates
    lines = out.getvalue().splitlines()
    assert lines[0] == ("[fake] space: 18 points (grid enumerates all of them; n_trials=100 is "
                        "not used)")
    assert ("[fake] space exhausted: all 18 points evaluated (sampler grid enumerates the whole "
            "space; n_trials=100 is not used)") in lines
    assert not any("Traceback" in line for line in lines)
    # running it again asks nothing more: the space is exhausted
    again, more = runner.run_study(spec, progress_stream=None)
    assert more.trials_told == 0 and len(again.get_trials()) == GRID_POINTS


def test_fewer_trials_than_points_still_enumerates_every_point(fake_spec):
    """The grid is exhaustive whatever n_trials says (issue 23: it used to stop at n_trials)."""
    out = io.StringIO()
    study, stats = runner.run_study(grid_spec(fake_spec, n_trials=7), progress_stream=out)
    assert stats.trials_told == len(study.get_trials()) == GRID_POINTS
    assert set(points_of(study)) == all_points(parse_space(GRID_SPACE))
    assert in_enumeration_order(study, parse_space(GRID_SPACE))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[fake] space: 18 points (grid enumerates all of them; n_trials=7 is not used)"
    assert lines[-2] == ("[fake] space exhausted: all 18 points evaluated (sampler grid "
                         "enumerates the whole space; n_trials=7 is not used)")
    # running it again (any n_trials) evaluates nothing: every point is held
    again, more = runner.run_study(grid_spec(fake_spec, n_trials=40), progress_stream=None)
    assert more.trials_told == 0 and len(again.get_trials()) == GRID_POINTS


def trials_of(study):
    return [(t.number, t.state.name, t.params, t.values, t.constraints)
            for t in study.get_trials(deepcopy=False)]


def in_enumeration_order(study, space) -> bool:
    """Trial k holds point k: what an uninterrupted run of a fresh grid study gives."""
    return all(t.params == space.point(t.number) for t in study.get_trials(deepcopy=False))


def test_one_and_two_workers_give_identical_trials(fake_spec):
    # two batches in flight: the next batch is asked while the previous one still runs
    one, _ = runner.run_study(grid_spec(fake_spec, n_jobs=1, batches_in_flight=2),
                              progress_stream=None)
    two, _ = runner.run_study(grid_spec(fake_spec, n_jobs=2, name="fake2", batches_in_flight=2),
                              progress_stream=None)
    assert trials_of(one) == trials_of(two)
    assert len(set(points_of(one))) == GRID_POINTS and in_enumeration_order(one, parse_space(GRID_SPACE))


@pytest.mark.parametrize("stop_after, in_flight", [(5, 1), (11, 2)])
def test_interrupted_grid_resumes_without_evaluating_a_point_twice(fake_spec, tmp_path,
                                                                   stop_after, in_flight):
    """Ctrl-C mid-batch (with two batches in flight: while the next one is queued), then the
    same command again: every point once, each trial told once, trial k still holds point k."""
    base = ["model=llama3_1_70b", f"fake.log={tmp_path / 'count.log'}",
            f"fake.stop_after={stop_after}"]
    spec = grid_spec(fake_spec, base=base, evaluator="fakes:interrupting_evaluator",
                     batches_in_flight=in_flight)
    _, first = runner.run_study(spec, progress_stream=None)
    assert first.interrupted and 0 < first.trials_told < GRID_POINTS
    left = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    assert any(t.state is TrialState.RUNNING for t in left)
    resumed, second = runner.run_study(spec, progress_stream=None)
    assert not second.interrupted
    assert first.trials_told + second.trials_told == GRID_POINTS  # each trial told once
    trials = resumed.get_trials()
    assert len(trials) == len(set(points_of(resumed))) == GRID_POINTS
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert in_enumeration_order(resumed, spec.space)


def test_trials_a_dead_driver_asked_keep_their_points(fake_spec):
    """A driver killed between asking a batch and suggesting it: the trials hold their points
    (claimed at ask time) but not all their parameters; the resume evaluates those points."""
    spec = grid_spec(fake_spec)
    study = optuna.create_study(study_name=spec.name, storage=spec.storage_url(),
                                directions=spec.directions, sampler=ExhaustiveSampler(spec.space))
    for _ in range(8):  # a driver that evaluated 8 points (failed ones count), asked 3 and died
        trial = study.ask()
        spec.space.suggest(trial)
        study.tell(trial, state=TrialState.FAIL)
    orphans = [study.ask() for _ in range(3)]
    spec.space.suggest(orphans[0])  # one had its parameters stored, the others not
    assert [study._storage.get_trial_system_attrs(t._trial_id)[GRID_POINT]
            for t in orphans] == [8, 9, 10]
    study, stats = runner.run_study(spec, progress_stream=None)
    assert stats.trials_told == 3 + GRID_POINTS - 11
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL] * 8 + [
        TrialState.COMPLETE] * (GRID_POINTS - 8)
    assert len(set(points_of(study))) == GRID_POINTS and in_enumeration_order(study, spec.space)


def test_a_requeued_trial_keeps_its_point_and_asking_past_the_end_is_refused():
    space = parse_space({"a.n": {"type": "int", "low": 1, "high": 3}})
    study = optuna.create_study(sampler=ExhaustiveSampler(space))
    first = study.ask()
    assert space.suggest(first) == {"a.n": 1}
    study.tell(first, state=TrialState.FAIL)
    # what PostgreSQL drivers do with a stale trial: fail it and enqueue a copy
    with warnings.catch_warnings():  # "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback()
    callback(study, study.trials[0])
    copy, fresh = study.ask(), study.ask()
    assert space.suggest(copy) == {"a.n": 1} and space.suggest(fresh) == {"a.n": 2}
    assert space.suggest(study.ask()) == {"a.n": 3}
    with pytest.raises(ConfigError, match="all 3 points of the space are taken"):
        study.ask()


def test_float_without_step_is_a_one_line_error_naming_the_key(fake_spec, tmp_path, capsys):
    space = {**GRID_SPACE, "workload.arrival.rate_per_s": {"type": "float", "low": 1, "high": 9}}
    with pytest.raises(ConfigError) as err:
        fake_spec(space=space, sampler="grid")
    assert str(err.value) == ("space.workload.arrival.rate_per_s: sampler grid needs a finite "
                              "set: give step (or use type categorical)")
    fake_spec(space=space, sampler="tpe")  # other samplers take continuous keys
    from_dict({"name": "ok", "sampler": "grid",
               "space": {**GRID_SPACE, "x.y": {"type": "float", "low": 1, "high": 9, "step": 2}}})
    # through the command line: one line, exit 2
    path = tmp_path / "bad.yaml"
    path.write_text("space:\n  x.rate: {type: float, low: 1, high: 9}\nsampler: grid\n")
    from hermes_opt.cli.opt_command import main
    with pytest.raises(SystemExit) as exit_:
        main([f"study={path}"])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["hermes-opt: error: space.x.rate: sampler grid needs a finite set: give "
                     "step (or use type categorical)"]


def test_space_line_for_every_sampler(fake_spec):
    spec = fake_spec(space=GRID_SPACE, n_trials=12)
    assert space_line(spec, "tpe") == "space: 18 points (tpe samples n_trials=12)"
    assert space_line(spec, "grid") == ("space: 18 points (grid enumerates all of them; "
                                        "n_trials=12 is not used)")
    assert space_line(fake_spec(space=GRID_SPACE, n_trials=18), "grid") == (
        "space: 18 points (grid enumerates all)")
    mixed = fake_spec(space={**GRID_SPACE, "a.x": {"type": "float", "low": 0, "high": 1}},
                      n_trials=1234)
    assert space_line(mixed, "random") == ("space: continuous (18 discrete combinations x 1 "
                                           "continuous key: a.x; random samples n_trials=1,234)")
