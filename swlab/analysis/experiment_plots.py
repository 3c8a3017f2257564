"""The figure a reader looks at first on each experiment's page (pure: tables in, matplotlib figures out).

Each returns ``None`` when its table has nothing to draw (no point of the experiment, or none that
measured): the page then shows no empty plot, only the sentence of
:func:`swlab.analysis.experiment_common.missing_points`.
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure


def _figure(width: float = 9.0, height: float = 4.0, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _err(df: pd.DataFrame, name: str) -> list[list[float]]:
    mid, lo, hi = df[f"{name}_ms"], df[f"{name}_lo"], df[f"{name}_hi"]
    return [(mid - lo).clip(lower=0).fillna(0).tolist(), (hi - mid).clip(lower=0).fillna(0).tolist()]


def cold_start_plot(table: pd.DataFrame) -> Figure | None:
    """Per function: Init Duration, first (cold) Duration and warm Duration, medians with 95 % CIs (log scale)."""
    if not len(table):
        return None
    fig, (ax,) = _figure(10, 4.5)
    x = range(len(table))
    for i, (name, label) in enumerate(
        (
            ("init", "Init Duration (reported)"),
            ("cold_total", "cold request: Init + Duration"),
            ("warm_duration", "warm"),
        )
    ):
        ax.bar(
            [v + (i - 1) * 0.27 for v in x], table[f"{name}_ms"], 0.27, yerr=_err(table, name), label=label, capsize=2
        )
    ax.set_xticks(list(x), table.index, rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("ms (median, 95 % CI)")
    ax.set_title(f"Cold vs warm per function ({int(table['cold_n'].min())}+ forced cold starts each)")
    ax.legend()
    return fig


def power_tuning_plot(table: pd.DataFrame) -> Figure | None:
    """Power Tuning's view per function: warm duration (line) and cost per invocation (dashed) against memory."""
    fns = sorted(set(table["function"]) - {"(point failed)"}) if len(table) else []
    if not fns:
        return None
    data = table.dropna(subset=["duration_ms"])
    ncols = 4
    nrows = max(1, math.ceil(len(fns) / ncols))
    fig = Figure(figsize=(12, 2.6 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, fn in zip(axes, fns):
        g = data[data["function"] == fn].sort_values("memory_mb")
        ax.plot(g["memory_mb"], g["duration_ms"], "o-", color="tab:blue")
        for mb in sorted(set(table.loc[(table["function"] == fn) & (table["oom"].fillna(0) > 0), "memory_mb"])):
            ax.axvline(mb, color="gray", linestyle=":")
            ax.annotate("OOM", (mb, 0.5), xycoords=("data", "axes fraction"), rotation=90, fontsize=7, color="gray")
        ax.set_xscale("log", base=2)
        ax.set_title(fn, fontsize=9)
        ax.set_ylabel("ms", color="tab:blue", fontsize=8)
        ax2 = ax.twinx()
        ax2.plot(g["memory_mb"], g["usd_per_invocation"] * 1e6, "s--", color="tab:red")
        ax2.set_ylabel("USD / 1M", color="tab:red", fontsize=8)
        ax.tick_params(labelsize=7)
        ax2.tick_params(labelsize=7)
    for ax in axes[len(fns) :]:
        ax.axis("off")
    fig.suptitle(
        "Warm duration (blue) and cost per million invocations (red) against memory size (MB); OOM: out of memory"
    )
    return fig


def workflow_type_plot(table: pd.DataFrame) -> Figure | None:
    if not len(table):
        return None
    fig, (a, b) = _figure(10, 4, 2)
    x = list(table.index)
    a.bar(
        x,
        table["e2e_p50_ms"],
        yerr=_err(
            table.rename(columns={"e2e_p50_ms": "e2e_ms", "e2e_p50_lo": "e2e_lo", "e2e_p50_hi": "e2e_hi"}), "e2e"
        ),
        capsize=3,
        label="p50",
    )
    a.scatter(x, table["e2e_p99_ms"], color="black", zorder=3, label="p99")
    a.set_ylabel("Workflow 2 execution, ms")
    a.legend()
    b.bar(x, table["usd_per_million"], color="tab:orange")
    b.set_ylabel("USD per million runs (measured usage)")
    a.set_title("End to end")
    b.set_title("Cost")
    return fig


def load_curve_plot(table: pd.DataFrame) -> Figure | None:
    """p50 and p99 (with CIs) against the arrival rate; throttled and failed requests on a second axis."""
    if not len(table) or "p50_ms" not in table:
        return None
    fig, (ax,) = _figure(9, 4.5)
    for name, marker in (("p50", "o-"), ("p99", "s-")):
        ax.errorbar(table["rate_per_s"], table[f"{name}_ms"], yerr=_err(table, name), fmt=marker, capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("arrival rate, requests/s (open model)")
    ax.set_ylabel("client latency, ms")
    ax2 = ax.twinx()
    ax2.bar(
        table["rate_per_s"],
        table["throttled"],
        width=table["rate_per_s"] * 0.15,
        color="tab:red",
        alpha=0.4,
        label="throttled (429)",
    )
    ax2.bar(
        table["rate_per_s"] * 1.18,
        table["errors"],
        width=table["rate_per_s"] * 0.15,
        color="black",
        alpha=0.4,
        label="errors",
    )
    ax2.set_ylabel("requests")
    ax.legend(loc="upper left")
    ax2.legend(loc="upper right")
    ax.set_title("Where latency bends")
    return fig


def architecture_plot(table: pd.DataFrame) -> Figure | None:
    if not len(table):
        return None
    fig, (ax,) = _figure(9, 4)
    x = range(len(table))
    ax.bar([v - 0.2 for v in x], table["x86_64"], 0.4, label="x86_64")
    ax.bar([v + 0.2 for v in x], table["arm64"], 0.4, label="arm64")
    ax.set_xticks(list(x), table.index)
    ax.set_ylabel("USD per million runs")
    ax.legend()
    ax.set_title("The same measured usage priced on each architecture")
    return fig
