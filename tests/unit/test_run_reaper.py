"""A run's processes found through /proc, stopped by group; stale runs; run directories never shared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from unittest import mock

import pytest

from swlab.run import rundir
from swlab.run.cleanup import clean_stale_runs
from swlab.run.paths import new_run_id
from swlab.run.reaper import RUN_ENV, RunnerMark, count_kinds, run_processes, stale_runs, stop

pytestmark = pytest.mark.unit

SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


def _spawn(tmp_path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(SLEEP, start_new_session=True, stdin=subprocess.DEVNULL, **kwargs)


def test_a_process_is_the_runs_by_its_environment_its_directory_or_its_arguments(tmp_path):
    run, other = tmp_path / "run", tmp_path / "run-2"
    (run / "jmeter").mkdir(parents=True)
    other.mkdir()
    by_env = _spawn(tmp_path, env={**os.environ, RUN_ENV: str(run)})
    by_cwd = _spawn(tmp_path, cwd=run / "jmeter")
    by_arg = subprocess.Popen([*SLEEP, f"--state-file={run}/imageserver/state.json"], start_new_session=True)
    stranger = _spawn(tmp_path, cwd=other)  # a sibling whose name starts with the run's
    try:
        found = {p.pid for p in run_processes(run)}
        assert {by_env.pid, by_cwd.pid, by_arg.pid} <= found and stranger.pid not in found
        assert os.getpid() not in found
        stopped = stop([p for p in run_processes(run)], grace_s=5)
        assert {p.pid for p in stopped} == found
        for proc in (by_env, by_cwd, by_arg):
            assert proc.wait(10) is not None
        assert run_processes(run) == [] and stranger.poll() is None
    finally:
        for proc in (by_env, by_cwd, by_arg, stranger):
            proc.kill()
            proc.wait()


def test_a_run_whose_runner_died_is_stale_and_cleaned_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live = tmp_path / "stale", tmp_path / "live"
    for d in (stale, live):
        (d / "localcloud").mkdir(parents=True)
    (stale / "runner.json").write_text(json.dumps({"pid": dead.pid, "start_ticks": 1}))
    (stale / "localcloud" / "state.json").write_text("{}")
    RunnerMark(live).claim()
    leftover = _spawn(tmp_path, cwd=stale / "localcloud")
    try:
        assert stale_runs(tmp_path) == [stale]
        deadline = time.monotonic() + 30
        while leftover.pid not in {p.pid for p in run_processes(stale)} and time.monotonic() < deadline:
            time.sleep(0.05)  # the child is in its directory once it runs
        lines = clean_stale_runs(tmp_path)
        assert len(lines) == 1 and lines[0].startswith("cleaned up after run stale (its runner was killed)")
        assert "stopped the process" in lines[0] and "localcloud/state.json" in lines[0]
        assert leftover.wait(10) is not None
        assert not (stale / "runner.json").exists() and clean_stale_runs(tmp_path) == []
    finally:
        RunnerMark(live).release()
        leftover.kill()
        leftover.wait()


def test_count_kinds_words():
    from swlab.run.reaper import Proc

    procs = [Proc(1, 1, "JMeter", ""), Proc(2, 2, "notebook kernel", ""), Proc(3, 3, "notebook kernel", "")]
    assert count_kinds(procs) == "JMeter and 2 notebook kernels"
    assert count_kinds(procs[1:2]) == "the notebook kernel"


def test_two_runs_started_in_the_same_second_get_two_directories(tmp_path, monkeypatch):
    monkeypatch.setenv("SWLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(rundir, "collect_provenance", lambda root: mock.Mock(as_dict=lambda: {}))
    same_second = datetime(2026, 11, 29, 16, 0, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(rundir, "new_run_id", lambda profile: new_run_id(profile, same_second))
    first = rundir.start_run(profile="ci", root=tmp_path)
    second = rundir.start_run(profile="ci", root=tmp_path)
    assert first.dir != second.dir and second.dir.name == first.dir.name + "-2"
    assert first.manifest()["run_id"] != second.manifest()["run_id"]
