"""The functions' own ``aws_calls`` log lines → AWS SDK calls per invocation (for the cost model).

The lab's functions add, per invocation that made AWS SDK calls, one line of
their own (``lambdas/_shared/swl_log.py``)::

    {"ts": 1795755000.123, "level": "INFO", "message": "aws_calls",
     "calls": {"s3:GetObject": 1, "dynamodb:UpdateItem": 1},
     "capacity_units": {"dynamodb:UpdateItem": 1.0}}

Public API: :func:`aws_calls` (→ one row per call kind and invocation, columns
:data:`AWS_CALLS_COLUMNS`). Pure: data frames in, data frames out.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from swlab.analysis.log_lines import json_object

AWS_CALLS_MESSAGE = "aws_calls"
AWS_CALLS_COLUMNS = ["function", "timestamp", "call", "count", "capacity_units"]


def aws_calls(events: pd.DataFrame | Iterable[dict]) -> pd.DataFrame:
    """The ``aws_calls`` lines of Lambda log events → one row per invocation line and call kind.

    Columns :data:`AWS_CALLS_COLUMNS`: ``function``, ``timestamp`` (the event's, UTC),
    ``call`` (``"service:Operation"``, e.g. ``"s3:GetObject"``), ``count`` (calls made,
    successful or not) and ``capacity_units`` (the ConsumedCapacity DynamoDB reported for that
    operation in that invocation; NaN when not reported).

    A line counts when its message is a JSON object with ``"message": "aws_calls"``, or (JSON
    log format) an object whose ``message`` is such an object or a JSON string of one. Anything
    else (other lines, malformed JSON, counts that are not non-negative numbers) is skipped,
    never an error. Only messages containing ``aws_calls`` are decoded (a pyarrow prefilter).
    """
    df = events if isinstance(events, pd.DataFrame) else pd.DataFrame(list(events))
    if len(df) == 0 or "message" not in df.columns:
        return _empty_aws_calls()
    msgs = pa.array(df["message"].astype(str), type=pa.large_string())
    sel = np.flatnonzero(pc.match_substring(msgs, AWS_CALLS_MESSAGE).to_numpy(zero_copy_only=False))
    df = df.iloc[sel].reset_index(drop=True)
    funcs = _function_names(df).to_numpy(object)
    times = _event_times(df).to_numpy()
    rows = []
    for i, msg in enumerate(df["message"].astype(str)):
        rec = _aws_calls_record(msg)
        for call, count, units in _call_entries(rec) if rec else ():
            rows.append((funcs[i], times[i], call, count, units))
    if not rows:
        return _empty_aws_calls()
    out = pd.DataFrame(rows, columns=AWS_CALLS_COLUMNS)
    return out.assign(
        timestamp=pd.to_datetime(out["timestamp"], utc=True), capacity_units=out["capacity_units"].astype(float)
    )


def _function_names(df: pd.DataFrame) -> pd.Series:
    """The ``function`` column, else the log group (``logGroupName``) without ``/aws/lambda/``."""
    if "function" in df.columns:
        return df["function"]
    group = df.get("log_group", df.get("logGroupName"))
    return (
        pd.Series("", index=df.index)
        if group is None
        else group.astype(str).str.replace("/aws/lambda/", "", regex=False)
    )


def _event_times(df: pd.DataFrame) -> pd.Series:
    """Event times in UTC (epoch ms or datetimes; NaT where there is none or it does not parse)."""
    ts = df["timestamp"] if "timestamp" in df.columns else pd.Series(pd.NaT, index=df.index)
    if pd.api.types.is_numeric_dtype(ts):
        return pd.to_datetime(ts, unit="ms", utc=True, errors="coerce")
    return pd.to_datetime(ts, utc=True, errors="coerce", format="mixed")


def _empty_aws_calls() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "function": pd.Series(dtype=object),
            "timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
            "call": pd.Series(dtype=object),
            "count": pd.Series(dtype=float),
            "capacity_units": pd.Series(dtype=float),
        }
    )


def _aws_calls_record(message: str) -> dict | None:
    """The aws_calls object in a message: itself, or embedded (as object or JSON string) in ``message``."""
    rec = json_object(message)
    for _ in range(2):  # the line itself, then what the JSON log format wrapped it in
        if rec is None:
            return None
        inner = rec.get("message")
        if inner == AWS_CALLS_MESSAGE:
            return rec
        rec = inner if isinstance(inner, dict) else json_object(inner) if isinstance(inner, str) else None
    return None


def _call_entries(rec: dict) -> list[tuple[str, float, float]]:
    """(call, count, capacity units or NaN) for each well-formed entry of ``calls``."""
    calls, units = rec.get("calls"), rec.get("capacity_units")
    if not isinstance(calls, dict):
        return []
    units = units if isinstance(units, dict) else {}
    out = []
    for call, count in calls.items():
        if isinstance(call, str) and ":" in call and _non_negative(count):
            cu = units.get(call)
            out.append((call, float(count), float(cu) if cu is not None and _non_negative(cu) else np.nan))
    return out


def _non_negative(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) and x >= 0
