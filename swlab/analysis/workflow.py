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


def attach_lambda_durations(
    states: pd.DataFrame, invocations: pd.DataFrame, tolerance_ms: float = 50.0
) -> pd.DataFrame:
    """Add the Lambda invocations that ran inside each Task state: lambda_duration_ms and
    lambda_init_ms (sums), lambda_invocations, lambda_cold, lambda_request_id (comma-separated).

    An invocation fits a state of the same function (state ``resource``) when its whole span
    (START − Init Duration → REPORT) lies inside the state's [entered, exited] ± ``tolerance_ms``.
    Pairs are assigned best fit first (least unused state time), each invocation at most once, and
    a state takes at most 1 + failed_attempts invocations (its retries), non-overlapping. Under
    concurrency this is a matching by time, not by request id (Step Functions does not record the
    Lambda request id); an invocation that fits no state stays unassigned.
    """
    out = states.copy()
    out["lambda_duration_ms"] = np.nan
    out["lambda_init_ms"] = np.nan
    out["lambda_invocations"] = 0
    out["lambda_cold"] = pd.array([pd.NA] * len(out), dtype="boolean")
    out["lambda_request_id"] = None
    if len(out) == 0 or len(invocations) == 0:
        return out
    invocations = invocations.reset_index(drop=True)
    tasks = out[out["resource"].notna() & out["exited"].notna()]
    attempts = 1 + (tasks["failed_attempts"].fillna(0).astype(int) if "failed_attempts" in tasks else 0)
    tasks = pd.DataFrame(
        {
            "entered": _ns(tasks["entered"]),
            "exited": _ns(tasks["exited"]),
            "resource": tasks["resource"],
            "attempts": attempts,
        },
        index=tasks.index,
    )
    inv = invocations.assign(
        end=_ns(invocations["end_time"]),
        begin=_ns(invocations["start_time"]) - (invocations["init_duration_ms"].fillna(0) * 1e6).astype("int64"),
    )
    tol = int(tolerance_ms * 1e6)
    rows = []
    for fn, t in tasks.groupby("resource", sort=False):
        rows += _assign(t.sort_values("entered"), inv[inv["function"] == fn].sort_values("begin"), tol)
    if rows:
        fit = pd.DataFrame(rows, columns=["state_index", "position"])
        inv_rows = invocations.iloc[fit["position"].to_numpy()].assign(state_index=fit["state_index"].to_numpy())
        agg = inv_rows.groupby("state_index").agg(
            lambda_duration_ms=("duration_ms", "sum"),
            lambda_init_ms=("init_duration_ms", "sum"),
            lambda_invocations=("request_id", "size"),
            lambda_cold=("cold", "any"),
            lambda_request_id=("request_id", ",".join),
        )
        for col in agg.columns:
            out.loc[agg.index, col] = agg[col].to_numpy()
    return out


def _ns(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True).astype("datetime64[ns, UTC]").astype("int64")


def _assign(tasks: pd.DataFrame, inv: pd.DataFrame, tol: int, chunk: int = 500) -> list[tuple[int, int]]:
    """Best-fit, one-to-one assignment of invocations to the states they fit in (chunked in time)."""
    out: list[tuple[int, int]] = []
    if len(inv) == 0:
        return out
    pos = inv.index.to_numpy()  # the caller's row positions (its index is a RangeIndex)
    begin, end = inv["begin"].to_numpy(), inv["end"].to_numpy()
    used: set[int] = set()
    for lo in range(0, len(tasks), chunk):
        t = tasks.iloc[lo : lo + chunk]
        e, x = t["entered"].to_numpy(), t["exited"].to_numpy()
        a, b = np.searchsorted(begin, e.min() - tol), np.searchsorted(begin, x.max() + tol, side="right")
        inside = (begin[None, a:b] >= e[:, None] - tol) & (end[None, a:b] <= x[:, None] + tol)
        ti, ii = np.nonzero(inside)
        slack = (x - e)[ti] - (end[a:b] - begin[a:b])[ii]
        taken: dict[int, list[tuple[int, int]]] = {}
        for k in np.argsort(slack, kind="stable"):
            i, row = a + ii[k], ti[k]
            spans = taken.setdefault(row, [])
            if i in used or len(spans) >= t["attempts"].iat[row] or any(begin[i] < n and end[i] > m for m, n in spans):
                continue
            used.add(i)
            spans.append((begin[i], end[i]))
            out.append((t.index[row], i))
    return [(state, int(pos[i])) for state, i in out]


def critical_path(states: pd.DataFrame, tolerance_ms: float = 1.0) -> pd.DataFrame:
    """The leaf states of one execution on its critical path, in time order."""
    leaf = states[~states["state_type"].isin(CONTAINER_TYPES) & states["exited"].notna()]
    if len(leaf) == 0:
        return leaf
    leaf = leaf.assign(
        entered=pd.to_datetime(leaf["entered"], utc=True), exited=pd.to_datetime(leaf["exited"], utc=True)
    )
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
        rows.append(
            {
                "execution_arn": arn,
                "state_machine": done.loc[arn, "state_machine"],
                "status": done.loc[arn, "status"],
                "e2e_ms": e2e,
                "lambda_ms": float(lam.sum()),
                "lambda_init_ms": init,
                "overhead_ms": e2e - float(lam.sum()) - init,
                "hops": len(lam),
                "path_states": len(p),
            }
        )
    df = pd.DataFrame(
        rows,
        columns=[
            "execution_arn",
            "state_machine",
            "status",
            "e2e_ms",
            "lambda_ms",
            "lambda_init_ms",
            "overhead_ms",
            "hops",
            "path_states",
        ],
    )
    df["overhead_per_hop_ms"] = df["overhead_ms"] / df["hops"].where(df["hops"] > 0)
    return df
