"""Cold starts as a distribution, and Workflow 2's first request with provisioned concurrency on the models.

Pure: the tables and sentences of the cold-start page (``notebooks/experiments/e1_cold_starts``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from swlab.analysis.experiment_common import invocations_of, measured_since, median_ci
from swlab.analysis.points import PointData


def cold_start_table(points: list[PointData], confidence: float = 0.95) -> pd.DataFrame:
    """Per function: cold starts, Init Duration, the cold request's whole time (Init + Duration) vs warm.

    Medians with distribution-free CIs. ``suppressed_n``: cold starts whose init outlasted the 10 s
    limit (no Init Duration; the init is inside their Duration, so in ``cold_total_ms`` too). Points
    with provisioned concurrency are left out (:func:`provisioned_table` compares them).
    """
    inv = invocations_of([p for p in points if p.ok and not has_provisioned(p)], since_measured=True)
    rows = []
    for fn, g in inv.groupby("fn", sort=True) if len(inv) else []:
        cold, warm = g[g["cold_start"]], g[~g["cold_start"]]
        total = cold["duration_ms"].astype(float) + cold["init_duration_ms"].astype(float).fillna(0.0)
        row: dict[str, Any] = {
            "function": fn,
            "cold_n": len(cold),
            "suppressed_n": int(cold["suppressed_init"].sum()),
            "warm_n": len(warm),
        }
        for name, values in (
            ("init", cold["init_duration_ms"]),
            ("cold_total", total),
            ("warm_duration", warm["duration_ms"]),
        ):
            est, lo, hi = median_ci(values, confidence)
            row.update({f"{name}_ms": est, f"{name}_lo": lo, f"{name}_hi": hi})
        row["cold_penalty_ms"] = row["cold_total_ms"] - (
            0.0 if math.isnan(row["warm_duration_ms"]) else row["warm_duration_ms"]
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index("function") if rows else pd.DataFrame()


def cold_e2e_table(points: list[PointData], confidence: float = 0.95) -> pd.DataFrame:
    """Per workflow, the requests sent right after every function was forced cold, against warm ones.

    Client side (the probes: through API Gateway, which answers 504 after 29 s), and for Workflow 2
    server side too (``wf2 execution``: each execution's start to stop; a point's first
    ``cold_requests`` executions are the cold ones).
    """
    frames = [p.probes.assign(source="client") for p in points if p.ok and len(p.probes)]
    for p in [p for p in points if p.ok]:
        ex = measured_since(p.table("executions"), "start_date", p.record.get("measured_from"))
        if not len(ex) or "duration_ms" not in ex:
            continue
        ex = ex.sort_values("start_date")
        n_cold = int(p.config.get("cold_requests", 1))
        kinds = ["cold" if i < n_cold else "warm" for i in range(len(ex))]
        ok = (ex["status"] == "SUCCEEDED").map({True: 200, False: 500})
        frames.append(
            pd.DataFrame(
                {
                    "workflow": "wf2 execution",
                    "kind": kinds,
                    "status": ok.to_numpy(),
                    "ms": ex["duration_ms"].to_numpy(),
                }
            )
        )
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    rows = []
    for (wf, kind), g in df.groupby(["workflow", "kind"], sort=True):
        est, lo, hi = median_ci(g["ms"], confidence)
        ok = int((g["status"] // 100 == 2).sum())
        rows.append({"workflow": wf, "kind": kind, "n": len(g), "ok": ok, "median_ms": est, "ci_lo": lo, "ci_hi": hi})
    return pd.DataFrame(rows).set_index(["workflow", "kind"])


def cold_conclusions(table: pd.DataFrame, e2e: pd.DataFrame) -> list[str]:
    out = []
    if len(table):
        worst = table["cold_penalty_ms"].idxmax()
        t = table.loc[worst]
        out.append(
            f"The costliest cold start is {worst}'s: a cold request to it takes {t['cold_total_ms']:.0f} ms "
            f"(Init + Duration, median, 95 % CI {t['cold_total_lo']:.0f}–{t['cold_total_hi']:.0f}) over "
            f"{int(t['cold_n'])} cold starts, against {t['warm_duration_ms']:.0f} ms warm."
        )
        suppressed = table[table["suppressed_n"] > 0]
        if len(suppressed):
            out.append(
                "Inits past Lambda's 10 s limit (run again inside the first invocation, no Init Duration): "
                + ", ".join(f"{fn} {int(r['suppressed_n'])} of {int(r['cold_n'])}" for fn, r in suppressed.iterrows())
                + "."
            )
        out.append(f"Fewest cold starts measured for one function: {int(table['cold_n'].min())}.")
    for wf, what in (("wf2 execution", "execution"), ("wf2", "client, through API Gateway")):
        if (wf, "cold") in e2e.index and (wf, "warm") in e2e.index:
            c, w = e2e.loc[(wf, "cold"), "median_ms"], e2e.loc[(wf, "warm"), "median_ms"]
            out.append(
                f"Workflow 2 end to end ({what}): {c / 1000:.2f} s cold against {w / 1000:.2f} s warm "
                f"(medians), {c / w:.1f}× slower when every function starts cold."
            )
            break
    return out


def has_provisioned(p: PointData) -> bool:
    """The point's stack had provisioned concurrency on some function (``deploy_options``)."""
    return bool((p.config.get("deploy_options") or {}).get("provisioned_concurrency"))


def provisioned_table(without: list[PointData], provisioned: list[PointData], confidence: float = 0.95) -> pd.DataFrame:
    """Workflow 2's first request after every function was forced cold, with and without provisioned
    concurrency on the model functions (whose provisioned environments a forced cold start does not end):
    client (through API Gateway) and execution medians with CIs, and the warm requests' for reference."""
    rows = []
    for label, group in (("without", without), ("with provisioned concurrency", provisioned)):
        e2e = cold_e2e_table([p for p in group if p.ok], confidence)
        row: dict[str, Any] = {"models": label, "points": sum(p.ok for p in group)}
        for wf, name in (("wf2", "client"), ("wf2 execution", "execution")):
            for kind in ("cold", "warm"):
                if (wf, kind) in e2e.index:
                    r = e2e.loc[(wf, kind)]
                    row[f"{name}_{kind}_n"] = int(r["n"])
                    row[f"{name}_{kind}_ms"] = float(r["median_ms"])
                    if kind == "cold":
                        row[f"{name}_{kind}_lo"], row[f"{name}_{kind}_hi"] = float(r["ci_lo"]), float(r["ci_hi"])
        levels = {
            str(k): v
            for p in group
            for k, v in ((p.config.get("deploy_options") or {}).get("provisioned_concurrency") or {}).items()
        }
        row["provisioned"] = ", ".join(f"{k} {v}" for k, v in sorted(levels.items())) or "—"
        rows.append(row)
    return pd.DataFrame(rows).set_index("models")


def provisioned_conclusions(table: pd.DataFrame) -> list[str]:
    """How much provisioned concurrency on the models shortens Workflow 2's first request after a cold start."""
    label = "with provisioned concurrency"
    for name, what in (("client", "through API Gateway"), ("execution", "execution")):
        col = f"{name}_cold_ms"
        if col in table and label in table.index and "without" in table.index:
            w, p = float(table.loc["without", col]), float(table.loc[label, col])
            if math.isnan(w) or math.isnan(p):
                continue
            return [
                f"Workflow 2's first request after every function was forced cold ({what}, median): "
                f"{w / 1000:.2f} s without provisioned concurrency, {p / 1000:.2f} s with it on the model functions "
                f"({table.loc[label, 'provisioned']}): {w / p:.1f}× faster, {(w - p) / 1000:.2f} s less. "
                "What remains is the cold start of the functions without it (the preprocessing steps)."
            ]
    return ["No point with provisioned concurrency on the models was measured in this run."]
