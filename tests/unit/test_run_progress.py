"""A stage's live progress (swlab.run.progress) through the real runner with fake stages (real kernels, no
cloud): the kernel writes the progress file, the runner shows it live on a terminal and as one line per
stage elsewhere; the lab's overhead is recorded and printed."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from swlab.provision.changes import ChangeReport
from swlab.run.profiles import LabProfile
from swlab.run.progress import LiveLine, ProgressFile, progress_path, read_progress
from swlab.run.provisioning import ChangeCounter
from swlab.run.rundir import RunDir
from swlab.run.stages import run_lab
from swlab.run.telemetry import wait_for_logs
from swlab.settings import load_settings
from tests.unit.test_run import write_notebook

pytestmark = pytest.mark.unit

FAKE_STAGE = """
import time
from swlab.run.progress import ProgressFile
report = ProgressFile(run_dir)
for k in range(1, 4):
    report(f"step {k} of 3", force=True)
    time.sleep(pause_s)
"""


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def progress_lab(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    (root / "profiles").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    nbs = root / "notebooks"
    write_notebook(nbs / "00_fake.ipynb", 'run_dir: str = ""  # run\npause_s: float = 0.0  # pause', FAKE_STAGE)
    write_notebook(
        nbs / "01_load.ipynb",
        'run_dir: str = ""  # run\nrate_per_s: float = 1.0  # rate\nduration_s: int = 180  # seconds',
        "x = 1",
    )
    write_notebook(nbs / "09_teardown.ipynb", 'run_dir: str = ""  # run', "x = 2")
    return root


def test_not_a_terminal_one_line_per_stage_with_its_last_progress(progress_lab):
    said: list[str] = []
    profile = LabProfile("t", "", {"duration_s": 2})
    result = run_lab(profile, run_dir=progress_lab / "runs" / "r", build_book=False, root=progress_lab, say=said.append)
    assert result.ok
    stage_lines = [line for line in said if line.startswith("[")]
    assert len(stage_lines) == 3, said  # no "running ...", no live updates: one line each
    assert stage_lines[0].startswith("[00_fake] ok in ") and stage_lines[0].endswith("(step 3 of 3)")
    assert stage_lines[1].startswith("[01_load] ok in ") and stage_lines[1].endswith(" s")
    assert not progress_path(result.run.dir).exists()  # cleared after each stage
    manifest = result.run.manifest()
    assert manifest["planned_load_s"] == 2.0
    assert manifest["overhead_s"] == pytest.approx(manifest["stages_seconds"] - 2.0, abs=0.02)
    assert manifest["stages_seconds"] == pytest.approx(sum(s.seconds for s in result.stages), abs=0.02)
    assert any(line.startswith("lab overhead") for line in "\n".join(said).splitlines())


def test_on_a_terminal_the_stage_progress_is_redrawn_live(progress_lab):
    terminal = FakeTerminal()
    said: list[str] = []
    profile = LabProfile("t", "", {"pause_s": 1.0})
    result = run_lab(
        profile,
        run_dir=progress_lab / "runs" / "r",
        only=["00"],
        build_book=False,
        root=progress_lab,
        say=said.append,
        live_to=terminal,
    )
    assert result.ok
    shown = terminal.getvalue()
    assert "\r\x1b[K[00_fake]" in shown
    assert "step 1 of 3" in shown or "step 2 of 3" in shown, shown  # seen while the kernel was still working
    assert shown.endswith("\r\x1b[K")  # the live line is wiped before the stage's final line
    stage_lines = [line for line in said if line.startswith("[")]
    assert len(stage_lines) == 1 and stage_lines[0].endswith("(step 3 of 3)")


def test_progress_file_reading_tolerates_missing_and_garbled_files(tmp_path):
    assert read_progress(tmp_path) is None
    progress_path(tmp_path).write_text("{not json")
    assert read_progress(tmp_path) is None
    progress_path(tmp_path).write_text(json.dumps(["a list"]))
    assert read_progress(tmp_path) is None
    write = ProgressFile(tmp_path, every_s=60)
    write("first")
    write("second")  # within every_s of the first: dropped
    assert read_progress(tmp_path) == "first"
    write("last", force=True)
    assert read_progress(tmp_path) == "last"
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]  # no temporary file left
    with LiveLine(tmp_path, "x", None) as live:  # a stale line from before the stage is not shown
        assert read_progress(tmp_path) is None
        ProgressFile(tmp_path)("mine")
    assert live.last == "mine" and live.suffix() == "  (mine)"


def test_deploy_and_teardown_lines_are_counted_into_the_progress_line(tmp_path):
    run, shown = RunDir(tmp_path), []
    report = ChangeReport(ChangeCounter(run, shown.append))
    report.say("planned   3 lambda functions")
    assert read_progress(tmp_path) == "functions deployed 0 of 3"
    report.record("iam role", "r", "created")
    report.record("lambda function", "a", "created")
    report.record("lambda function", "b", "unchanged")
    assert read_progress(tmp_path) == "functions deployed 2 of 3"
    assert shown[0] == "planned   3 lambda functions" and len(shown) == 4  # the lines are still shown as before
    gone = ChangeReport(ChangeCounter(run, None, teardown=True))
    for name in ("a", "b"):
        gone.record("lambda function", name, "deleted")
    gone.record("s3 bucket", "x", "absent")
    assert read_progress(tmp_path) == "resources deleted 2"


class FakeLambda:
    def list_functions(self, **_: object) -> dict:
        return {"Functions": [{"FunctionName": "s-f"}, {"FunctionName": "other-g"}]}


class FakeLogs:
    """The function's log group: each look shows the next of ``looks`` (a list of messages)."""

    class exceptions:  # noqa: N801 - boto3's spelling
        ResourceNotFoundException = KeyError

    def __init__(self, looks: list[list[str]]) -> None:
        self.looks, self.calls = looks, 0

    def filter_log_events(self, logGroupName: str, **_: object) -> dict:  # noqa: N803 - boto3's spelling
        assert logGroupName == "/aws/lambda/s-f"  # only the stack's functions
        messages = self.looks[min(self.calls, len(self.looks) - 1)]
        self.calls += 1
        return {"events": [{"logStreamName": "x", "timestamp": 1, "message": m, "ingestionTime": 1} for m in messages]}


@pytest.mark.parametrize("target, expected", [("local", 1.5), ("aws", 5.0)])
def test_collect_waits_for_the_window_logs_not_a_fixed_time(target, expected):
    settings = load_settings(env={}, target=target, stack="s", region="us-east-1")
    first, done = ["START RequestId: a Version: $LATEST"], ["START RequestId: a", "REPORT RequestId: a\tDuration: 1 ms"]
    logs, slept = FakeLogs([first, first, done, done]), []
    t = datetime.now(timezone.utc)
    waited = wait_for_logs(settings, t, t, 5.0, clients={"lambda": FakeLambda(), "logs": logs}, sleep=slept.append)
    # local: incomplete twice (a has no REPORT yet), complete, then the same again: 3 sleeps of 0.5 s, not 5 s
    assert waited == expected and sum(slept) == expected
    assert logs.calls == (4 if target == "local" else 0)


def test_collect_gives_up_waiting_after_settle_s():
    settings = load_settings(env={}, target="local", stack="s", region="us-east-1")
    never = FakeLogs([["START RequestId: a"]])
    t = datetime.now(timezone.utc)
    assert (
        wait_for_logs(settings, t, t, 2.0, clients={"lambda": FakeLambda(), "logs": never}, sleep=lambda s: None) == 2.0
    )
