"""Coverage trials in a running study (hermes_opt/run/driver.py ask_coverage): after the
sampler's n_trials, the hardware kinds simulated fewer than 3 times get marked trials, bounded,
the same with 1 or 2 workers and after an interruption in the middle of them."""

from __future__ import annotations

import io

import optuna
from optuna.trial import TrialState

from hermes_opt.run import runner
from hermes_opt.study import coverage

# the fake study (tests/conftest.py, seed 3, 16 trials): TPE left h100_sxm with 1 simulated
# candidate and l40s with none (an L40S needs TP 4 or 8 for a 70B model)
LABELS = ["hardware=h100_sxm", "hardware=l40s"] * 5 + ["hardware=l40s", "hardware=h100_sxm"]


def simulated(study, hardware):
    return {tuple(sorted(t.params.items())) for t in study.get_trials()
            if t.params.get("hardware") == hardware and t.user_attrs["result"]["status"] == "ok"}


def test_rarely_simulated_kinds_get_marked_bounded_coverage_trials(fake_spec):
    out = io.StringIO()
    study, stats = runner.run_study(fake_spec(n_trials=16), progress_stream=out)
    trials = study.get_trials()
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert len(coverage.main_trials(trials)) == 16 and stats.trials_told == 28
    assert [t.user_attrs.get("coverage") for t in trials[16:]] == LABELS
    assert all("coverage" not in t.user_attrs for t in trials[:16])
    assert all(t.params["hardware"] == t.user_attrs["coverage"].split("=")[1]
               for t in trials[16:])
    # h100_sxm reached 3 simulated candidates; l40s used its 6 attempts (2 x min_per_choice)
    assert len(simulated(study, "h100_sxm")) == 3 and LABELS.count("hardware=h100_sxm") == 6
    assert len(simulated(study, "l40s")) == 1 and LABELS.count("hardware=l40s") == 6
    assert all(len(simulated(study, hw)) >= 3 for hw in ("a100_80g", "h200"))
    # the first coverage trial of a kind is the best feasible configuration on that kind
    best = max((t for t in trials[:16] if t.user_attrs["result"]["status"] == "ok"
                and all(v <= 0 for v in t.constraints.values())), key=lambda t: t.values[0])
    assert {**best.params, "hardware": "h100_sxm"} == trials[16].params
    lines = out.getvalue().splitlines()
    assert ("[fake] coverage: 4 more trials for choices with fewer than 3 simulated candidates: "
            "hardware=h100_sxm (1 simulated), hardware=l40s (0 simulated)") in lines
    # the last progress line (the assessment's note and the finished line follow it)
    bars = [line for line in lines if "] [#" in line or "] [." in line]
    assert "[fake] [####################] 16/16 trials + 12 coverage (" in bars[-1]
    # running it again adds nothing: every kind has its candidates or used its attempts
    again, more = runner.run_study(fake_spec(n_trials=16), progress_stream=None)
    assert more.trials_told == 0 and len(again.get_trials()) == 28


def test_one_and_two_workers_give_the_same_coverage_trials(fake_spec):
    one, _ = runner.run_study(fake_spec(n_trials=16, n_jobs=1), progress_stream=None)
    two, _ = runner.run_study(fake_spec(n_trials=16, n_jobs=2, name="fake2"),
                              progress_stream=None)
    rows = [[(t.number, t.params, t.values, t.user_attrs.get("coverage"))
             for t in s.get_trials()] for s in (one, two)]
    assert rows[0] == rows[1] and len(rows[0]) == 28


def test_interrupted_in_the_coverage_phase_resumes_exactly(fake_spec, tmp_path):
    """Ctrl-C on the 44th evaluation: trials 22 and 23 (coverage) are running. The same command
    again re-runs them under their own numbers and goes on as an uninterrupted run would."""
    straight, _ = runner.run_study(fake_spec(n_trials=16, name="straight"), progress_stream=None)
    base = ["model=llama3_1_70b", f"fake.log={tmp_path / 'count.log'}", "fake.stop_after=44"]
    spec = fake_spec(n_trials=16, base=base, evaluator="fakes:interrupting_evaluator",
                     storage=f"sqlite:///{tmp_path / 'resumed.db'}")
    _, first = runner.run_study(spec, progress_stream=None)
    left = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    assert first.interrupted and first.trials_told == 22
    assert [(t.number, t.user_attrs.get("coverage")) for t in left
            if t.state is TrialState.RUNNING] == [(22, "hardware=h100_sxm"), (23, "hardware=l40s")]
    resumed, second = runner.run_study(spec, progress_stream=None)
    assert not second.interrupted and first.trials_told + second.trials_told == 28

    def rows(study):
        return [(t.number, t.state, t.params, t.values, t.user_attrs.get("coverage"))
                for t in study.get_trials()]
    assert rows(resumed) == rows(straight)


def test_no_coverage_when_turned_off(fake_spec):
    # (the grid never adds any: tests/study/test_grid.py counts every trial of a space with a
    # hardware key exactly)
    off, _ = runner.run_study(fake_spec(n_trials=16, coverage={"min_per_choice": 0}),
                              progress_stream=None)
    assert len(off.get_trials()) == 16
    assert not any("coverage" in t.user_attrs for t in off.get_trials())
