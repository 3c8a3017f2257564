"""What every experiment's tables share: the points' invocations, the measured window, medians with intervals.

Pure: no files, no cloud. The experiments' analyses are one module per page of the book's
Experiments part, each reading :class:`swlab.analysis.points.PointData` (loaded from a run directory
by :mod:`swlab.analysis.points`): :mod:`~swlab.analysis.experiment_cold` (cold starts, provisioned
concurrency), :mod:`~swlab.analysis.experiment_memory` (the memory sweep and its check points),
:mod:`~swlab.analysis.experiment_cost` (Standard vs Express, x86_64 vs arm64: priced usage),
:mod:`~swlab.analysis.experiment_load` (the load steps), :mod:`~swlab.analysis.experiment_discussion`
(this run beside the published anchors); their figures are :mod:`swlab.analysis.experiment_plots`'.
Every conclusion sentence is computed from the tables (each module's ``*_conclusions``), never
written by hand; medians come with distribution-free confidence intervals (:mod:`swlab.analysis.stats`).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import pandas as pd

from swlab.analysis import stats
from swlab.analysis.points import PointData

# Workflow 2's functions in the order a request meets them; the three models run in parallel.
WF2_CHAIN = ("fetch_image", "grayscale", "flip", "rotate", "resize", ("alexnet", "resnet", "mobilenet"), "aggregate")
WF2_TAIL = ("update",)
MODELS = ("alexnet", "resnet", "mobilenet")
POINT_COLUMNS = ("point", "repetition", "status", "failed_stage", "error", "seconds")  # and the axes


def short(function: str, stack: str) -> str:
    """A function's name without its stack's prefix (``swlabx-resnet`` → ``resnet``)."""
    return function.removeprefix(f"{stack}-")


def measured_since(df: pd.DataFrame, column: str, iso: str | None) -> pd.DataFrame:
    """The rows of ``df`` whose ``column`` (a time) is at or after ``iso`` (a point's ``measured_from``)."""
    if not iso or column not in df or not len(df):
        return df
    t = pd.Timestamp(iso)
    col = pd.to_datetime(df[column], utc=True)
    return df[col >= (t if t.tzinfo else t.tz_localize("UTC"))]


def median_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    x = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return stats.percentile_ci(x, 0.5, confidence) if x else (math.nan, math.nan, math.nan)


def points_table(points: list[PointData]) -> pd.DataFrame:
    """One row per point: index, axes, status, failed stage, error, seconds."""
    rows = []
    for p in points:
        r = p.record
        rows.append(
            {
                "point": r.get("index"),
                **{k: _fmt(v) for k, v in p.axes.items()},
                "repetition": r.get("repetition"),
                "status": r.get("status"),
                "failed_stage": r.get("stage"),
                "error": r.get("error"),
                "seconds": round(sum((r.get("seconds") or {}).values()), 1),
            }
        )
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(POINT_COLUMNS))


def missing_points(points: list[PointData], what: str, experiment: str) -> str:
    """``""`` when one of ``points`` was measured; else the one sentence a page shows instead of its figures.

    ``what`` names the points on the page ("memory-sweep"): the run has none of ``experiment``'s
    (its profile did not declare it, ``--experiment`` left it out, or the run stopped before it), or
    every one failed (the sentence quotes the first failure's stage and error, as the points table has it).
    """
    if any(p.ok for p in points):
        return ""
    head = f"No {what} points in this run: "
    if not points:
        return (
            head + f"the run has no point of the experiment '{experiment}' "
            "(not declared by its profile, or left out by --experiment, or not reached)."
        )
    failed = [p.record for p in points if p.record.get("status") == "failed"]
    if len(failed) == len(points):
        r = failed[0]
        return head + f"all {len(points)} failed (point {r.get('index')} in {r.get('stage')}: {r.get('error')})."
    r = next(p.record for p in points if p.record.get("status") != "failed")
    return (
        head + f"none of its {len(points)} points has collected data "
        f"(point {r.get('index')} is {r.get('status') or 'without a status'})."
    )


def conclusion_markdown(missing: str, lines: list[str]) -> str:
    """A page's conclusion: the sentence of :func:`missing_points` when it has no data, else one bullet per line."""
    return missing or "\n".join(f"- {line}" for line in lines)


def _fmt(v: Any) -> Any:
    return v if isinstance(v, (int, float, str)) else str(v)


def invocations_of(points: list[PointData], since_measured: bool = False) -> pd.DataFrame:
    """All points' invocations with ``fn`` (the short name), ``point``, and who was a cold start.

    ``new_env``: the first invocation of its environment (log stream) in the point's data;
    ``suppressed_init``: such an invocation without an Init Duration — its init outlasted Lambda's
    10 s limit and ran again inside the invocation, so its Duration holds the init;
    ``cold_start``: either kind (``cold`` alone counts only the ones that reported an Init Duration).
    """
    frames = []
    for p in points:
        inv = p.table("invocations")
        if not len(inv):
            continue
        inv = inv.assign(fn=inv["function"].map(lambda f, s=p.stack: short(f, s)), point=p.record.get("index"))
        cold = inv["cold"].fillna(False).astype(bool)
        if "log_stream" in inv:
            first = inv.groupby(["function", "log_stream"])["start_time"].transform("min")
            new_env = (inv["start_time"] == first).to_numpy()
        else:
            new_env = cold.to_numpy()
        inv = inv.assign(
            new_env=new_env, suppressed_init=new_env & ~cold.to_numpy(), cold_start=new_env | cold.to_numpy()
        )
        if since_measured:
            inv = measured_since(inv, "start_time", p.record.get("measured_from"))
        frames.append(inv)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
