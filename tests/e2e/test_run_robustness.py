"""``scripts/run-lab`` when things go wrong: Ctrl-C, ``kill -9`` of a run, a local cloud that dies, two runs at once.

Each test starts real runs of the ci profile as subprocesses (``python -m swlab.run``) with only the
stages it needs (``--only``), in a runs directory of its own, and polls the run directory (the
manifest, ``progress.json``) and ``/proc`` (:mod:`swlab.run.reaper`) with generous bounds; no fixed
sleeps. "A process of the run" is one whose environment, working directory or command line points at
its run directory: the kernels, JMeter, the local cloud, its Lambda environments, the image server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swlab.run.progress import read_progress
from swlab.run.reaper import run_processes, stop

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
LOAD = ["--only", "00", "--only", "01", "--only", "03", "--only", "08", "-p", "duration_s=300"]
DEPLOY = ["--only", "00", "--only", "01", "--only", "08"]


def _terminal_signals() -> None:
    """In the child: Ctrl-C's SIGINT as a terminal's foreground job has it. A pytest-xdist worker ignores
    SIGINT, and an ignored signal stays ignored across exec (Python then installs no handler for it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Lab:
    """One ``run-lab --profile ci`` subprocess in its own process group, as a terminal would start it."""

    def __init__(self, runs: Path, stack: str, args: list[str], name: str = "lab") -> None:
        self.runs, self.out, self.err = runs, runs / f"{name}.out", runs / f"{name}.err"
        env = {**os.environ, "SWLAB_RUNS_DIR": str(runs), "PYTHONPATH": str(ROOT)}
        env.pop("AWS_ENDPOINT_URL", None)
        runs.mkdir(parents=True, exist_ok=True)
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "swlab.run", "--profile", "ci", "--no-book", "-p", f"stack={stack}", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_terminal_signals,
            )
        self._dir: Path | None = None

    @property
    def run_dir(self) -> Path:
        """The run's directory, from its first line ("run <id> (ci) in <dir>")."""
        if self._dir is None:
            wait_until(lambda: " in " in self.stdout(), 120, "the run's first line")
            self._dir = Path(self.stdout().splitlines()[0].rsplit(" in ", 1)[1])
        return self._dir

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def manifest(self) -> dict:
        return json.loads((self.run_dir / "manifest.json").read_text())

    def wait(self, timeout_s: float = 600) -> int:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            if self._dir is not None:  # its local cloud and image server lead their own sessions
                stop(run_processes(self._dir))
            raise AssertionError(f"run-lab did not end within {timeout_s} s:\n{self.stdout()}\n{self.stderr()}")


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


def load_test_running(lab: Lab) -> bool:
    """JMeter of the run is up and its progress line (``wf1 ingest: sent ...``) is being written."""
    if lab.proc.poll() is not None:
        raise AssertionError(f"run-lab ended early:\n{lab.stdout()}\n{lab.stderr()}")
    line = read_progress(lab.run_dir) or ""
    return line.startswith("wf1") and any(p.kind == "JMeter" for p in run_processes(lab.run_dir))


def deploying(lab: Lab) -> bool:
    if lab.proc.poll() is not None:
        raise AssertionError(f"run-lab ended early:\n{lab.stdout()}\n{lab.stderr()}")
    return "functions deployed" in (read_progress(lab.run_dir) or "")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text


def test_ctrl_c_during_the_load_test_stops_everything_tears_down_and_exits_130(tmp_path):
    lab = Lab(tmp_path / "runs", "swlabintr", LOAD)
    wait_until(lambda: load_test_running(lab), 400, "the load test to run")
    before = run_processes(lab.run_dir)
    kinds = {p.kind for p in before}
    assert {"JMeter", "notebook kernel", "local cloud", "image server"} <= kinds, kinds

    os.killpg(lab.proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: SIGINT to the foreground process group
    assert lab.wait(300) == 130, lab.stdout() + lab.stderr()

    err = [line for line in lab.stderr().splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("interrupted: "), err
    assert re.search(r"stopped [^;]*JMeter", err[0]) and "tore down stack swlabintr" in err[0], err
    assert "stopped the image server and the local cloud" in err[0] and "no process left" in err[0], err
    no_traceback(lab.stdout(), lab.stderr())
    assert not run_processes(lab.run_dir)
    assert not [p for p in before if alive(p.pid)]
    manifest = lab.manifest()
    assert manifest["teardown"]["clean"] is True and manifest["teardown"]["remaining"] == []
    assert not (lab.run_dir / "deploy" / "outputs.json").exists()
    assert manifest["localcloud"].get("stopped_at") and manifest["image_server"].get("stopped_at")
    assert not (lab.run_dir / "runner.json").exists()


def test_the_next_run_cleans_up_after_a_run_killed_with_kill_9(tmp_path):
    runs = tmp_path / "runs"
    first = Lab(runs, "swlabk9", DEPLOY, name="first")
    wait_until(lambda: deploying(first), 400, "the first run's deploy")
    os.killpg(first.proc.pid, signal.SIGKILL)  # the whole run's process group
    first.wait(60)
    left = run_processes(first.run_dir)
    assert {"local cloud", "image server"} <= {p.kind for p in left}, left  # what kill -9 leaves behind

    second = Lab(runs, "swlabk9", DEPLOY, name="second")
    assert second.wait(600) == 0, second.stdout() + second.stderr()
    cleaned = [line for line in second.stdout().splitlines() if line.startswith("cleaned up after run")]
    assert len(cleaned) == 1 and first.run_dir.name in cleaned[0], second.stdout()
    assert "local cloud" in cleaned[0] and "its stack died with its local cloud" in cleaned[0], cleaned
    no_traceback(second.stdout(), second.stderr())
    assert not run_processes(first.run_dir) and not [p for p in left if alive(p.pid)]
    for stale in ("runner.json", "localcloud/state.json", "imageserver/state.json"):
        assert not (first.run_dir / stale).exists(), stale
    assert second.manifest()["teardown"]["clean"] is True
    assert "waiting for stack" not in (second.run_dir / "logs" / "01_deploy.log").read_text()  # no stale lock
    assert not run_processes(second.run_dir)


def test_a_local_cloud_that_dies_mid_deploy_gets_one_teardown_line(tmp_path):
    lab = Lab(tmp_path / "runs", "swlabdead", DEPLOY)
    wait_until(lambda: deploying(lab), 400, "the deploy")
    os.killpg(int(lab.manifest()["localcloud"]["pid"]), signal.SIGKILL)
    assert lab.wait(600) == 1, lab.stdout() + lab.stderr()

    out = lab.stdout()
    no_traceback(out, lab.stderr())
    gone = [line for line in out.splitlines() if line.startswith("teardown: ")]
    assert gone == [
        "teardown: the local cloud is gone (it died during the run): its state died with it, "
        "so nothing is left on the local target"
    ], out
    assert "stopped the run's local cloud" not in out  # it was dead, not stopped
    assert lab.manifest()["teardown"]["cloud_gone"] is True
    assert not run_processes(lab.run_dir)


def test_two_runs_at_once_with_different_stacks_do_not_interfere(tmp_path):
    runs = tmp_path / "runs"
    a, b = Lab(runs, "swlaba", DEPLOY, name="a"), Lab(runs, "swlabb", DEPLOY, name="b")
    assert a.wait(900) == 0, a.stdout() + a.stderr()
    assert b.wait(900) == 0, b.stdout() + b.stderr()
    assert a.run_dir != b.run_dir  # started in the same second: two directories all the same
    ma, mb = a.manifest(), b.manifest()
    assert (ma["settings"]["stack"], mb["settings"]["stack"]) == ("swlaba", "swlabb")
    assert ma["localcloud"]["endpoint"] != mb["localcloud"]["endpoint"]
    assert ma["localcloud"]["work_dir"] != mb["localcloud"]["work_dir"]
    assert ma["image_server"]["base_url"] != mb["image_server"]["base_url"]
    for m in (ma, mb):
        assert [s["status"] for s in m["stages"]] == ["ok", "ok", "ok"]
        assert m["teardown"]["clean"] is True and m["teardown"]["stack"] == m["settings"]["stack"]
    assert not run_processes(a.run_dir) and not run_processes(b.run_dir)


@pytest.mark.jmeter
def test_two_load_tests_at_once_each_reach_their_own_api_and_write_their_own_results(tmp_path):
    """The part of two runs that the deploy-only runs above leave out: two JMeter runs at once."""
    from concurrent.futures import ThreadPoolExecutor

    from swlab.loadtest.install import JMeterSetupError, ensure_jmeter
    from swlab.loadtest.jtl import parse_jtl
    from swlab.loadtest.plans import LoadProfile, write_data_file
    from swlab.loadtest.runner import run_workflow
    from swlab.loadtest.stub import StubApi
    from swlab.run.rundir import RunDir

    try:
        install = ensure_jmeter()
    except JMeterSetupError as exc:
        pytest.skip(str(exc))
    profile = LoadProfile(rate_per_s=2, duration_s=3, timeout_ms=3000, warmup_s=0.5)
    runs = {name: RunDir(tmp_path / name) for name in ("a", "b")}
    with StubApi(api_key="key-a") as api_a, StubApi(api_key="key-b") as api_b:
        apis = {"a": api_a, "b": api_b}
        for name, run in runs.items():
            write_data_file(run.data_file("wf1"), [f"http://images.invalid/{name}.png"], "image_url")

        def load(name: str):
            run = runs[name]
            return run_workflow(
                "wf1", apis[name].endpoint(), run.data_file("wf1"), run.jmeter_dir("wf1"), profile, install=install
            )

        with ThreadPoolExecutor(2) as pool:
            results = dict(zip(runs, pool.map(load, runs)))
    for name, run in runs.items():
        samples = parse_jtl(results[name].jtl)
        assert results[name].jtl == run.jtl("wf1") and len(samples) == profile.samples_planned
        assert samples["success"].all(), samples
        urls = {body["image_url"] for _, path, body in apis[name].requests if path.endswith("/ingest")}
        assert urls == {f"http://images.invalid/{name}.png"}  # each API got only its own run's requests
        assert (run.jmeter_dir("wf1") / "jmeter.log").is_file() and results[name].dashboard.is_file()
