"""The papermill stage runner on tiny notebooks (real kernels, no cloud): order, parameters,
stage times, a failure named by notebook and cell, later stages skipped, teardown run anyway."""

from __future__ import annotations

from pathlib import Path

import pytest

from swlab.run.cli import main
from swlab.run.profiles import LabProfile
from swlab.run.stages import run_lab
from tests.unit.test_run import write_notebook

pytestmark = pytest.mark.unit


@pytest.fixture
def tiny_lab(tmp_path: Path) -> Path:
    root = tmp_path / "lab"
    (root / "profiles").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    nbs = root / "notebooks"
    write_notebook(
        nbs / "00_first.ipynb",
        'run_dir: str = ""  # run\ngreeting: str = "hi"  # text',
        "from pathlib import Path\nPath(run_dir, 'first.txt').write_text(greeting)",
    )
    write_notebook(nbs / "01_boom.ipynb", 'run_dir: str = ""  # run', "x = 1", "y = x / 0", "print('unreached')")
    write_notebook(
        nbs / "02_after.ipynb",
        'run_dir: str = ""  # run',
        "from pathlib import Path\nPath(run_dir, 'after.txt').write_text('ran')",
    )
    write_notebook(
        nbs / "09_teardown.ipynb",
        'run_dir: str = ""  # run',
        "from pathlib import Path\nPath(run_dir, 'teardown.txt').write_text('ran')",
    )
    return root


def test_failure_is_named_later_stages_skipped_teardown_run(tiny_lab):
    said: list[str] = []
    profile = LabProfile(name="t", description="", parameters={"greeting": "hello"})
    result = run_lab(profile, run_dir=tiny_lab / "runs" / "r1", build_book=False, root=tiny_lab, say=said.append)
    run = result.run
    assert [(s.name, s.status) for s in result.stages] == [
        ("00_first", "ok"),
        ("01_boom", "failed"),
        ("02_after", "skipped"),
        ("09_teardown", "ok"),
    ]
    assert (run.dir / "first.txt").read_text() == "hello"  # the profile's parameter reached the notebook
    assert not (run.dir / "after.txt").exists() and (run.dir / "teardown.txt").exists()
    assert not result.ok
    error = result.stages[1].error
    assert error.startswith("01_boom.ipynb, cell 4 (In [4]): ZeroDivisionError")
    assert "| y = x / 0" in error
    assert (run.dir / "notebooks" / "01_boom.ipynb").exists()  # the executed copy keeps the traceback
    text = "\n".join(said)
    assert "FAILED: 01_boom.ipynb, cell 4" in text and "[09_teardown] ok in" in text
    recorded = run.manifest()["stages"]
    assert [s["status"] for s in recorded] == ["ok", "failed", "skipped", "ok"]
    assert all(s["seconds"] > 0 for s in recorded if s["status"] != "skipped")
    assert (run.dir / "logs" / "00_first.log").exists()


def test_only_selects_stages_and_cli_exit_code(tiny_lab, monkeypatch, capsys):
    (tiny_lab / "profiles" / "p.yaml").write_text("name: p\nparameters:\n  greeting: yo\n")
    monkeypatch.chdir(tiny_lab)
    code = main(
        [
            "--profile",
            "p",
            "--only",
            "00",
            "--only",
            "09",
            "--no-book",
            "--run-dir",
            str(tiny_lab / "runs" / "r2"),
            "-p",
            "greeting=cli",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert (tiny_lab / "runs" / "r2" / "first.txt").read_text() == "cli"
    assert "01_boom" not in out and "00_first" in out and "total" in out
    code = main(["--profile", "p", "--no-book", "--run-dir", str(tiny_lab / "runs" / "r3")])
    assert code == 1
    assert main(["--profile", "p", "-p", "typo=1", "--run-dir", str(tiny_lab / "runs" / "r4")]) == 2


def test_ctrl_c_in_a_stage_still_runs_teardown(tiny_lab, monkeypatch):
    import papermill

    real = papermill.execute_notebook

    def interrupted(input_path, *args, **kwargs):
        if "00_first" in str(input_path):
            raise KeyboardInterrupt  # the user pressed Ctrl-C while this stage ran
        return real(input_path, *args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    result = run_lab(
        LabProfile("t", "", {}), run_dir=tiny_lab / "runs" / "r5", build_book=False, root=tiny_lab, say=lambda _: None
    )
    assert [(s.name, s.status) for s in result.stages] == [
        ("00_first", "failed"),
        ("01_boom", "skipped"),
        ("02_after", "skipped"),
        ("09_teardown", "ok"),
    ]
    assert result.stages[0].error == "00_first.ipynb: interrupted by the user"
    assert (result.run.dir / "teardown.txt").exists()


def test_a_dead_cloud_is_one_line_saying_so_and_what_to_do(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    from swlab.run.stages import describe_failure

    exc = PapermillExecutionError(
        cell_index=3,
        exec_count=4,
        source="data = telemetry.collect_telemetry(run)",
        ename="EndpointConnectionError",
        evalue='Could not connect to the endpoint URL: "http://127.0.0.1:4566/"',
        traceback=["...130 lines..."],
    )
    message = describe_failure(exc, Path("05_collect.ipynb"), tmp_path / "missing.ipynb")
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert "the cloud stopped answering" in message and "scripts/run-lab" in message
