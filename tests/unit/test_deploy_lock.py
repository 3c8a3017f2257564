"""Two deploys of one stack at once: the second waits for the first (one line), or refuses (one line)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from swlab.provision import cli
from swlab.provision.lock import StackBusy, lock_path, stack_lock
from swlab.settings import load_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path, stack: str = "locked"):
    return load_settings(env={}, target="local", stack=stack, endpoint_url="http://127.0.0.1:9", runs_dir=tmp_path)


def hold(tmp_path: Path, stack: str, seconds: float) -> subprocess.Popen:
    """A child process that holds the stack's lock for ``seconds`` (as a running deploy would)."""
    code = (
        "import sys, time\nfrom swlab.provision.lock import stack_lock\nfrom swlab.settings import load_settings\n"
        f"s = load_settings(env={{}}, target='local', stack={stack!r}, endpoint_url='http://127.0.0.1:9', "
        f"runs_dir={str(tmp_path)!r})\n"
        f"with stack_lock(s, 'deploy'):\n    print('held', flush=True)\n    time.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_deploy_refuses_with_one_line(tmp_path, capsys):
    proc = hold(tmp_path, "locked", 30)
    try:
        code = cli.main(
            [
                "deploy",
                "--stack",
                "locked",
                "--endpoint-url",
                "http://127.0.0.1:9",
                "--runs-dir",
                str(tmp_path),
                "--wait",
                "0",
            ]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert err[-1].startswith("error: stack locked on local is busy: deploy by pid ") and "Traceback" not in err[-1]
    finally:
        proc.kill()
        proc.wait()


def test_a_second_deploy_waits_for_the_first(tmp_path):
    proc = hold(tmp_path, "locked", 1.0)
    said: list[str] = []
    started = time.monotonic()
    with stack_lock(settings(tmp_path), "deploy", wait_s=60, say=said.append):
        waited = time.monotonic() - started
    proc.wait()
    assert len(said) == 1 and said[0].startswith("waiting for stack locked on local: deploy by pid")
    assert waited > 0.3


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    proc = hold(tmp_path, "locked", 60)
    proc.kill()  # kill -9: the kernel drops the flock
    proc.wait()
    assert lock_path(settings(tmp_path)).exists()
    with stack_lock(settings(tmp_path), "deploy", wait_s=0):
        pass


def test_different_stacks_do_not_wait_for_each_other(tmp_path):
    proc = hold(tmp_path, "one", 30)
    try:
        with stack_lock(settings(tmp_path, "two"), "deploy", wait_s=0):
            pass
        with pytest.raises(StackBusy):
            with stack_lock(settings(tmp_path, "one"), "deploy", wait_s=0):
                pass
    finally:
        proc.kill()
        proc.wait()
