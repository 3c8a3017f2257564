"""Plots of a run. Each function takes analysis tables and returns a matplotlib ``Figure``
(built without pyplot: no global state, works on any backend; notebooks display it).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from swlab.analysis.cost import per_million_runs
from swlab.analysis.stats import QUANTILES, percentile_ci

COLD, WARM = "tab:red", "tab:blue"


def _legend(ax, **kwargs) -> None:
    """A legend when something is labelled; otherwise say there is no data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")


def _short(name: str) -> str:
    return name.split("-", 1)[1] if "-" in name else name


def cold_start_timeline(invocations: pd.DataFrame, functions: list[str] | None = None) -> Figure:
    """Per function: each invocation's Duration over time, cold starts marked, their Init Duration shown."""
    functions = functions or sorted(invocations["function"].unique())
    fig = Figure(figsize=(10, 1.8 * max(len(functions), 1) + 0.8), layout="constrained")
    axes = fig.subplots(max(len(functions), 1), 1, sharex=True, squeeze=False)[:, 0]
    for ax, fn in zip(axes, functions):
        g = invocations[invocations["function"] == fn]
        warm, cold = g[~g["cold"]], g[g["cold"]]
        ax.scatter(warm["start_time"], warm["duration_ms"], s=8, color=WARM, label="warm: Duration")
        ax.scatter(cold["start_time"], cold["duration_ms"], s=30, marker="^", color=COLD, label="cold: Duration")
        ax.scatter(
            cold["start_time"], cold["init_duration_ms"], s=30, marker="x", color="black", label="cold: Init Duration"
        )
        ax.set_yscale("log")
        ax.set_ylabel("ms")
        ax.set_title(f"{_short(fn)}: {len(cold)} cold of {len(g)}", fontsize=9, loc="left")
    _legend(axes[0], fontsize=7, loc="upper right")
    axes[-1].set_xlabel("invocation start (UTC)")
    fig.suptitle("Lambda invocations over time, cold starts marked")
    return fig


def cold_start_cost_plot(cost: pd.DataFrame) -> Figure:
    """Per function, a cold start's cost as stacked bars: Init Duration, then the extra Duration of
    the first invocation over a warm one (from :func:`swlab.analysis.stats.cold_start_cost`)."""
    fig = Figure(figsize=(8, 0.45 * max(len(cost), 1) + 1.4), layout="constrained")
    ax = fig.subplots()
    names = [_short(fn) for fn in cost.index]
    init = cost["init_ms"].to_numpy(dtype=float) if len(cost) else np.array([])
    extra = cost["extra_duration_ms"].fillna(0).to_numpy(dtype=float) if len(cost) else np.array([])
    if len(cost):
        ax.barh(names, init, color="black", label="Init Duration")
        ax.barh(names, extra, left=init, color=COLD, label="extra Duration of the first invocation")
        ax.invert_yaxis()
    ax.set_xlabel("ms (medians)")
    _legend(ax, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("What a cold start costs, per function")
    return fig


def latency_cdf(samples: Mapping[str, pd.Series]) -> Figure:
    """Empirical CDF of latency for each named sample (e.g. client and server side)."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for name, s in samples.items():
        x = np.sort(pd.Series(s, dtype=float).dropna().to_numpy())
        if len(x):
            ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=f"{name} (n={len(x)})")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of requests ≤ latency")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, fontsize=8)
    ax.set_title("End-to-end latency CDF")
    return fig


def latency_percentiles(samples: Mapping[str, pd.Series], quantiles=QUANTILES, confidence: float = 0.95) -> Figure:
    """Percentiles with their distribution-free confidence intervals (error bars) per sample."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    labels = [f"p{round(q * 100)}" for q in quantiles]
    for i, (name, s) in enumerate(samples.items()):
        est = np.array([percentile_ci(s, q, confidence) for q in quantiles])
        lo = np.nan_to_num(est[:, 0] - est[:, 1], nan=0.0)
        hi = np.nan_to_num(est[:, 2] - est[:, 0], nan=0.0)
        x = np.arange(len(quantiles)) + 0.1 * i
        ax.errorbar(x, est[:, 0], yerr=[lo, hi], fmt="o", capsize=4, label=name)
    ax.set_xticks(np.arange(len(quantiles)), labels)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"Latency percentiles, {confidence:.0%} CIs (missing bar: sample too small)")
    _legend(ax, fontsize=8)
    return fig


def latency_over_time(latency: pd.DataFrame, window: str = "10s") -> Figure:
    """Latency of each request over time (failures as crosses) with a rolling median per label.

    The median line is broken where no request started for longer than ``window``
    (e.g. between the smoke test and the load test), instead of bridging the gap.
    """
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    for label, g in latency.groupby("label"):
        g = g.sort_values("time")
        ok = g["success"].astype(bool)
        points = ax.scatter(g.loc[ok, "time"], g.loc[ok, "latency_ms"], s=6, alpha=0.5, label=f"{label}")
        ax.scatter(g.loc[~ok, "time"], g.loc[~ok, "latency_ms"], s=20, marker="x", color=COLD)
        med = g.set_index("time")["latency_ms"].rolling(window).median()
        segment = (med.index.to_series().diff() > pd.Timedelta(window)).cumsum().to_numpy()
        colour = tuple(points.get_facecolor()[0][:3]) if len(points.get_offsets()) else None  # type: ignore[index, arg-type]
        for i, (_, part) in enumerate(med.groupby(segment)):
            ax.plot(
                part.index,
                part.to_numpy(),
                linewidth=1.5,
                color=colour,
                label=f"{label} rolling median ({window})" if i == 0 else None,
            )
    ax.set_yscale("log")
    ax.set_xlabel("request start (UTC)")
    ax.set_ylabel("latency (ms)")
    _legend(ax, fontsize=7)
    ax.set_title("Latency over time (x = failed)")
    return fig


def throughput_plot(tp: pd.DataFrame) -> Figure:
    """Started and completed per second per interval, errors and throttles on the same axis."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    t = tp.index
    ax.step(t, tp["started_per_s"], where="post", label="started")
    ax.step(t, tp["completed_per_s"], where="post", label="completed")
    width = (t[1] - t[0]) if len(t) > 1 else pd.Timedelta(seconds=1)
    ax.bar(t, tp["errors_per_s"], width=width * 0.4, align="edge", color=COLD, alpha=0.7, label="errors")
    ax.bar(
        t + width * 0.4,
        tp["throttles_per_s"],
        width=width * 0.4,
        align="edge",
        color="tab:orange",
        alpha=0.7,
        label="throttles",
    )
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("per second")
    _legend(ax, fontsize=8)
    ax.set_title("Throughput")
    return fig


def gantt(states: pd.DataFrame, executions: pd.DataFrame, n: int = 3) -> Figure:
    """Per-state bars of ``n`` executions (the first ones), relative to each execution's start."""
    arns = list(executions.sort_values("start_date")["execution_arn"].head(n))
    fig = Figure(figsize=(10, 1.2 + 2.2 * max(len(arns), 1)), layout="constrained")
    axes = fig.subplots(max(len(arns), 1), 1, sharex=True, squeeze=False)[:, 0]
    for ax, arn in zip(axes, arns):
        t0 = pd.to_datetime(executions.set_index("execution_arn").loc[arn, "start_date"], utc=True)
        g = states[states["execution_arn"] == arn].sort_values("entered")
        start = (pd.to_datetime(g["entered"], utc=True) - t0).dt.total_seconds()
        width = g["duration_ms"].fillna(0) / 1000
        colors = [
            ("lightgray" if t in ("Parallel", "Map") else COLD if s == "failed" else WARM)
            for t, s in zip(g["state_type"], g["status"])
        ]
        ax.barh(range(len(g)), width, left=start, color=colors)
        if "lambda_duration_ms" in g:  # drawn against the state's end: Init Duration, then Duration
            dur = g["lambda_duration_ms"].fillna(0) / 1000
            init = g["lambda_init_ms"].fillna(0) / 1000 if "lambda_init_ms" in g else dur * 0
            ax.barh(range(len(g)), dur, left=start + width - dur, height=0.35, color="navy")
            ax.barh(range(len(g)), init, left=start + width - dur - init, height=0.35, color="orange")
        ax.set_yticks(range(len(g)), g["state"], fontsize=7)
        ax.invert_yaxis()
        ax.set_ylabel("state")
        ax.set_title(arn.rsplit(":", 1)[-1], fontsize=8, loc="left")
    axes[-1].set_xlabel("time since execution start (s)")
    axes[0].legend(
        handles=[
            Patch(color=WARM, label="state"),
            Patch(color=COLD, label="state failed"),
            Patch(color="lightgray", label="Parallel/Map"),
            Patch(color="orange", label="Init Duration"),
            Patch(color="navy", label="Lambda Duration"),
        ],
        fontsize=7,
        loc="lower right",
    )
    fig.suptitle("Per-state timeline of Step Functions executions")
    return fig


def critical_path_plot(median_path: pd.DataFrame) -> Figure:
    """Median time of each critical-path state, with the median Lambda Duration inside it."""
    fig = Figure(figsize=(8, 0.4 * max(len(median_path), 1) + 1.5), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(median_path))
    ax.barh(y, median_path["duration_ms"], color="lightsteelblue", label="state (Step Functions)")
    if "lambda_duration_ms" in median_path:
        ax.barh(y, median_path["lambda_duration_ms"].fillna(0), height=0.4, color="navy", label="Lambda Duration")
    ax.set_yticks(y, median_path["state"], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("median time (ms)")
    ax.set_ylabel("state on the critical path")
    _legend(ax, fontsize=8)
    ax.set_title("Median critical path")
    return fig


def errors_plot(errors: pd.DataFrame) -> Figure:
    """Error counts per function, stacked by error type (throttles included)."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    if len(errors):
        table = errors.assign(error_type=errors["error_type"].fillna("unknown")).pivot_table(
            index="function", columns="error_type", values="count", aggfunc="sum", fill_value=0
        )
        bottom = np.zeros(len(table))
        for col in table.columns:
            ax.bar([_short(f) for f in table.index], table[col], bottom=bottom, label=col)
            bottom += table[col].to_numpy()
        _legend(ax, fontsize=8)
    else:
        ax.text(0.5, 0.5, "no errors or throttles", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("function")
    ax.set_ylabel("count")
    ax.set_title("Errors and throttles")
    return fig


def cost_breakdown_plot(costs: pd.DataFrame, per_million: bool = True) -> Figure:
    """Stacked bars by service for each workflow (and Step Functions variant): USD per 1M runs or per run."""
    pm = per_million_runs(costs)
    value = "usd_per_million_runs" if per_million else "usd_per_run"
    bars: dict[str, pd.Series] = {}
    for wf, g in pm.groupby("workflow"):
        variants = sorted(set(g["variant"]) - {"all"}) or ["all"]
        for v in variants:
            sel = g[g["variant"].isin(["all", v])]
            bars[wf if v == "all" else f"{wf}\n(SFN {v})"] = sel.groupby("service")[value].sum()
    table = pd.DataFrame(bars).fillna(0).T
    fig = Figure(figsize=(9, 1.0 + 0.7 * max(len(table), 1)), layout="constrained")
    ax = fig.subplots()
    left = np.zeros(len(table))
    for service in table.columns:
        ax.barh(list(table.index), table[service], left=left, label=service)
        left += table[service].to_numpy()
    ax.set_xlabel("USD per 1,000,000 runs" if per_million else "USD per run")
    ax.set_ylabel("workflow")
    _legend(ax, fontsize=8)
    src = costs.attrs.get("prices_source", "?")
    ax.set_title(
        f"Cost breakdown (prices: {src}, {costs.attrs.get('prices_as_of', '?')}; free tier not subtracted)", fontsize=9
    )
    return fig
