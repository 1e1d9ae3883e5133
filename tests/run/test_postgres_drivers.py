"""Several hermes-opt workers on one PostgreSQL study (HERMES_PG_URL; `.ci/setup_postgres.sh`
starts a throwaway server). Skipped, with the reason, when no server is reachable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from fakes import subprocess_env
from optuna.trial import TrialState

from hermes_opt.study.sampling import counted

pytestmark = pytest.mark.postgres
HERMES_OPT = [sys.executable, "-c", "from hermes_opt.cli.opt_command import main; main()"]


@pytest.fixture(scope="module")
def pg_url():
    url = os.environ.get("HERMES_PG_URL")
    if not url:
        pytest.skip("HERMES_PG_URL is not set (run `eval \"$(bash .ci/setup_postgres.sh)\"`)")
    from hermes_opt.study.storage import open_storage
    from sim.errors import ConfigError
    try:
        open_storage(url)
    except ConfigError as err:
        pytest.skip(f"PostgreSQL at HERMES_PG_URL is unreachable: {err}")
    return url


def study_file(tmp_path, name, n_trials, delay_s, log):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""
name: {name}
base: [model=llama3_1_70b, fake.delay_s={delay_s}, fake.log={log}]
space:
  hardware: {{choices: [h100_sxm, a100_80g, l40s, h200]}}
  cluster.tp: {{choices: [2, 4, 8]}}
  cluster.num_replicas: {{type: int, low: 1, high: 8}}
  scheduler.max_num_seqs: {{type: int, low: 16, high: 256, log: true}}
constraints: ["ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50"]
n_trials: {n_trials}
batch_size: 3
replicates: 2
n_jobs: 1
heartbeat_interval_s: 1
grace_period_s: 4
evaluator: "fakes:logging_evaluator"
""")
    return path


def worker(tmp_path, path, url):
    return subprocess.Popen(HERMES_OPT + [f"study={path}", f"storage={url}"], cwd=tmp_path,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def check_complete(url, name, n_trials, log):
    from hermes_opt.study.storage import absolute_url
    study = optuna.load_study(study_name=name, storage=absolute_url(url))
    trials = study.get_trials()
    kept = counted(trials)
    from hermes_opt.study.coverage import main_trials
    # n_trials of the sampler's, plus the coverage trials added after them (hardware choices
    # with fewer than 3 simulated candidates): planned under the storage lock once every trial
    # is told, so two drivers never add the same ones
    assert len(main_trials(kept)) == n_trials
    assert all(t.state is TrialState.COMPLETE for t in kept)
    assert len({t.number for t in kept}) == len(kept)
    lines = log.read_text().splitlines()
    optuna.delete_study(study_name=name, storage=absolute_url(url))  # keep the server tidy
    return study, trials, lines


def test_two_workers_share_one_study_without_loss_or_duplication(tmp_path, pg_url):
    name, n_trials = f"pg_two_{uuid.uuid4().hex[:8]}", 18
    log = tmp_path / "evaluations.log"
    path = study_file(tmp_path, name, n_trials, 0.05, log)
    procs = [worker(tmp_path, path, pg_url) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    study, trials, lines = check_complete(pg_url, name, n_trials, log)
    assert len(trials) == len(counted(trials))  # no retries were needed
    assert len(lines) == len(trials) * 2  # every (trial, replicate) evaluated exactly once
    # both workers did part of the work
    told = [int(e.split("finished: ")[1].split(" ")[0]) for _, e in outs
            if "finished: " in e]
    assert sum(told) == len(trials) and all(n > 0 for n in told), outs


def test_a_dead_workers_trials_are_retried_by_the_other(tmp_path, pg_url):
    name, n_trials = f"pg_dead_{uuid.uuid4().hex[:8]}", 9
    log = tmp_path / "evaluations.log"
    path = study_file(tmp_path, name, n_trials, 0.4, log)
    doomed = worker(tmp_path, path, pg_url)
    from hermes_opt.study.storage import absolute_url
    deadline = time.time() + 60
    while True:  # wait until the doomed worker holds running trials
        assert time.time() < deadline and doomed.poll() is None
        try:
            running = optuna.load_study(study_name=name, storage=absolute_url(pg_url)).get_trials(
                states=(TrialState.RUNNING,))
        except KeyError:
            running = []
        if running:
            break
        time.sleep(0.1)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.communicate()
    survivor = worker(tmp_path, path, pg_url)
    _, err = survivor.communicate(timeout=240)
    assert survivor.returncode == 0, err
    study, trials, lines = check_complete(pg_url, name, n_trials, log)
    retried = [t for t in trials if "failed_trial" in t.system_attrs]
    assert retried, "the dead worker's running trials should have been re-queued"
    originals = {t.system_attrs["failed_trial"] for t in retried}
    by_number = {t.number: t for t in trials}
    for t in retried:  # a retry evaluates the same configuration (the worker may have died
        # before suggesting every parameter; the ones it stored are kept)
        assert by_number[t.system_attrs["failed_trial"]].params.items() <= t.params.items()
    assert all(by_number[n].state is TrialState.FAIL for n in originals)
