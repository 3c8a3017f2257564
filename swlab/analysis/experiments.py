"""The experiments' tables and conclusions, from their points (:class:`swlab.analysis.points.PointData`).

Pure: no files, no cloud. One section per experiment of ``profiles/experiments.yaml``:
cold starts as a distribution (and Workflow 2's first request with provisioned concurrency on the
models against without), the memory sweep (Power Tuning's view for every function, and Workflow 2
measured at the chosen sizes against the defaults beside the estimate),
Standard vs Express, the load steps, and x86_64 vs arm64 pricing. Every conclusion
sentence is computed from the tables (:func:`conclusions` of each section), never written
by hand; medians come with distribution-free confidence intervals (:mod:`swlab.analysis.stats`).

One concern, kept in one module: the experiments' tables and the sentences drawn from them, which
share their helpers (the points' invocations, the measured window, medians with intervals) and
are read together by the Experiments part's pages and the discussion.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import pandas as pd

from swlab.analysis import cost, stats, workflow
from swlab.analysis.points import PointData

# Workflow 2's functions in the order a request meets them; the three models run in parallel.
WF2_CHAIN = ("fetch_image", "grayscale", "flip", "rotate", "resize", ("alexnet", "resnet", "mobilenet"), "aggregate")
WF2_TAIL = ("update",)
MODELS = ("alexnet", "resnet", "mobilenet")


def short(function: str, stack: str) -> str:
    return function.removeprefix(f"{stack}-")


def _since(df: pd.DataFrame, column: str, iso: str | None) -> pd.DataFrame:
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
    return pd.DataFrame(rows)


def _fmt(v: Any) -> Any:
    return v if isinstance(v, (int, float, str)) else str(v)


# ---- 1. cold starts ----------------------------------------------------------------------------


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
            inv = _since(inv, "start_time", p.record.get("measured_from"))
        frames.append(inv)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


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
        ex = _since(p.table("executions"), "start_date", p.record.get("measured_from"))
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


# ---- 2. memory sweep -------------------------------------------------------------------------


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
            good = warm[warm["status"].fillna("").isin(["", "success", "ok"]) & warm["error_type"].isna()]
            oom = int((g["error_type"].fillna("") == "Runtime.OutOfMemory").sum() + (g["status"] == "oom").sum())
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
    return pd.DataFrame(rows)


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
    return pd.DataFrame(rows).set_index("function") if rows else pd.DataFrame()


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
    (at the nearest measured size when a size was not swept): an estimate, not a measured run.
    """
    rows = []
    for choice, mb in sizes.items():
        ms = usd = 0.0
        for step in (*WF2_CHAIN, *WF2_TAIL):
            fns = step if isinstance(step, tuple) else (step,)
            found = [_lookup(table, fn, mb.get(fn, 0))[:2] for fn in fns if fn in mb]
            if not found:
                continue
            ms += max(d for d, _ in found)
            usd += sum(u for _, u in found)
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
            ex = _since(p.table("executions"), "start_date", since)
            server = stats.server_latency(ex)
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
    tables["invocations"] = _since(tables["invocations"], "start_time", since)
    tables["executions"] = _since(tables["executions"], "start_date", since)
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
    if {"default", "balanced"} <= set(at_sizes.index):
        d, b = at_sizes.loc["default"], at_sizes.loc["balanced"]
        out.append(
            f"Workflow 2 at the balanced sizes: {b['wf2_lambda_ms']:.0f} ms of Lambda time on its critical path "
            f"and {b['usd_per_million']:.2f} USD of Lambda per million runs, against {d['wf2_lambda_ms']:.0f} ms "
            f"and {d['usd_per_million']:.2f} USD at the defaults (estimated from the per-function medians)."
        )
    return out


# ---- 3. Standard vs Express, and 5. architecture: priced usage ---------------------------------


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
        ex = _since(p.table("executions"), "start_date", p.record.get("measured_from"))
        server = stats.server_latency(ex)
        jtl = p.table("jtl")
        client = stats.client_latency(jtl, "classify") if len(jtl) else pd.DataFrame({"latency_ms": []})
        s, c = stats.summarize(server["latency_ms"], confidence=confidence), stats.summarize(client["latency_ms"])
        over = _overhead(p, ex)
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


def _overhead(p: PointData, executions: pd.DataFrame) -> pd.DataFrame:
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


# ---- 4. load steps ---------------------------------------------------------------------------


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
            ex = _since(p.table("executions"), "start_date", p.record.get("measured_from"))
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


# ---- discussion: this run beside the published anchors -----------------------------------------

ANCHORS = (
    # (what, published, source)
    ("Workflow 1 mean latency", "1.2 s", "the original lab, on AWS"),
    ("Workflow 2 mean latency", "14.6 s", "the original lab, on AWS"),
    ("image recognition cold", "9.7 s", "SeBS 411.image-recognition, 1 GB"),
    ("image recognition warm", "0.93 s", "SeBS 411.image-recognition, 1 GB"),
    ("Step Functions Standard, per state transition", "100–160 ms", "published measurements"),
)


def discussion_table(points: list[PointData]) -> pd.DataFrame:
    """The published anchors beside this run's closest figures (``this_run`` empty when not measured)."""
    ok = [p for p in points if p.ok]
    by = {a: [p for p in ok if p.record.get("analysis") == a] for a in ("cold_starts", "workflow_type", "architecture")}
    means: dict[str, float] = {}
    for p in by["architecture"] or ok:
        jtl = p.table("jtl")
        if len(jtl):
            for label, g in stats.client_latency(jtl).groupby("label"):
                means.setdefault(str(label), float(g["latency_ms"].mean()))
    cold = cold_start_table(by["cold_starts"]) if by["cold_starts"] else pd.DataFrame()
    overhead = math.nan
    for p in by["workflow_type"]:
        if str(p.config.get("workflow_type")) == "STANDARD":
            over = _overhead(p, _since(p.table("executions"), "start_date", p.record.get("measured_from")))
            overhead = float(over["overhead_per_hop_ms"].median()) if len(over) else math.nan
    resnet = cold.loc["resnet"] if "resnet" in cold.index else None
    values = [
        f"{means['ingest'] / 1000:.3f} s" if "ingest" in means else "",
        f"{means['classify'] / 1000:.3f} s" if "classify" in means else "",
        f"{resnet['cold_total_ms'] / 1000:.2f} s (ResNet-18: Init + first invocation)" if resnet is not None else "",
        f"{resnet['warm_duration_ms'] / 1000:.3f} s (ResNet-18 warm)" if resnet is not None else "",
        f"{overhead:.1f} ms (local Step Functions)" if not math.isnan(overhead) else "",
    ]
    return pd.DataFrame(
        [{"figure": w, "published": pub, "source": src, "this_run": v} for (w, pub, src), v in zip(ANCHORS, values)]
    ).set_index("figure")


def default_sizes(manifest: dict[str, Any]) -> dict[str, int]:
    """Each function's memory size as the profile deployed it before any point (``default_memory_mb``)."""
    return {str(k): int(v) for k, v in (manifest.get("default_memory_mb") or {}).items()}
