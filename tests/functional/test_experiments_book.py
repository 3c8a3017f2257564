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

from swlab.run import book
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
    memory = (run.book_html / "notebooks" / "e2_memory.html").read_text()
    assert "(point failed)" in memory  # a failing point is a row of the results, not a crash
    toc = (run.book_src / "_toc.yml").read_text()
    assert "notebooks/e1_cold_starts" in toc and "notebooks/e3_workflow_type" not in toc
    assert (run.book_html / "book" / "glossary.html").is_file()
