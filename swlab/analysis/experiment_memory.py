"""The memory sweep: Power Tuning's view for every function, and Workflow 2 measured at the chosen sizes.

Pure: the tables and sentences of the memory page (``notebooks/experiments/e2_memory``): per function
and size the warm Duration and cost (:func:`memory_table`), the cheapest, fastest and balanced sizes
(:func:`memory_choices`, which the runner's check points deploy), Workflow 2 estimated at those sizes
(:func:`workflow_at_sizes`) and measured there by the check points (:func:`memory_measured`).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from swlab.analysis import cost, stats
from swlab.analysis.experiment_common import (
    MODELS,
    WF2_CHAIN,
    WF2_TAIL,
    invocations_of,
    measured_since,
    median_ci,
    missing_points,
)
from swlab.analysis.points import PointData

# memory_table's columns, and memory_choices' (a run without sweep points has them too, empty)
MEMORY_COLUMNS = (
    "function",
    "memory_mb",
    "invocations",
    "warm_ok",
    "errors",
    "oom",
    "duration_ms",
    "duration_lo",
    "duration_hi",
    "usd_per_invocation",
    "point",
)
CHOICE_COLUMNS = (
    "function",
    "cheapest_mb",
    "cheapest_usd",
    "fastest_mb",
    "fastest_ms",
    "balanced_mb",
    "balanced_ms",
    "balanced_usd",
    "oom_at_mb",
)


def missing_sweep_points(points: list[PointData], experiment: str) -> str:
    """The memory page's sentence when no sweep point measured (its check points do not count: they need the sweep's
    choices), else ``""`` (:func:`swlab.analysis.experiment_common.missing_points`)."""
    return missing_points([p for p in points if not is_memory_check(p)], "memory-sweep", experiment)


def memory_table(points: list[PointData], prices: dict[str, Any], confidence: float = 0.95) -> pd.DataFrame:
    """Per function and memory size: warm invocations, median Duration (CI), errors/OOMs, cost per invocation."""
    p_gb_s = prices["prices"]["lambda_x86_64_usd_per_gb_s"]
    p_req = prices["prices"]["lambda_usd_per_million_requests"] / 1e6
    rows = []
    for p in [p for p in points if not is_memory_check(p)]:
        size = _memory_of(p)
        inv = invocations_of([p], since_measured=True) if p.data is not None else pd.DataFrame()
        for fn, g in inv.groupby("fn", sort=True) if len(inv) else []:
            warm = g[~g["cold_start"]]
            good = warm[
                warm["status"].astype(object).fillna("").isin(["", "success", "ok"]) & warm["error_type"].isna()
            ]
            oom = int(
                (g["error_type"].astype(object).fillna("") == "Runtime.OutOfMemory").sum()
                + (g["status"] == "oom").sum()
            )
            est, lo, hi = median_ci(good["duration_ms"], confidence)
            billed = float(good["billed_duration_ms"].median()) if len(good) else math.nan
            mem = float(g["memory_size_mb"].astype(float).median())
            usd = billed / 1000 * mem / 1024 * p_gb_s + p_req if len(good) else math.nan
            rows.append(
                {
                    "function": fn,
                    "memory_mb": int(mem) if not math.isnan(mem) else size,
                    "invocations": len(g),
                    "warm_ok": len(good),
                    "errors": len(g) - int(g["error_type"].isna().sum()),
                    "oom": oom,
                    "duration_ms": est,
                    "duration_lo": lo,
                    "duration_hi": hi,
                    "usd_per_invocation": usd,
                    "point": p.record.get("index"),
                }
            )
        if not p.ok:
            rows.append({"function": "(point failed)", "memory_mb": size, "point": p.record.get("index")})
    return pd.DataFrame(rows, columns=list(MEMORY_COLUMNS))


def is_memory_check(p: PointData) -> bool:
    """A sweep's check point (``memory_choice``: the chosen sizes or the defaults, deployed and measured)."""
    return bool(p.config.get("memory_choice"))


def _memory_of(p: PointData) -> int | None:
    mem = p.config.get("memory_mb") or {}
    value = mem.get("*") if isinstance(mem, dict) else None
    return int(value) if isinstance(value, (int, float)) else None


def memory_choices(table: pd.DataFrame) -> pd.DataFrame:
    """Per function: the cheapest, the fastest and a balanced size (least cost/cheapest + time/fastest)."""
    rows = []
    ok = table.dropna(subset=["duration_ms", "usd_per_invocation"]) if len(table) else table
    for fn, g in ok.groupby("function", sort=True) if len(ok) else []:
        g = g[g["warm_ok"] > 0]
        if not len(g):
            continue
        cheap, fast = g.loc[g["usd_per_invocation"].idxmin()], g.loc[g["duration_ms"].idxmin()]
        score = g["usd_per_invocation"] / cheap["usd_per_invocation"] + g["duration_ms"] / fast["duration_ms"]
        bal = g.loc[score.idxmin()]
        failed = sorted(int(m) for m in table[(table["function"] == fn) & (table["oom"] > 0)]["memory_mb"])
        rows.append(
            {
                "function": fn,
                "cheapest_mb": int(cheap["memory_mb"]),
                "cheapest_usd": cheap["usd_per_invocation"],
                "fastest_mb": int(fast["memory_mb"]),
                "fastest_ms": fast["duration_ms"],
                "balanced_mb": int(bal["memory_mb"]),
                "balanced_ms": bal["duration_ms"],
                "balanced_usd": bal["usd_per_invocation"],
                "oom_at_mb": ", ".join(map(str, failed)) or "—",
            }
        )
    return pd.DataFrame(rows, columns=list(CHOICE_COLUMNS)).set_index("function")


def sizes_by_choice(choices: pd.DataFrame, defaults: dict[str, int]) -> dict[str, dict[str, int]]:
    """What :func:`workflow_at_sizes` estimates: the default sizes, then each choice's (cheapest, balanced, fastest)."""
    return {"default": defaults, **{c: choices[f"{c}_mb"].to_dict() for c in ("cheapest", "balanced", "fastest")}}


def _lookup(table: pd.DataFrame, fn: str, mb: int) -> tuple[float, float, int]:
    """(duration, usd) of ``fn`` at ``mb``, or at the nearest measured size (and which size that was)."""
    g = table[(table["function"] == fn) & table["duration_ms"].notna()]
    if not len(g):
        return math.nan, math.nan, mb
    row = g.iloc[(g["memory_mb"] - mb).abs().argmin()]
    return float(row["duration_ms"]), float(row["usd_per_invocation"]), int(row["memory_mb"])


def workflow_at_sizes(table: pd.DataFrame, sizes: dict[str, dict[str, int]]) -> pd.DataFrame:
    """Workflow 2's Lambda time on its critical path (the slowest model) and Lambda cost per run, per size choice.

    ``sizes``: {"default": {fn: mb}, "cheapest": {...}, ...}. Built from the per-function medians
    (at the nearest measured size when a size was not swept): an estimate, not a measured run. A choice
    that names no function of Workflow 2 (the sweep measured none) is not estimated (NaN, not 0).
    """
    rows = []
    for choice, mb in sizes.items():
        ms = usd = 0.0
        steps = 0
        for step in (*WF2_CHAIN, *WF2_TAIL):
            fns = step if isinstance(step, tuple) else (step,)
            found = [_lookup(table, fn, mb.get(fn, 0))[:2] for fn in fns if fn in mb]
            if not found:
                continue
            ms += max(d for d, _ in found)
            usd += sum(u for _, u in found)
            steps += 1
        if not steps:
            ms = usd = math.nan
        rows.append({"sizes": choice, "wf2_lambda_ms": ms, "wf2_lambda_usd_per_run": usd, "usd_per_million": usd * 1e6})
    return pd.DataFrame(rows).set_index("sizes")


def memory_measured(points: list[PointData], prices: dict[str, Any], at_sizes: pd.DataFrame) -> pd.DataFrame:
    """Per size choice the sweep's check points deployed and loaded (``balanced``, ``default``): Workflow 2
    measured (executions' end-to-end p50, the client's p50, Lambda cost per million runs from the
    measured usage) beside what :func:`workflow_at_sizes` estimated for the same choice."""
    rows = []
    for p in [p for p in points if is_memory_check(p)]:
        choice = str(p.config["memory_choice"])
        row: dict[str, Any] = {"sizes": choice, "status": p.record.get("status")}
        if p.ok:
            since = p.record.get("measured_from")
            ex = measured_since(p.table("executions"), "start_date", since)
            server = stats.server_latency(ex) if len(ex) else pd.DataFrame({"latency_ms": []})
            jtl = p.table("jtl")
            client = stats.client_latency(jtl, "classify") if len(jtl) else pd.DataFrame({"latency_ms": []})
            row.update(
                {
                    "runs": len(ex),
                    "measured_e2e_p50_ms": stats.summarize(server["latency_ms"])["p50"],
                    "measured_client_p50_ms": stats.summarize(client["latency_ms"])["p50"],
                    "measured_lambda_usd_per_million": _lambda_usd_per_million(p, prices, since),
                    "memory_mb": sizes_text(p.config.get("memory_mb") or {}),
                }
            )
        if choice in at_sizes.index:
            row["estimated_lambda_ms"] = float(at_sizes.loc[choice, "wf2_lambda_ms"])
            row["estimated_usd_per_million"] = float(at_sizes.loc[choice, "usd_per_million"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("sizes") if rows else pd.DataFrame()


def sizes_text(sizes: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(sizes.items())) or "the functions' own"


def _lambda_usd_per_million(p: PointData, prices: dict[str, Any], since: str | None) -> float:
    """Workflow 2's Lambda cost per million runs, priced from the point's usage after its warm-up."""
    tables = dict(p.data.tables) if p.data is not None else {}
    if any(not len(tables.get(name, [])) for name in ("invocations", "executions", "states")):
        return math.nan  # not a whole workflow's telemetry: nothing to price
    tables["invocations"] = measured_since(tables["invocations"], "start_time", since)
    tables["executions"] = measured_since(tables["executions"], "start_date", since)
    pm = cost.per_million_runs(cost.cost_table(cost.usage_lines(tables, p.stack), prices))
    sel = pm[(pm["workflow"] == "classify") & (pm["service"] == "Lambda")]
    return float(sel["usd_per_million_runs"].sum()) if len(sel) else math.nan


def memory_measured_conclusions(measured: pd.DataFrame) -> list[str]:
    """One sentence: Workflow 2 measured at the balanced sizes against the defaults, and the estimate's error."""
    need = {"balanced", "default"}
    if not len(measured) or not need <= set(measured.index) or "measured_e2e_p50_ms" not in measured:
        return ["The chosen sizes were not measured as a whole workflow in this run (no check points, or one failed)."]
    b, d = measured.loc["balanced"], measured.loc["default"]
    if any(math.isnan(float(v)) for v in (b["measured_e2e_p50_ms"], d["measured_e2e_p50_ms"])):
        return ["The check points at the balanced and the default sizes recorded no finished execution."]
    bu, du = float(b["measured_lambda_usd_per_million"]), float(d["measured_lambda_usd_per_million"])
    priced = not (math.isnan(bu) or math.isnan(du)) and du > 0
    out = [
        f"Measured: Workflow 2 at the balanced sizes took {b['measured_e2e_p50_ms']:.0f} ms end to end (median "
        "execution)"
        + (f" and {bu:.2f} USD of Lambda per million runs" if priced else "")
        + f", against {d['measured_e2e_p50_ms']:.0f} ms"
        + (f" and {du:.2f} USD" if priced else "")
        + f" at the defaults ({(b['measured_e2e_p50_ms'] / d['measured_e2e_p50_ms'] - 1) * 100:+.0f} % time"
        + (f", {(bu / du - 1) * 100:+.0f} % cost)." if priced else "; the usage could not be priced).")
    ]
    if "estimated_lambda_ms" in measured and not math.isnan(float(b.get("estimated_lambda_ms", math.nan))):
        out.append(
            f"The estimate from the per-function medians said {b['estimated_lambda_ms']:.0f} ms and "
            f"{b['estimated_usd_per_million']:.2f} USD at the balanced sizes, {d['estimated_lambda_ms']:.0f} ms and "
            f"{d['estimated_usd_per_million']:.2f} USD at the defaults: it counts Lambda time on the critical path "
            "only (not the orchestration between states) and warm invocations only."
        )
    return out


def memory_conclusions(choices: pd.DataFrame, at_sizes: pd.DataFrame) -> list[str]:
    out = []
    for fn in [m for m in MODELS if m in choices.index]:
        c = choices.loc[fn]
        out.append(
            f"{fn}: cheapest at {c['cheapest_mb']} MB ({c['cheapest_usd'] * 1e6:.1f} USD per million), "
            f"fastest at {c['fastest_mb']} MB ({c['fastest_ms']:.0f} ms), balanced {c['balanced_mb']} MB"
            + (f"; out of memory at {c['oom_at_mb']} MB." if c["oom_at_mb"] != "—" else ".")
        )
    if {"default", "balanced"} <= set(at_sizes.index) and at_sizes.loc[["default", "balanced"]].notna().all(axis=None):
        d, b = at_sizes.loc["default"], at_sizes.loc["balanced"]
        out.append(
            f"Workflow 2 at the balanced sizes: {b['wf2_lambda_ms']:.0f} ms of Lambda time on its critical path "
            f"and {b['usd_per_million']:.2f} USD of Lambda per million runs, against {d['wf2_lambda_ms']:.0f} ms "
            f"and {d['usd_per_million']:.2f} USD at the defaults (estimated from the per-function medians)."
        )
    return out


def default_sizes(manifest: dict[str, Any]) -> dict[str, int]:
    """Each function's memory size as the profile deployed it before any point (``default_memory_mb``)."""
    return {str(k): int(v) for k, v in (manifest.get("default_memory_mb") or {}).items()}
