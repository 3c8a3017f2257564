"""The CI experiments profile end to end: every experiment kind's points, their pages, the book.

``profiles/experiments-ci.yaml`` on a fresh local cloud (its own, started and stopped by the run):
12 points, none failed (among them a forced cold start with provisioned concurrency on the models, and
Workflow 2 measured at the sweep's balanced sizes and at the defaults), each a run directory with its configuration and data; the analyses re-run
from the run directory alone; the book's Experiments part with its figures. About 14 minutes on the
project's 2-core machine at load average 7 (measured: scripts/bench-experiments --quick, 821 s wall; the
points' wait for Workflow 2's executions to end before collecting takes up to 1.5 min at 512 MB), so it
has its own timeout above the suite's 600 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swlab.analysis import experiment_cold as cold_ex
from swlab.analysis import experiment_cost as cost_ex
from swlab.analysis import experiment_load as load_ex
from swlab.analysis import experiment_memory as memory_ex
from swlab.analysis.points import load_points
from swlab.analysis.prices import load_prices
from swlab.run import book
from swlab.run.profiles import load_profile
from swlab.run.records import PointRecord
from swlab.run.rundir import RunDir
from swlab.run.sweep import run_experiments

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1800)
def test_experiments_ci_profile_runs_every_point_and_builds_its_book(tmp_path):
    said: list[str] = []
    result = run_experiments(load_profile("experiments-ci", ROOT), run_dir=tmp_path / "x", root=ROOT, say=said.append)
    assert result.ok, "\n".join(said[-40:])
    assert any(line.startswith("[point 12/12]") and "left" in line for line in said)
    points = load_points(result.run.dir)
    assert len(points) == 12 and all(p.ok for p in points), [p.record.get("error") for p in points]
    for k in range(1, 13):
        prun = RunDir(result.run.point(k).dir)
        assert prun.load(PointRecord).status == "ok"
        assert (prun.data_dir / "invocations.parquet").is_file()
        assert prun.manifest()["parameters"] == prun.load(PointRecord).config
    cold = cold_ex.cold_start_table([p for p in points if p.record["analysis"] == "cold_starts"])
    assert cold["cold_n"].min() >= 2
    assert set(
        cost_ex.workflow_type_table([p for p in points if p.record["analysis"] == "workflow_type"], load_prices()).index
    ) == {
        "EXPRESS",
        "STANDARD",
    }
    load = load_ex.load_table([p for p in points if p.record["analysis"] == "load"])
    assert list(load["recorded"]) == list(load["planned"])  # nothing lost
    assert (load["running_at_collect"] == 0).all() and (load["executions_unfinished"] == 0).all()  # waited for
    for p in [p for p in points if "wf2" in p.config["workflows"] and p.record["mode"] == "load"]:
        assert p.record["drained"]["listed"] and p.record["drained"]["running"] == 0
    checks = {p.config["memory_choice"]: p for p in points if p.config.get("memory_choice")}
    assert set(checks) == {"balanced", "default"}
    assert checks["balanced"].config["memory_mb"] and set(checks["balanced"].config["memory_mb"].values()) <= {
        512,
        1536,
    }
    prices = load_prices()
    sweep = [p for p in points if p.record["analysis"] == "memory"]
    at_sizes = memory_ex.workflow_at_sizes(memory_ex.memory_table(sweep, prices), {"balanced": {}, "default": {}})
    measured = memory_ex.memory_measured(sweep, prices, at_sizes)
    assert (measured["measured_e2e_p50_ms"] > 0).all() and (measured["measured_lambda_usd_per_million"] > 0).all()
    cold_points = [p for p in points if p.record["analysis"] == "cold_starts"]
    pc = cold_ex.provisioned_table(
        [p for p in cold_points if not cold_ex.has_provisioned(p)],
        [p for p in cold_points if cold_ex.has_provisioned(p)],
    )
    without, with_pc = pc["execution_cold_ms"]
    assert with_pc < without  # the models' provisioned environments take their inits out of the first request
    assert result.book_html is not None and result.book_html.is_file()
    for name in ("e1_cold_starts", "e2_memory", "e3_workflow_type", "e4_load", "e5_architecture", "e9_discussion"):
        assert (result.run.book_html / "notebooks" / f"{name}.html").is_file()
    assert book.expected_figures(result.run.executed_notebook("e2_memory.ipynb")) == 1
