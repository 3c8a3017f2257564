"""The CI experiments profile end to end: every experiment kind's points, their pages, the book.

``profiles/experiments-ci.yaml`` on a fresh local cloud (its own, started and stopped by the run):
9 points, none failed, each a run directory with its configuration and data; the analyses re-run
from the run directory alone; the book's Experiments part with its figures. About 6-9 minutes
on the project's 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swlab.analysis import experiments as ex
from swlab.analysis.points import load_points
from swlab.analysis.prices import load_prices
from swlab.run import book
from swlab.run.profiles import load_profile
from swlab.run.records import PointRecord
from swlab.run.rundir import RunDir
from swlab.run.sweep import run_experiments

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_experiments_ci_profile_runs_every_point_and_builds_its_book(tmp_path):
    said: list[str] = []
    result = run_experiments(load_profile("experiments-ci", ROOT), run_dir=tmp_path / "x", root=ROOT, say=said.append)
    assert result.ok, "\n".join(said[-40:])
    assert any(line.startswith("[point 9/9]") and "left" in line for line in said)
    points = load_points(result.run.dir)
    assert len(points) == 9 and all(p.ok for p in points), [p.record.get("error") for p in points]
    for k in range(1, 10):
        prun = RunDir(result.run.point(k).dir)
        assert prun.load(PointRecord).status == "ok"
        assert (prun.data_dir / "invocations.parquet").is_file()
        assert prun.manifest()["parameters"] == prun.load(PointRecord).config
    cold = ex.cold_start_table([p for p in points if p.record["analysis"] == "cold_starts"])
    assert cold["cold_n"].min() >= 2
    assert set(
        ex.workflow_type_table([p for p in points if p.record["analysis"] == "workflow_type"], load_prices()).index
    ) == {
        "EXPRESS",
        "STANDARD",
    }
    load = ex.load_table([p for p in points if p.record["analysis"] == "load"])
    assert list(load["recorded"]) == list(load["planned"])  # nothing lost
    assert result.book_html is not None and result.book_html.is_file()
    for name in ("e1_cold_starts", "e2_memory", "e3_workflow_type", "e4_load", "e5_architecture", "e9_discussion"):
        assert (result.run.book_html / "notebooks" / f"{name}.html").is_file()
    assert book.expected_figures(result.run.executed_notebook("e2_memory.ipynb")) == 1
