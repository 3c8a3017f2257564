"""Every Experiments page on a run that lacks its experiment: no points, or only failed ones (issue 11).

The pages are the real notebooks of ``notebooks/experiments``; their code cells run here in-process
(as IPython would: the value of a cell's last expression is its output) against a run directory
written the way the runner writes it. A page without data says so in one sentence and shows no plot.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from matplotlib.figure import Figure

from swlab.analysis import experiment_common, experiment_memory
from swlab.analysis.points import load_points
from swlab.run.records import PointRecord
from tests.unit.test_sweep_points import _invocations, _run, _write_point

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PAGES = {  # analysis → (notebook, what the page's sentence calls its points)
    "cold_starts": ("e1_cold_starts", "cold-start"),
    "memory": ("e2_memory", "memory-sweep"),
    "workflow_type": ("e3_workflow_type", "Standard vs Express"),
    "load": ("e4_load", "load-step"),
    "architecture": ("e5_architecture", "architecture"),
}


def run_page(notebook: str, run_dir: Path, experiment: str | None = None) -> list[Any]:
    """Execute the notebook's code cells in one namespace; the outputs (last expressions' values, not None)."""
    nb = nbformat.read(ROOT / "notebooks" / "experiments" / f"{notebook}.ipynb", as_version=4)
    ns: dict[str, Any] = {}
    outputs: list[Any] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
        if "parameters" in cell.metadata.get("tags", []):
            exec(source, ns)  # noqa: S102 - the page's own code
            ns["run_dir"] = str(run_dir)
            if experiment:
                ns["experiment"] = experiment
            continue
        tree = ast.parse(source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, notebook, "exec"), ns)  # noqa: S102
        if last is not None:
            value = eval(compile(ast.Expression(last.value), notebook, "eval"), ns)  # noqa: S307
            if value is not None:
                outputs.append(value)
    return outputs


def markdown_of(outputs: list[Any]) -> str:
    return "\n".join(str(o.data) for o in outputs if type(o).__name__ == "Markdown")


def _declare(run, analyses: list[str]) -> None:
    run.record("experiments", {"declared": [{"name": a} for a in analyses], "plan": []})
    run.record("default_memory_mb", {"resnet": 1280, "flip": 512})


def _failed(run, index: int, experiment: str, config: dict[str, Any] | None = None, error: str = "") -> None:
    prun = run.point(index)
    prun.dir.mkdir(parents=True)
    prun.record("settings", {"stack": "st", "target": "local"})
    prun.save(
        PointRecord(
            index=index,
            experiment=experiment,
            analysis=experiment,
            config=config or {"workflows": ["wf2"], "rate_per_s": 2, "duration_s": 4},
            status="failed",
            stage="deploy",
            error=error or "RuntimeError: InvalidParameterValueException: MemorySize must be >= 128",
        )
    )


@pytest.mark.parametrize("analysis", list(PAGES))
def test_a_page_whose_experiment_has_no_point_says_so_and_draws_nothing(tmp_path, analysis):
    run = _run(tmp_path)
    _declare(run, [analysis])
    notebook, what = PAGES[analysis]
    outputs = run_page(notebook, run.dir)
    assert not [o for o in outputs if isinstance(o, Figure)], "an empty plot"
    text = markdown_of(outputs)
    assert f"No {what} points in this run: the run has no point of the experiment '{analysis}'" in text


@pytest.mark.parametrize("analysis", list(PAGES))
def test_a_page_whose_points_all_failed_says_so_and_draws_nothing(tmp_path, analysis):
    run = _run(tmp_path)
    _declare(run, [analysis])
    notebook, what = PAGES[analysis]
    _failed(run, 1, analysis)
    _failed(run, 2, analysis, error="LabError: the second one")
    outputs = run_page(notebook, run.dir)
    assert not [o for o in outputs if isinstance(o, Figure)], "an empty plot"
    text = markdown_of(outputs)
    assert (
        f"No {what} points in this run: all 2 failed (point 1 in deploy: RuntimeError: "
        "InvalidParameterValueException: MemorySize must be >= 128)." in text
    )
    points_tables = [o for o in outputs if isinstance(o, pd.DataFrame) and "failed_stage" in o]
    assert points_tables and list(points_tables[0]["status"]) == ["failed", "failed"]  # the failures are listed


def test_the_memory_page_when_the_sweep_failed_but_the_default_check_point_ran(tmp_path):
    run = _run(tmp_path)
    _declare(run, ["memory"])
    _failed(run, 1, "memory", {"memory_mb": {"*": 128}})
    inv = _invocations({"resnet": (4000.0, 300.0, 100.0, 1280), "flip": (50.0, 20.0, 10.0, 512)})
    _write_point(run, 2, "memory", {"memory_choice": "default"}, {"memory_choice": "default", "memory_mb": {}}, inv)
    outputs = run_page("e2_memory", run.dir)
    assert not [o for o in outputs if isinstance(o, Figure)]
    assert "No memory-sweep points in this run: all 1 failed (point 1 in deploy:" in markdown_of(outputs)
    assert "nan" not in markdown_of(outputs)


def test_the_estimate_at_sizes_nobody_chose_is_not_zero(tmp_path):
    """A choice with no size (the sweep chose none) is not estimated at 0 ms and 0 USD."""
    run = _run(tmp_path)
    for k, mb in ((1, 512), (2, 1024)):
        _write_point(
            run, k, "memory", {"memory_mb.*": mb}, {"memory_mb": {"*": mb}}, _invocations({"flip": (5, 2, 1, mb)})
        )
    table = experiment_memory.memory_table(
        load_points(run.dir), {"prices": {"lambda_x86_64_usd_per_gb_s": 1e-5, "lambda_usd_per_million_requests": 0.2}}
    )
    at = experiment_memory.workflow_at_sizes(table, {"default": {"flip": 512}, "balanced": {}})
    assert at.loc["default", "wf2_lambda_ms"] > 0
    assert pd.isna(at.loc["balanced", "wf2_lambda_ms"]) and pd.isna(at.loc["balanced", "usd_per_million"])
    assert not any("balanced" in line for line in experiment_memory.memory_conclusions(pd.DataFrame(), at))


def test_the_discussion_page_on_a_run_without_points(tmp_path):
    run = _run(tmp_path)
    _declare(run, [])
    outputs = run_page("e9_discussion", run.dir)
    table = next(o for o in outputs if isinstance(o, pd.DataFrame))
    assert (table["this_run"] == "").all()


def test_the_sentence_names_the_first_failure_or_that_there_was_no_point():
    assert experiment_common.missing_points([], "load-step", "load") == (
        "No load-step points in this run: the run has no point of the experiment 'load' "
        "(not declared by its profile, or left out by --experiment, or not reached)."
    )
