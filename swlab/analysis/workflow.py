"""Workflow breakdown: per-state rows joined with Lambda REPORT durations, critical paths,
orchestration overhead.

The critical path of one execution is found backwards in time: start from the
leaf state (not a Parallel/Map container) that finished last, then repeatedly
take the leaf state that finished last before the current one was entered.
For a chain with a Parallel block this picks, at the join, the branch that
finished last, which is what held the workflow up.

Orchestration overhead = end-to-end execution time − the Lambda Duration and
Init Duration (from REPORT lines) of the Task states on the critical path: the time spent in Step
Functions itself, in invoking, and in service integrations such as DynamoDB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTAINER_TYPES = ("Parallel", "Map")


def attach_lambda_durations(states: pd.DataFrame, invocations: pd.DataFrame,
                            tolerance_ms: float = 2000.0) -> pd.DataFrame:
    """Add lambda_duration_ms, lambda_init_ms, lambda_cold, lambda_request_id to each Task state that
    ran a function.

    Match: same function (state ``resource``), the invocation's REPORT time is
    the latest one at or before the state's exit, within ``tolerance_ms``, and
    it started no earlier than the state was entered minus the tolerance.
    Under concurrency an invocation could be matched to two states; the first
    match wins and the other stays unmatched (NaN), never double-counted.
    """
    out = states.copy()
    out["lambda_duration_ms"] = np.nan
    out["lambda_cold"] = pd.array([pd.NA] * len(out), dtype="boolean")
    out["lambda_init_ms"] = np.nan
    out["lambda_request_id"] = None
    if len(out) == 0 or len(invocations) == 0:
        return out
    tasks = out.loc[out["resource"].notna() & out["exited"].notna(), ["resource", "entered", "exited"]]
    tasks = tasks.assign(exited=pd.to_datetime(tasks["exited"], utc=True),
                         entered=pd.to_datetime(tasks["entered"], utc=True))
    inv = invocations[["function", "start_time", "end_time", "duration_ms", "init_duration_ms", "cold",
                       "request_id"]].rename(
        columns={"function": "resource", "start_time": "inv_start", "end_time": "inv_end",
                 "duration_ms": "inv_duration_ms", "init_duration_ms": "inv_init_ms", "cold": "inv_cold",
                 "request_id": "inv_request_id"})
    inv = inv.assign(inv_end=pd.to_datetime(inv["inv_end"], utc=True))
    tol = pd.Timedelta(milliseconds=tolerance_ms)
    m = pd.merge_asof(tasks.reset_index().sort_values("exited"), inv.sort_values("inv_end"),
                      left_on="exited", right_on="inv_end", by="resource", direction="backward", tolerance=tol)
    ok = m["inv_request_id"].notna() & (pd.to_datetime(m["inv_start"], utc=True) >= m["entered"] - tol)
    m = m[ok]
    m = m[~m["inv_request_id"].duplicated()]
    out.loc[m["index"], "lambda_duration_ms"] = m["inv_duration_ms"].to_numpy()
    out.loc[m["index"], "lambda_cold"] = m["inv_cold"].astype(bool).to_numpy()
    out.loc[m["index"], "lambda_init_ms"] = m["inv_init_ms"].to_numpy()
    out.loc[m["index"], "lambda_request_id"] = m["inv_request_id"].to_numpy()
    return out


def critical_path(states: pd.DataFrame, tolerance_ms: float = 1.0) -> pd.DataFrame:
    """The leaf states of one execution on its critical path, in time order."""
    leaf = states[~states["state_type"].isin(CONTAINER_TYPES) & states["exited"].notna()]
    if len(leaf) == 0:
        return leaf
    leaf = leaf.assign(entered=pd.to_datetime(leaf["entered"], utc=True),
                       exited=pd.to_datetime(leaf["exited"], utc=True))
    tol = pd.Timedelta(milliseconds=tolerance_ms)
    cur = leaf.loc[leaf["exited"].idxmax()]
    path = [cur.name]
    while True:
        before = leaf[(leaf["exited"] <= cur["entered"] + tol) & (leaf["entered"] < cur["entered"])]
        if len(before) == 0:
            break
        cur = before.loc[before["exited"].idxmax()]
        path.append(cur.name)
    return leaf.loc[path[::-1]]


def median_critical_path(states: pd.DataFrame, executions: pd.DataFrame) -> pd.DataFrame:
    """Per state on the critical paths: how often it is on the path, median offset/duration/Lambda time.

    Ordered by median offset from the execution's start.
    """
    starts = executions.set_index("execution_arn")["start_date"]
    rows = []
    for arn, g in states.groupby("execution_arn", sort=False):
        if arn not in starts.index:
            continue
        p = critical_path(g)
        p = p.assign(offset_ms=(p["entered"] - pd.to_datetime(starts[arn], utc=True)).dt.total_seconds() * 1000)
        rows.append(p)
    if not rows:
        return pd.DataFrame(columns=["state", "on_path", "offset_ms", "duration_ms", "lambda_duration_ms"])
    allp = pd.concat(rows)
    n_exec = allp["execution_arn"].nunique()
    cols = {"offset_ms": "median", "duration_ms": "median"}
    if "lambda_duration_ms" in allp:
        cols["lambda_duration_ms"] = "median"
    agg = allp.groupby("state").agg(cols)
    agg.insert(0, "on_path", allp.groupby("state").size() / n_exec)
    return agg.sort_values("offset_ms").reset_index()


def orchestration_overhead(states: pd.DataFrame, executions: pd.DataFrame) -> pd.DataFrame:
    """Per finished execution: e2e_ms, lambda_ms and lambda_init_ms (cold starts) on the critical path,
    overhead_ms = e2e − both, hops, per-hop overhead.

    ``states`` must carry ``lambda_duration_ms`` (:func:`attach_lambda_durations`);
    hops counts critical-path Task states with a matched Lambda invocation.
    """
    rows = []
    done = executions[executions["stop_date"].notna()].set_index("execution_arn")
    for arn, g in states.groupby("execution_arn", sort=False):
        if arn not in done.index:
            continue
        p = critical_path(g)
        lam = p["lambda_duration_ms"].dropna() if "lambda_duration_ms" in p else pd.Series(dtype=float)
        init = float(p["lambda_init_ms"].fillna(0).sum()) if "lambda_init_ms" in p else 0.0
        e2e = float(done.loc[arn, "duration_ms"])
        rows.append({"execution_arn": arn, "state_machine": done.loc[arn, "state_machine"], "e2e_ms": e2e,
                     "lambda_ms": float(lam.sum()), "lambda_init_ms": init,
                     "overhead_ms": e2e - float(lam.sum()) - init, "hops": len(lam), "path_states": len(p)})
    df = pd.DataFrame(rows, columns=["execution_arn", "state_machine", "e2e_ms", "lambda_ms", "lambda_init_ms",
                                     "overhead_ms", "hops", "path_states"])
    df["overhead_per_hop_ms"] = df["overhead_ms"] / df["hops"].where(df["hops"] > 0)
    return df
