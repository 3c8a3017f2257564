"""Lambda log events → invocation rows: :func:`parse_log_events` (text and JSON log formats).

Public API: :func:`parse_log_events` (→ one row per invocation, columns in :data:`INVOCATION_COLUMNS`).
What each line means is :mod:`swlab.analysis.log_lines` (the grammar, one line at a time; also
:func:`~swlab.analysis.log_lines.parse_report_line` and :func:`~swlab.analysis.log_lines.classify_line`);
the bulk of text START/REPORT lines is read column-wise by :mod:`swlab.analysis.log_columns`. This module
puts them together: the few other lines (JSON format, timeouts, errors) row by row, the failures of each
request, start times, and the one invocation table.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from swlab.analysis.log_columns import text_reports, text_starts
from swlab.analysis.log_lines import TIMEOUT_ERROR_TYPE, classify_line

INVOCATION_COLUMNS = [
    "function",
    "log_stream",
    "request_id",
    "start_time",
    "end_time",
    "duration_ms",
    "billed_duration_ms",
    "memory_size_mb",
    "max_memory_used_mb",
    "init_duration_ms",
    "cold",
    "status",
    "error_type",
    "log_format",
]


def _events_frame(events: pd.DataFrame | Iterable[dict]) -> pd.DataFrame:
    df = events if isinstance(events, pd.DataFrame) else pd.DataFrame(list(events))
    df = df.rename(columns={"logStreamName": "log_stream", "logGroupName": "log_group"})
    if "function" not in df.columns:
        if "log_group" in df.columns:
            df = df.assign(function=df["log_group"].astype(str).str.replace("/aws/lambda/", "", regex=False))
        else:
            df = df.assign(function="")
    if "log_stream" not in df.columns:
        df = df.assign(log_stream="")
    if len(df) == 0:
        return pd.DataFrame(columns=["function", "log_stream", "timestamp", "message"])
    ts = df["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        ts = _utc(ts).astype("datetime64[ms, UTC]").astype("int64")
    # Internally epoch milliseconds (int64): numpy arrays of tz-aware datetimes are object arrays.
    return df.assign(timestamp=ts.astype("int64")).reset_index(drop=True)


def _empty_invocations() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in INVOCATION_COLUMNS})
    for c in ("start_time", "end_time"):
        df[c] = pd.Series(dtype="datetime64[ns, UTC]")
    for c in _CATEGORICAL:
        df[c] = pd.Series(dtype="category")
    return df


def parse_log_events(events: pd.DataFrame | Iterable[dict]) -> pd.DataFrame:
    """Log events → one row per invocation that has a REPORT line (columns :data:`INVOCATION_COLUMNS`).

    ``events``: a DataFrame or dicts with ``timestamp`` (epoch ms or datetime),
    ``message``, and ``function`` or ``log_group``/``logGroupName``, plus
    ``log_stream``/``logStreamName`` (as ``filter_log_events`` returns them).
    ``start_time`` is the START line's time (else end − duration); ``end_time``
    the REPORT line's. ``status`` is success, error or timeout, taken from the
    REPORT line when it says so, else from timeout/error lines of the same
    request; ``error_type`` names the error (``Sandbox.Timedout`` for timeouts).
    ``status`` and ``log_format`` are categoricals (sorted categories, the values held); ``end_time`` is
    ``datetime64[ms, UTC]`` (the log's own resolution; for REPORT-only input a copy-on-write view of its
    timestamps); the text columns are ``str`` for text-format logs (object where JSON lines are mixed in).

    Text START/END/REPORT lines are parsed column-wise (REPORT lines straight from
    the Arrow text buffer, a piece at a time: see :func:`swlab.analysis.log_columns.text_reports`); the few other
    lines (JSON format, errors, timeouts) one by one. For a million REPORT lines the
    parse holds little more than its result next to the input
    (``scripts/bench-analysis``: ``parse_1m_s``, ``parse_1m_peak_mb``).
    """
    df = _events_frame(events)
    if len(df) == 0:
        return _empty_invocations()
    msgs = pa.array(df["message"].astype(str), type=pa.large_string())
    is_report = pc.starts_with(msgs, "REPORT RequestId: ")
    is_start = pc.starts_with(msgs, "START RequestId: ")
    is_end = pc.starts_with(msgs, "END RequestId: ")
    reports = text_reports(df, msgs, is_report)
    starts = text_starts(df, msgs, is_start)
    rest = np.flatnonzero(~pc.or_(pc.or_(is_report, is_start), is_end).to_numpy(zero_copy_only=False))
    json_reports, json_starts, failures = _scan_other_lines(df, rest, is_start, msgs)
    out = pd.concat([f for f in (reports, json_reports) if len(f)], ignore_index=True) if len(json_reports) else reports
    if len(out) == 0:
        return _empty_invocations()
    starts = pd.concat([starts, json_starts], ignore_index=True) if len(json_starts) else starts
    return _finish(out, starts, failures)


def _scan_other_lines(df: pd.DataFrame, rest: np.ndarray, is_start: pa.Array, msgs: pa.Array):
    """JSON-format lines, timeouts and errors (row by row), with the open request per stream."""
    reports: list[dict] = []
    starts: list[tuple] = []
    failures: dict[tuple, tuple[str, str]] = {}
    orphans: list[tuple] = []
    if len(rest) == 0:
        return pd.DataFrame(), pd.DataFrame(columns=["function", "request_id", "start_time"]), failures
    funcs, streams = df["function"].to_numpy(object), df["log_stream"].to_numpy(object)
    times = df["timestamp"].to_numpy()
    for i in rest:
        msg = msgs[int(i)].as_py()
        kind, rid, detail = classify_line(msg)
        detail = detail or {}
        if kind == "report":
            reports.append(
                {**detail, "function": funcs[i], "log_stream": streams[i], "end_time": times[i], "log_format": "json"}
            )
        elif kind == "start":
            starts.append((funcs[i], rid, times[i]))
        elif kind in ("timeout", "error"):
            if rid is None:
                orphans.append((i, kind, detail["error_type"]))
            else:
                _note_failure(failures, (funcs[i], rid), kind, detail["error_type"])
    if orphans:
        _attribute_orphans(df, orphans, is_start, msgs, failures)
    rep = pd.DataFrame(reports).drop(columns=["cold"], errors="ignore")
    st = pd.DataFrame(starts, columns=["function", "request_id", "start_time"])
    return rep, st, failures


def _note_failure(failures: dict, key: tuple, kind: str, error_type: str) -> None:
    if kind == "timeout" or key not in failures:
        failures[key] = (kind, error_type)


def _attribute_orphans(df, orphans, is_start, msgs, failures) -> None:
    """Unhandled-exception lines name no request: give each the last START before it in its stream."""
    start_idx = np.flatnonzero(is_start.to_numpy(zero_copy_only=False))
    pos = np.concatenate([start_idx, np.array([o[0] for o in orphans], dtype=np.int64)])
    lines = pd.DataFrame(
        {
            "function": df["function"].to_numpy(object)[pos],
            "log_stream": df["log_stream"].to_numpy(object)[pos],
            "timestamp": df["timestamp"].to_numpy()[pos],
            "pos": pos,
            "is_start": np.r_[np.ones(len(start_idx), bool), np.zeros(len(orphans), bool)],
        }
    )
    lines = lines.sort_values(["function", "log_stream", "timestamp", "pos"], kind="stable")
    lines["open_pos"] = lines["pos"].where(lines["is_start"])
    lines["open_pos"] = lines.groupby(["function", "log_stream"], sort=False)["open_pos"].ffill()
    opened = lines[~lines["is_start"]].set_index("pos")["open_pos"]
    for i, kind, etype in orphans:
        j = opened.get(i)
        if j is not None and not pd.isna(j):
            start_kind, rid, _ = classify_line(msgs[int(j)].as_py())  # a text START line: its request
            if start_kind == "start" and rid is not None:
                _note_failure(failures, (df["function"].iat[i], rid), kind, etype)


def _finish(out: pd.DataFrame, starts: pd.DataFrame, failures: dict) -> pd.DataFrame:
    out["end_time"] = _end_times(out["end_time"])
    out["init_duration_ms"] = out["init_duration_ms"].astype(float)
    out["cold"] = out["init_duration_ms"].notna()
    fallback = _minus_ms(out["end_time"], out["duration_ms"])
    if len(starts):
        starts = starts.drop_duplicates(["function", "request_id"], keep="last")
        starts = starts.assign(start_time=_utc(starts["start_time"]))
        out = out.merge(starts, on=["function", "request_id"], how="left")
        out["start_time"] = out["start_time"].fillna(fallback)
    else:
        out["start_time"] = fallback
    if failures:
        _apply_failures(out, failures)
    timed_out = (out["status"] == "timeout") & out["error_type"].isna()
    if timed_out.any():
        out.loc[timed_out, "error_type"] = TIMEOUT_ERROR_TYPE
    for col in _CATEGORICAL:
        out[col] = _sorted_categories(out[col])
    out = out[INVOCATION_COLUMNS]
    if not _in_order(out["function"], out["end_time"]):  # a stable sort of sorted rows changes nothing
        out = out.sort_values(["function", "end_time"], kind="stable")
    return out.reset_index(drop=True)


_CATEGORICAL = ("status", "log_format")  # few values on many rows: 1 byte a row (as object 8, as str 12)


def _sorted_categories(col: pd.Series) -> pd.Series:
    """``col`` as a categorical of the values it holds, sorted (the same however the rows were read)."""
    if not isinstance(col.dtype, pd.CategoricalDtype):
        return col.astype("category")
    codes, used = col.array.codes, np.zeros(len(col.cat.categories) + 1, np.int64)
    for i in range(0, len(codes), 1 << 16):  # a piece at a time: bincount would widen all codes to int64
        used += np.bincount(codes[i : i + (1 << 16)].astype(np.int64) + 1, minlength=len(used))
    if not used[1:].all():
        col = col.cat.remove_unused_categories()
    cats = col.cat.categories
    return col if cats.is_monotonic_increasing else col.cat.reorder_categories(sorted(cats))


def _minus_ms(end: pd.Series, ms: pd.Series, rows: int = 1 << 16) -> pd.Series:
    """``end - to_timedelta(ms, unit="ms")`` a piece at a time (at once it held five temporaries of the whole)."""
    if len(end) <= rows:
        return end - pd.to_timedelta(ms, unit="ms")
    values = np.empty(len(end), np.int64)
    for i in range(0, len(end), rows):
        part = end.iloc[i : i + rows] - pd.to_timedelta(ms.iloc[i : i + rows], unit="ms")
        values[i : i + rows] = part.array.asi8
    # epoch values as the tz-aware dtype: a view (tz_localize would copy them)
    return pd.Series(values, index=end.index, copy=False).astype(part.dtype)


def _in_order(function: pd.Series, end_time: pd.Series) -> bool:
    """Whether the rows are already sorted by (function, end_time), checked without sorting."""
    if len(function) < 2:
        return True
    if function.isna().any() or end_time.isna().any():
        return False
    if function.dtype != "str" or not isinstance(end_time.dtype, pd.DatetimeTZDtype):
        return False
    f, t = pa.array(function, type=pa.large_string()), end_time.array.asi8
    same = pc.equal(f[1:], f[:-1]).to_numpy(zero_copy_only=False)
    return not pc.any(pc.less(f[1:], f[:-1])).as_py() and not (same & (t[1:] < t[:-1])).any()


def _end_times(ms: pd.Series) -> pd.Series:
    """Epoch milliseconds → UTC times in ms: a view of the input's timestamps when every line was a REPORT
    (pandas tracks the view: writing to either copies first)."""
    return ms.astype("datetime64[ms, UTC]") if pd.api.types.is_integer_dtype(ms) else _utc(ms)


def _utc(s: pd.Series) -> pd.Series:
    s = pd.to_datetime(s, unit="ms") if pd.api.types.is_integer_dtype(s) else pd.to_datetime(s)
    return s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")


def _apply_failures(out: pd.DataFrame, failures: dict) -> None:
    keys = pd.MultiIndex.from_tuples(list(failures), names=["function", "request_id"])
    fail = pd.DataFrame(list(failures.values()), index=keys, columns=["f_status", "f_error_type"])
    joined = out[["function", "request_id"]].join(fail, on=["function", "request_id"])
    mask = joined["f_status"].notna() & (out["status"] == "success")
    if isinstance(out["status"].dtype, pd.CategoricalDtype):
        new = set(joined.loc[mask, "f_status"]) - set(out["status"].cat.categories)
        out["status"] = out["status"].cat.add_categories(sorted(new))
    out.loc[mask, "status"] = joined.loc[mask, "f_status"]
    out.loc[mask, "error_type"] = joined.loc[mask, "f_error_type"]
