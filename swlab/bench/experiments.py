"""Benchmark of the experiments runner (``scripts/bench-experiments``): a whole experiments profile, measured.

``--quick`` runs ``profiles/experiments-ci.yaml`` (every experiment kind, a few points, a few minutes);
without it, ``profiles/experiments.yaml`` (about 30 minutes). The book is not built (``--book`` builds it).
``--from RUN_DIR`` runs nothing: it prints the figures of an experiments run already in ``RUN_DIR``.
Prints ``name: value`` lines, every figure from the run directory through the analyses the book's
pages use (:func:`figures`):

- ``experiments_points``: points planned and run; ``experiments_failed_points`` (target 0);
- ``cold_samples_min``: the fewest cold starts measured for one function (target >= 20 in the full profile);
  ``cold_total_ms_<model>``: each model's cold request, Init + Duration (median), without provisioned concurrency;
- ``wf2_cold_<client|execution>_ms_<without|provisioned>``: Workflow 2's first request after every function
  was forced cold, without and with provisioned concurrency on the models (medians), and
  ``provisioned_speedup`` (without ÷ with, on the execution's time, else the client's);
- ``memory_sizes``: memory sizes at which the memory sweep measured warm invocations;
- ``memory_verify_<choice>``: Workflow 2 measured at the sweep's check points (balanced, default) beside the
  estimate from the per-function medians; ``memory_verify_error_pct_max``: the largest gap, in % of the
  measured time (the estimate counts Lambda time on the critical path only, not the orchestration);
- ``drain_wait_s``: how long the runner waited, over all load points, for the executions a load started to
  end before collecting (its longest wait, and ``running_at_collect``: those still running when it gave up);
- ``experiments_estimate_s``: the planner's estimate for the points alone, printed before the run starts;
  ``experiments_points_s``: the points' measured time (their stage), ``estimate_ratio``: points ÷ estimate;
  ``experiments_wall_s``: the command's wall time, set-up, points, analyses and teardown included.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from swlab.analysis.experiment_cold import cold_start_table, has_provisioned, provisioned_table
from swlab.analysis.experiment_common import MODELS
from swlab.analysis.experiment_memory import (
    default_sizes,
    memory_choices,
    memory_measured,
    memory_table,
    sizes_by_choice,
    workflow_at_sizes,
)
from swlab.analysis.points import PointData, load_points, run_manifest
from swlab.analysis.prices import load_prices
from swlab.run.experiments import estimate_seconds, plan_points
from swlab.run.profiles import load_profile
from swlab.run.sweep import run_experiments


def _num(value: Any, digits: int = 0) -> str:
    """A figure, or ``n/a`` when it was not measured (NaN or missing)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(v) else f"{v:.{digits}f}"


def cold_figures(points: list[PointData]) -> list[tuple[str, str]]:
    cold_points = [p for p in points if p.record.get("analysis") == "cold_starts"]
    cold = cold_start_table(cold_points)
    out = [("cold_samples_min", str(int(cold["cold_n"].min())) if len(cold) else "0")]
    out += [(f"cold_total_ms_{m}", _num(cold.loc[m, "cold_total_ms"])) for m in MODELS if m in cold.index]
    without = [p for p in cold_points if not has_provisioned(p)]
    provisioned = [p for p in cold_points if has_provisioned(p)]
    if not provisioned:
        return out + [("provisioned_speedup", "n/a (no point with provisioned concurrency)")]
    pc = provisioned_table(without, provisioned)
    label = "with provisioned concurrency"
    speedup = "n/a"
    for name in ("client", "execution"):
        col = f"{name}_cold_ms"
        w = pc.loc["without", col] if col in pc else math.nan
        p = pc.loc[label, col] if col in pc else math.nan
        out += [(f"wf2_cold_{name}_ms_without", _num(w)), (f"wf2_cold_{name}_ms_provisioned", _num(p))]
        if _num(w) != "n/a" and _num(p) != "n/a" and float(p) > 0:
            speedup = f"{float(w) / float(p):.1f}x ({name}; models {pc.loc[label, 'provisioned']})"
    return out + [("provisioned_speedup", speedup)]


def memory_figures(points: list[PointData], manifest: dict[str, Any]) -> list[tuple[str, str]]:
    memory = [p for p in points if p.record.get("analysis") == "memory"]
    prices = load_prices()
    table = memory_table(memory, prices)
    sizes = sorted({int(s) for s in table.loc[table["warm_ok"].fillna(0) > 0, "memory_mb"]})
    out = [("memory_sizes", f"{len(sizes)} ({', '.join(str(s) for s in sizes)} MB)" if sizes else "0 (none)")]
    at_sizes = workflow_at_sizes(table, sizes_by_choice(memory_choices(table), default_sizes(manifest)))
    measured = memory_measured(memory, prices, at_sizes)
    errors = []
    for choice, r in measured.iterrows():
        got, est = r.get("measured_e2e_p50_ms", math.nan), r.get("estimated_lambda_ms", math.nan)
        err = 100 * (float(est) / float(got) - 1) if _num(got) != "n/a" and _num(est) != "n/a" else math.nan
        if not math.isnan(err):
            errors.append(err)
        out.append(
            (
                f"memory_verify_{choice}",
                f"measured {_num(got)} ms end to end (median execution), estimated {_num(est)} ms of Lambda "
                f"({_num(err)} %); {_num(r.get('measured_lambda_usd_per_million'), 2)} USD per million runs measured, "
                f"{_num(r.get('estimated_usd_per_million'), 2)} estimated [{r.get('status')}]",
            )
        )
    worst = max(errors, key=abs) if errors else math.nan
    return out + [("memory_verify_error_pct_max", _num(worst))]


def drain_figures(points: list[PointData]) -> list[tuple[str, str]]:
    """The drain wait of every load point, from its record's ``drained`` (seconds waited, executions still
    running when the runner gave up): what the load page's table shows as ``drain_s``, without its latencies."""
    waits: list[tuple[float, int, PointData]] = []
    for p in points:
        drained = p.record.get("drained") or {}
        if p.ok and p.record.get("mode", "load") == "load" and drained.get("waited_s") is not None:
            waits.append((float(drained["waited_s"]), int(drained.get("running", 0)), p))
    if not waits:
        return [("drain_wait_s", "n/a (no load point recorded a drain)")]
    seconds, _, worst = max(waits, key=lambda w: w[0])
    axes = " ".join(f"{k}={v}" for k, v in worst.axes.items())
    where = f"point {worst.record.get('index')}, {worst.record.get('experiment')}" + (f" {axes}" if axes else "")
    return [
        (
            "drain_wait_s",
            f"{sum(w[0] for w in waits):.1f} over {len(waits)} load points (longest {seconds:.1f} s: {where})",
        ),
        ("running_at_collect", str(sum(w[1] for w in waits))),
    ]


def time_figures(manifest: dict[str, Any], wall_s: float | None) -> list[tuple[str, str]]:
    estimate = (manifest.get("experiments") or {}).get("estimate_s")
    points_s = next((s.get("seconds") for s in manifest.get("stages") or [] if s.get("name") == "points"), None)
    known = _num(points_s) != "n/a" and _num(estimate) != "n/a"
    ratio = float(points_s or 0) / float(estimate or 1) if known else math.nan
    out = [
        ("experiments_estimate_s", _num(estimate)),
        ("experiments_points_s", _num(points_s)),
        ("estimate_ratio", _num(ratio, 2)),
    ]
    return out + [("experiments_wall_s", _num(wall_s if wall_s is not None else manifest.get("total_seconds")))]


def figures(run_dir: str | Path, wall_s: float | None = None) -> list[tuple[str, str]]:
    """Every figure of the experiments run in ``run_dir``, from the directory alone, as (name, value) lines.

    ``wall_s``: the command's wall time; without it, the run's recorded ``total_seconds`` (set-up to teardown).
    """
    points = load_points(run_dir)
    manifest = run_manifest(run_dir)
    return [
        ("run_dir", str(run_dir)),
        ("experiments_points", str(len(points))),
        ("experiments_failed_points", str(sum(not p.ok for p in points))),
        *cold_figures(points),
        *memory_figures(points, manifest),
        *drain_figures(points),
        *time_figures(manifest, wall_s),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the CI profile (experiments-ci)")
    ap.add_argument("--book", action="store_true", help="also build the book")
    ap.add_argument("--run-dir", default="")
    ap.add_argument("--from", dest="from_dir", default="", help="print the figures of this run; run nothing")
    args = ap.parse_args(argv)
    if args.from_dir:
        if not (Path(args.from_dir) / "manifest.json").is_file():
            print(f"error: {args.from_dir} is not a run directory (no manifest.json)", file=sys.stderr)
            return 2
        for name, value in figures(args.from_dir):
            print(f"{name}: {value}")
        return 0
    profile = load_profile("experiments-ci" if args.quick else "experiments")
    estimate = sum(estimate_seconds(plan_points(profile.experiments, profile.parameters)))
    print(f"experiments_estimate_s: {estimate:.0f} (before starting)", file=sys.stderr)
    started = time.monotonic()
    result = run_experiments(
        profile, run_dir=args.run_dir, build_book=args.book, say=lambda line: print(line, file=sys.stderr)
    )
    wall = time.monotonic() - started
    for name, value in figures(result.run.dir, wall):
        print(f"{name}: {value}")
    print(f"stages_ok: {result.ok}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
