"""The book's Experiments part, built strictly from an experiments run directory: pages with their figures.

The run directory is synthetic (points with collected invocations and probes, as the runner writes
them); the pages are the real notebooks of ``notebooks/experiments``, executed by papermill through
``scripts/run-lab analyse`` (re-analysis from the run directory alone).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from swlab.analysis.dataset import RunData, save_run
from swlab.run import book
from swlab.run.records import PointRecord
from swlab.run.sweep import reanalyse
from tests.unit.test_sweep_points import _invocations, _run, _write_point

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("e1_cold_starts", "e2_memory", "e9_discussion")


def test_experiments_part_builds_with_its_figures(tmp_path):
    run = _run(tmp_path)
    plan = [{"analysis": a, "experiment": a} for a in ("cold_starts", "memory")]
    run.record(
        "experiments", {"declared": [{"name": "cold_starts", "title": "Cold"}, {"name": "memory"}], "plan": plan}
    )
    run.record("default_memory_mb", {"resnet": 1280, "flip": 512})
    probes = pd.DataFrame(
        {
            "workflow": ["wf2"] * 3,
            "kind": ["cold", "warm", "warm"],
            "sent_at": ["t"] * 3,
            "status": [200] * 3,
            "ms": [9000.0, 450.0, 470.0],
        }
    )
    inv = _invocations({"resnet": (4000.0, 300.0, 100.0, 1280), "flip": (50.0, 20.0, 10.0, 512)})
    for k in (1, 2):
        _write_point(run, k, "cold_starts", {}, {"workflows": ["wf2"]}, inv, probes)
    for k, mb in ((3, 512), (4, 1024), (5, 2048)):
        _write_point(
            run,
            k,
            "memory",
            {"memory_mb.*": mb},
            {"memory_mb": {"*": mb}},
            _invocations({"resnet": (4000.0, 300.0, 100.0 * 1024 / mb, mb), "flip": (50.0, 20.0, 10.0, mb)}),
        )
    _write_point(run, 6, "memory", {"memory_mb.*": 128}, {"memory_mb": {"*": 128}}, None, status="failed")
    # the sweep's check points: Workflow 2 deployed at the balanced sizes, then at the defaults, measured
    for k, choice, ms in ((7, "balanced", 700.0), (8, "default", 1400.0)):
        config = {"memory_choice": choice, "memory_mb": {"resnet": 2048} if choice == "balanced" else {}}
        _write_point(run, k, "memory", {"memory_choice": choice}, config, inv)
        executions = pd.DataFrame(
            {
                "execution_arn": [f"arn:x:{choice}:{i}" for i in range(4)],
                "state_machine": ["st-classify"] * 4,
                "start_date": pd.date_range("2026-01-01T00:00:10Z", periods=4, freq="s"),
                "stop_date": pd.date_range("2026-01-01T00:00:11Z", periods=4, freq="s"),
                "status": ["SUCCEEDED"] * 4,
                "duration_ms": [ms, ms + 10, ms + 20, ms + 30],
            }
        )
        save_run(RunData(manifest={}, tables={"invocations": inv, "executions": executions}), run.point(k).data_dir)
    # a cold point with provisioned concurrency on the models (experiment cold_provisioned, page cold_starts)
    fast = probes.assign(ms=[2500.0, 440.0, 460.0])
    _write_point(run, 9, "cold_provisioned", {}, {"workflows": ["wf2"]}, inv, fast)
    prun = run.point(9)
    prun.save(
        PointRecord(
            index=9,
            experiment="cold_provisioned",
            analysis="cold_starts",
            config={"workflows": ["wf2"], "deploy_options": {"provisioned_concurrency": {"resnet": 1}}},
            status="ok",
        )
    )
    said: list[str] = []
    result = reanalyse(run, root=ROOT, say=said.append)  # scripts/run-lab analyse RUN_DIR
    assert result.ok, "\n".join(said)
    assert result.book_html is not None and result.book_html.is_file()
    for name in PAGES:
        page = run.book_html / "notebooks" / f"{name}.html"
        text = page.read_text()
        figures = book.expected_figures(run.executed_notebook(f"{name}.ipynb"))
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', text)
        assert len(images) >= figures, name
        for src in images:
            assert (page.parent / src).is_file() and (page.parent / src).stat().st_size > 1000
    assert book.expected_figures(run.executed_notebook("e1_cold_starts.ipynb")) == 1
    assert book.expected_figures(run.executed_notebook("e2_memory.ipynb")) == 1
    cold = (run.book_html / "notebooks" / "e1_cold_starts.html").read_text()
    assert "The costliest cold start is resnet" in cold and "What you should see" in cold and "Exercise" in cold
    assert "9.00 s without provisioned concurrency, 2.50 s with it on the model functions (resnet 1)" in cold
    memory = (run.book_html / "notebooks" / "e2_memory.html").read_text()
    assert "(point failed)" in memory  # a failing point is a row of the results, not a crash
    assert "Measured: Workflow 2 at the balanced sizes took 715 ms end to end" in memory
    assert "against 1415 ms" in memory and "The estimate from the per-function medians said" in memory
    toc = (run.book_src / "_toc.yml").read_text()
    assert "notebooks/e1_cold_starts" in toc and "notebooks/e3_workflow_type" not in toc
    assert (run.book_html / "book" / "glossary.html").is_file()


def test_the_part_builds_when_experiments_have_no_point_or_only_failed_ones(tmp_path):
    """Memory's points all failed, the other pages' experiments have no point: one sentence each, no plot."""
    run = _run(tmp_path)
    analyses = ("cold_starts", "memory", "workflow_type", "load", "architecture")
    plan = [{"analysis": a, "experiment": a} for a in analyses]
    run.record("experiments", {"declared": [{"name": a} for a in analyses], "plan": plan})
    run.record("default_memory_mb", {"resnet": 1280, "flip": 512})
    _write_point(run, 1, "memory", {"memory_mb.*": 128}, {"memory_mb": {"*": 128}}, None, status="failed")
    prun = run.point(1)
    prun.save(PointRecord(index=1, experiment="memory", analysis="memory", status="failed", stage="deploy", error="E"))
    said: list[str] = []
    result = reanalyse(run, root=ROOT, say=said.append)
    assert result.ok, "\n".join(said)
    assert result.book_html is not None and result.book_html.is_file()
    memory = (run.book_html / "notebooks" / "e2_memory.html").read_text()
    assert "No memory-sweep points in this run: all 1 failed (point 1 in deploy: E)." in memory
    for name, what in (
        ("e1_cold_starts", "cold-start"),
        ("e3_workflow_type", "Standard vs Express"),
        ("e4_load", "load-step"),
        ("e5_architecture", "architecture"),
    ):
        text = (run.book_html / "notebooks" / f"{name}.html").read_text()
        assert f"No {what} points in this run: the run has no point of the experiment" in text, name
    for name in ("e1_cold_starts", "e2_memory", "e3_workflow_type", "e4_load", "e5_architecture"):
        assert book.expected_figures(run.executed_notebook(f"{name}.ipynb")) == 0, name
        page = (run.book_html / "notebooks" / f"{name}.html").read_text()
        assert not re.findall(r'<img[^>]+src="([^"]+\.png)"', page), name
