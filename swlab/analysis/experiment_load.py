"""The load steps: Workflow 2 at increasing arrival rates, where latency bends and what was lost.

Pure: the tables and sentences of the load page (``notebooks/experiments/e4_load``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from swlab.analysis import stats
from swlab.analysis.experiment_common import measured_since
from swlab.analysis.points import PointData


def load_table(points: list[PointData], confidence: float = 0.95) -> pd.DataFrame:
    """Per arrival rate: requests planned and recorded, p50/p99 (CI), throughput, errors, throttles, executions."""
    rows = []
    for p in points:
        cfg = p.config
        rate, duration = float(cfg.get("rate_per_s", 0)), float(cfg.get("duration_s", 0))
        planned = int(round(rate * duration)) * len(cfg.get("workflows", []))
        jtl = p.table("jtl")
        row: dict[str, Any] = {"rate_per_s": rate, "planned": planned, "status": p.record.get("status")}
        if len(jtl):
            c = stats.client_latency(jtl)
            s = stats.summarize(c["latency_ms"], confidence=confidence)
            span = (pd.to_datetime(c["time"]).max() - pd.to_datetime(c["time"]).min()).total_seconds() or 1.0
            ex = measured_since(p.table("executions"), "start_date", p.record.get("measured_from"))
            row.update(
                {
                    "recorded": len(c),
                    "ok": int(c["success"].sum()),
                    "throttled": int(c["throttled"].sum()),
                    "errors": int((~c["success"] & ~c["throttled"]).sum()),
                    "p50_ms": s["p50"],
                    "p50_lo": s["p50_lo"],
                    "p50_hi": s["p50_hi"],
                    "p99_ms": s["p99"],
                    "p99_lo": s["p99_lo"],
                    "p99_hi": s["p99_hi"],
                    "throughput_per_s": int(c["success"].sum()) / max(span, duration * 0.5),
                    "executions": len(ex),
                    "executions_unfinished": int(ex["stop_date"].isna().sum()) if len(ex) else 0,
                    "drain_s": float((p.record.get("drained") or {}).get("waited_s", math.nan)),
                    "running_at_collect": int((p.record.get("drained") or {}).get("running", 0)),
                    "lambda_throttles": _lambda_throttles(p),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows).sort_values("rate_per_s").reset_index(drop=True) if rows else pd.DataFrame()


def _lambda_throttles(p: PointData) -> int:
    m = p.table("metrics")
    if not len(m) or "metric" not in m:
        return 0
    return int(m.loc[m["metric"] == "Throttles", "value"].fillna(0).sum())


def load_knee(table: pd.DataFrame) -> dict[str, float | None]:
    """The lowest rate whose p99 is at least twice the lowest rate's, and the first with throttles or errors."""
    ok = table.dropna(subset=["p99_ms"]) if "p99_ms" in table else pd.DataFrame()
    if not len(ok):
        return {"p99_doubles_at": None, "throttles_from": None, "errors_from": None}
    base = float(ok["p99_ms"].iloc[0])
    doubled = ok[ok["p99_ms"] >= 2 * base]["rate_per_s"]
    thr = ok[(ok["throttled"] > 0) | (ok["lambda_throttles"] > 0)]["rate_per_s"]
    err = ok[ok["errors"] > 0]["rate_per_s"]
    first = lambda s: float(s.iloc[0]) if len(s) else None  # noqa: E731
    return {"p99_doubles_at": first(doubled), "throttles_from": first(thr), "errors_from": first(err)}


def load_conclusions(table: pd.DataFrame) -> list[str]:
    if not len(table) or "p99_ms" not in table:
        return ["No load step was measured."]
    knee = load_knee(table)
    lost = int((table["planned"] - table["recorded"].fillna(0)).clip(lower=0).sum())
    out = [
        f"p99 doubles (against {table['rate_per_s'].iloc[0]:g} request/s) at "
        + (f"{knee['p99_doubles_at']:g} requests/s." if knee["p99_doubles_at"] else "no measured rate.")
    ]
    out.append(
        "Throttling begins at "
        + (f"{knee['throttles_from']:g} requests/s" if knee["throttles_from"] else "no measured rate")
        + "; errors at "
        + (f"{knee['errors_from']:g} requests/s." if knee["errors_from"] else "no measured rate.")
    )
    out.append(
        f"Requests planned {int(table['planned'].sum())}, recorded {int(table['recorded'].fillna(0).sum())} "
        f"({lost} missing); executions still unfinished at collection: {int(table['executions_unfinished'].sum())}."
    )
    if "drain_s" in table and table["drain_s"].notna().any():
        worst = table.loc[table["drain_s"].idxmax()]
        running = int(table["running_at_collect"].sum())
        out.append(
            f"Before each collection the runner waited for the executions the load started to end: longest at "
            f"{worst['rate_per_s']:g} requests/s, {worst['drain_s']:.0f} s after JMeter stopped (the cloud lags the "
            "offered rate); "
            + (
                f"{running} were still running when the wait's bound ran out (recorded as such)."
                if running
                else "every execution had ended, so the latencies above are of complete data."
            )
        )
    return out
