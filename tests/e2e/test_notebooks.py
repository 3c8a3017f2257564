"""The whole lab on the local cloud with the ci profile: papermill runs every notebook, the book is
built from the executed copies and opened in headless Chromium; nbval executes the notebooks too.

nbval mode: ``--nbval-lax`` on freshly parameterized copies (papermill ``prepare_only``). Stored
outputs are never compared: the repository keeps notebooks cleared, and a fresh run's numbers
(latencies, ids, timestamps) differ every time; what nbval checks is that every cell of every
notebook runs without error, top to bottom, in a plain Jupyter kernel.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from swlab.run import book
from swlab.run.paths import notebooks
from swlab.run.profiles import load_profile
from swlab.run.reaper import running
from swlab.run.stages import prepare_notebooks, run_lab

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_NOTEBOOKS = [
    "00_setup",
    "01_deploy",
    "02_smoke_test",
    "03_load_test_wf1",
    "04_load_test_wf2",
    "05_collect",
    "06_analysis",
    "07_cost",
    "08_teardown",
]
# Figures each results page must show (at least): smoke test steps; analysis plots; cost breakdown.
MIN_FIGURES = {"02_smoke_test.html": 1, "06_analysis.html": 9, "07_cost.html": 1, "architecture.html": 1}


def _alive(pid: int | None) -> bool:
    return bool(pid) and running(int(pid))  # a zombie waiting for its reaper has ended


def test_the_lab_has_its_notebooks():
    assert [p.stem for p in notebooks(ROOT)] == EXPECTED_NOTEBOOKS


@pytest.fixture(scope="module")
def ci_run_result(tmp_path_factory):
    said: list[str] = []
    result = run_lab(
        load_profile("ci", ROOT), run_dir=tmp_path_factory.mktemp("ci") / "run", root=ROOT, say=said.append
    )
    return result, said


@pytest.fixture(scope="module")
def ci_run(ci_run_result):
    return ci_run_result[0].run


@pytest.mark.timeout(1800)
def test_ci_run_builds_a_book_with_every_figure(ci_run_result):
    result, said = ci_run_result
    log = "\n".join(said)
    assert result.ok, log
    assert result.book_html and result.book_html.is_file(), log
    manifest = result.run.manifest()
    assert [s["status"] for s in manifest["stages"]] == ["ok"] * len(EXPECTED_NOTEBOOKS)
    assert manifest["teardown"]["clean"] is True
    assert not _alive(manifest["localcloud"]["pid"]) and not _alive(manifest["image_server"]["pid"])
    assert manifest["load_wf1"]["summary"]["samples"] == manifest["load_wf1"]["summary"]["samples_planned"]
    if manifest.get("models", {}).get("weights") == "untrained":
        assert "weights: untrained" in (book.html_dir(result.run) / "notebooks" / "06_analysis.html").read_text()


def test_ci_run_books_rendered_pages_show_every_figure(ci_run, chromium):
    checks = {c.page.name: c for c in book.check_pages(ci_run, chromium)}
    for page, minimum in MIN_FIGURES.items():
        assert len(checks[page].images) >= minimum, checks[page].summary()


@pytest.mark.timeout(1800)
@pytest.mark.xdist_group("nbval")  # a lab run of its own: may run beside the papermill run's tests
def test_nbval_runs_every_notebook(tmp_path):
    run = prepare_notebooks(load_profile("ci", ROOT), run_dir=tmp_path / "nbval", root=ROOT)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--nbval-lax",
            "--nbval-cell-timeout=900",
            str(run.notebooks_dir),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1750,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
    manifest = run.manifest()
    assert not _alive((manifest.get("localcloud") or {}).get("pid"))
