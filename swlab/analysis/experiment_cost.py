"""Standard vs Express and x86_64 vs arm64: each point's measured usage, priced.

Pure: the tables and sentences of the workflow-type page (``e3_workflow_type``) and of the
architecture page (``e5_architecture``); both price the usage a point measured (:mod:`swlab.analysis.cost`).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from swlab.analysis import cost, stats, workflow
from swlab.analysis.experiment_common import measured_since
from swlab.analysis.points import PointData


def priced(p: PointData, prices: dict[str, Any], architecture: str | None = None) -> pd.DataFrame:
    """Per-workflow totals per million runs of one point's measured usage (all functions as ``architecture``)."""
    tables = dict(p.data.tables) if p.data is not None else {}
    if architecture and len(tables.get("functions", [])):
        tables["functions"] = tables["functions"].assign(architecture=architecture)
    return cost.workflow_totals(cost.cost_table(cost.usage_lines(tables, p.stack), prices))


def workflow_type_table(points: list[PointData], prices: dict[str, Any], confidence: float = 0.95) -> pd.DataFrame:
    """Per workflow type: Workflow 2's end-to-end (execution) and client latency, per-state overhead, cost."""
    rows = []
    for p in [p for p in points if p.ok]:
        wtype = str(p.config.get("workflow_type"))
        ex = measured_since(p.table("executions"), "start_date", p.record.get("measured_from"))
        server = stats.server_latency(ex) if len(ex) else pd.DataFrame({"latency_ms": []})
        jtl = p.table("jtl")
        client = stats.client_latency(jtl, "classify") if len(jtl) else pd.DataFrame({"latency_ms": []})
        s, c = stats.summarize(server["latency_ms"], confidence=confidence), stats.summarize(client["latency_ms"])
        over = point_overhead(p, ex)
        totals = priced(p, prices)
        sel = totals[(totals["workflow"] == "classify") & (totals["step_functions"] == wtype.lower())]
        rows.append(
            {
                "workflow_type": wtype,
                "executions": int(s["n"]),
                "succeeded": int((ex["status"] == "SUCCEEDED").sum()) if len(ex) else 0,
                "e2e_p50_ms": s["p50"],
                "e2e_p50_lo": s["p50_lo"],
                "e2e_p50_hi": s["p50_hi"],
                "e2e_p99_ms": s["p99"],
                "client_p50_ms": c["p50"],
                "overhead_ms": float(over["overhead_ms"].median()) if len(over) else math.nan,
                "overhead_per_state_ms": float(over["overhead_per_hop_ms"].median()) if len(over) else math.nan,
                "usd_per_million": float(sel["usd_per_million_runs"].sum()) if len(sel) else math.nan,
            }
        )
    return pd.DataFrame(rows).set_index("workflow_type") if rows else pd.DataFrame()


def point_overhead(p: PointData, executions: pd.DataFrame) -> pd.DataFrame:
    """Per execution: end-to-end minus the Lambda time (and init) on its critical path (06_analysis's method)."""
    states = p.table("states")
    if not len(executions) or not len(states):
        return pd.DataFrame()
    return workflow.orchestration_overhead(workflow.attach_lambda_durations(states, p.table("invocations")), executions)


def workflow_type_conclusions(table: pd.DataFrame) -> list[str]:
    if not {"STANDARD", "EXPRESS"} <= set(table.index):
        return ["Both workflow types are needed for a comparison; this run has " + ", ".join(table.index) + "."]
    s, e = table.loc["STANDARD"], table.loc["EXPRESS"]
    return [
        f"Median end-to-end time: Standard {s['e2e_p50_ms']:.0f} ms, Express {e['e2e_p50_ms']:.0f} ms; "
        f"orchestration overhead per state {s['overhead_per_state_ms']:.1f} ms vs {e['overhead_per_state_ms']:.1f} ms.",
        f"Per million runs of Workflow 2 (measured usage): Standard {s['usd_per_million']:.0f} USD, "
        f"Express {e['usd_per_million']:.0f} USD: Standard costs {s['usd_per_million'] / e['usd_per_million']:.1f}× "
        "as much.",
    ]


def architecture_table(points: list[PointData], prices: dict[str, Any]) -> pd.DataFrame:
    """Each workflow's cost per million runs, the same measured usage priced as x86_64 and as arm64."""
    rows = []
    for p in [p for p in points if p.ok]:
        for arch in ("x86_64", "arm64"):
            t = priced(p, prices, arch)
            for _, r in t.iterrows():
                variant = r["step_functions"] or ""
                name = r["workflow"] + (f" ({variant})" if variant else "")
                rows.append({"point": p.record.get("index"), "workflow": name, "architecture": arch, **r.to_dict()})
    df = pd.DataFrame(rows)
    if not len(df):
        return df
    wide = df.pivot_table(index="workflow", columns="architecture", values="usd_per_million_runs", aggfunc="mean")
    wide["arm64_saves_pct"] = 100 * (1 - wide["arm64"] / wide["x86_64"])
    return wide


def architecture_conclusions(table: pd.DataFrame) -> list[str]:
    return [
        f"{wf}: {r['x86_64']:.2f} USD per million runs on x86_64, {r['arm64']:.2f} on arm64 "
        f"({r['arm64_saves_pct']:.0f} % less), if the functions ran as long on arm64."
        for wf, r in table.iterrows()
    ]
