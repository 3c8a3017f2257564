"""Lambda log lines → invocation rows (text and JSON log formats).

One concern: reading what Lambda writes per invocation, in both of AWS's log formats, into one table
(the fast column-wise path for text lines and the row-wise path for the rest share their rules).

Lambda writes, per invocation, into ``/aws/lambda/<function>``:

* text format (the default)::

    START RequestId: <id> Version: $LATEST
    END RequestId: <id>
    REPORT RequestId: <id>\\tDuration: 12.34 ms\\tBilled Duration: 13 ms\\tMemory Size: 128 MB\\t
      Max Memory Used: 45 MB\\tInit Duration: 123.45 ms\\t        (Init Duration only on cold starts)
    <timestamp> <id> Task timed out after 3.00 seconds        (timeouts)
    [ERROR] ValueError: boom\\rTraceback ...                   (unhandled exception, runtime-written)
    RequestId: <id> Error: Runtime exited with error: ...      (crash; last token e.g. Runtime.ExitError)

  Newer REPORT lines may end with ``Status: timeout`` / ``Status: error`` and
  ``Error Type: Runtime.OutOfMemory``; both are read when present.
* JSON format (``LoggingConfig.LogFormat = JSON``): one object per event,
  ``{"time", "type": "platform.start"|"platform.report"|"platform.runtimeDone"|...,
  "record": {"requestId", "metrics": {"durationMs", "billedDurationMs", "memorySizeMB",
  "maxMemoryUsedMB", "initDurationMs"?}, "status": "success"|"failure"|"error"|"timeout",
  "errorType"?}}`` (Lambda Telemetry API schema); unhandled exceptions as
  ``{"timestamp", "level": "ERROR", "errorType", "errorMessage", "requestId", "stackTrace"}``.

Public API: :func:`parse_report_line`, :func:`parse_log_events` (→ one row per
invocation, columns in :data:`INVOCATION_COLUMNS`), :func:`classify_line`, :func:`json_object`.
The lines are written (by the local cloud, and into synthetic fixtures) by
``swlab.localcloud.report_lines``; tests/unit/test_report_lines.py checks that
what it writes parses back here to the same values. The functions' own
``aws_calls`` lines are read by :mod:`swlab.analysis.aws_calls`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"
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

_REPORT_RE = re.compile(
    r"REPORT RequestId: (?P<request_id>\S+)\s+"
    r"Duration: (?P<duration_ms>[\d.]+) ms\s+"
    r"Billed Duration: (?P<billed_duration_ms>\d+) ms\s+"
    r"Memory Size: (?P<memory_size_mb>\d+) MB\s+"
    r"Max Memory Used: (?P<max_memory_used_mb>\d+) MB"
    r"(?:\s+Init Duration: (?P<init_duration_ms>[\d.]+) ms)?"
    r"(?:\s+Restore Duration: [\d.]+ ms)?"
    r"(?:\s+Status: (?P<status>\w+))?"
    r"(?:\s+Error Type: (?P<error_type>\S+))?"
)
_START_RE = re.compile(r"START RequestId: (\S+)")
_END_RE = re.compile(r"END RequestId: (\S+)")
_TIMEOUT_RE = re.compile(r"^\S+ (\S+) Task timed out after ([\d.]+) seconds")
_RUNTIME_ERROR_RE = re.compile(r"^RequestId: (\S+) Error: (.*?)(?:\s+(Runtime\.\w+))?\s*$", re.S)
_UNHANDLED_RE = re.compile(r"^\[ERROR\] ([A-Za-z_][\w.]*)")
_JSON_METRICS = {
    "durationMs": "duration_ms",
    "billedDurationMs": "billed_duration_ms",
    "memorySizeMB": "memory_size_mb",
    "maxMemoryUsedMB": "max_memory_used_mb",
    "initDurationMs": "init_duration_ms",
}


def _report_dict(request_id: str, values: dict[str, Any], status: str | None, error_type: str | None) -> dict:
    init = values.get("init_duration_ms")
    return {
        "request_id": request_id,
        "duration_ms": float(values["duration_ms"]),
        "billed_duration_ms": int(float(values["billed_duration_ms"])),
        "memory_size_mb": int(float(values["memory_size_mb"])),
        "max_memory_used_mb": int(float(values["max_memory_used_mb"])),
        "init_duration_ms": None if init is None else float(init),
        "cold": init is not None,
        "status": status or "success",
        "error_type": error_type or None,
    }


def parse_report_line(message: str) -> dict | None:
    """One REPORT line (text or JSON ``platform.report``) → a dict, or None if it is not one.

    Keys: request_id, duration_ms, billed_duration_ms, memory_size_mb,
    max_memory_used_mb, init_duration_ms (None when warm), cold, status
    ('success' unless the line says otherwise), error_type (None or e.g.
    'Runtime.OutOfMemory').
    """
    if message.startswith("REPORT"):
        m = _REPORT_RE.match(message)
        if not m:
            return None
        g = m.groupdict()
        return _report_dict(g["request_id"], g, g["status"], g["error_type"])
    if message.startswith("{") and '"platform.report"' in message:
        obj = json_object(message)
        if not obj or obj.get("type") != "platform.report":
            return None
        rec = obj.get("record") or {}
        metrics = {_JSON_METRICS[k]: v for k, v in (rec.get("metrics") or {}).items() if k in _JSON_METRICS}
        if "duration_ms" not in metrics:
            return None
        metrics.setdefault("billed_duration_ms", np.ceil(metrics["duration_ms"]))
        metrics.setdefault("memory_size_mb", 0)
        metrics.setdefault("max_memory_used_mb", 0)
        return _report_dict(rec.get("requestId", ""), metrics, rec.get("status"), rec.get("errorType"))
    return None


def json_object(message: str) -> dict | None:
    """The JSON object a message holds, or None (not JSON, or JSON but not an object)."""
    try:
        obj = json.loads(message)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def classify_line(message: str) -> tuple[str, str | None, dict | None]:
    """``(kind, request_id, detail)`` for one log message.

    kind is one of start, end, report, timeout, error, other. ``detail`` holds
    the parsed REPORT dict (report) or ``{"error_type": ...}`` (timeout, error).
    An unhandled-exception line names no request: its request_id is None and
    the caller attributes it to the invocation open in that stream.
    """
    c = message[:1]
    if c == "R":
        if message.startswith("REPORT"):
            rep = parse_report_line(message)
            return ("report", rep["request_id"], rep) if rep else ("other", None, None)
        m = _RUNTIME_ERROR_RE.match(message)
        if m:
            return "error", m.group(1), {"error_type": m.group(3) or "Runtime.Error"}
    elif c == "S" and message.startswith("START RequestId: "):
        m = _START_RE.match(message)
        return ("start", m.group(1), None) if m else ("other", None, None)
    elif c == "E" and message.startswith("END RequestId: "):
        m = _END_RE.match(message)
        return ("end", m.group(1), None) if m else ("other", None, None)
    elif c == "{":
        return _classify_json(message)
    elif c == "[" and message.startswith("[ERROR] "):
        m = _UNHANDLED_RE.match(message)
        return "error", None, {"error_type": m.group(1) if m else "Unhandled"}
    if "Task timed out after" in message:
        m = _TIMEOUT_RE.match(message)
        if m:
            return "timeout", m.group(1), {"error_type": TIMEOUT_ERROR_TYPE}
    return "other", None, None


def _classify_json(message: str) -> tuple[str, str | None, dict | None]:
    obj = json_object(message)
    if obj is None:
        return "other", None, None
    kind = obj.get("type")
    rec: dict[str, Any] = obj["record"] if isinstance(obj.get("record"), dict) else {}
    if kind == "platform.report":
        rep = parse_report_line(message)
        return ("report", rep["request_id"], rep) if rep else ("other", None, None)
    if kind == "platform.start":
        return "start", rec.get("requestId"), None
    if kind == "platform.runtimeDone" and rec.get("status") not in (None, "success"):
        status = rec.get("status")
        etype = TIMEOUT_ERROR_TYPE if status == "timeout" else rec.get("errorType") or "Runtime.Error"
        return ("timeout" if status == "timeout" else "error"), rec.get("requestId"), {"error_type": etype}
    if obj.get("level") == "ERROR" and "errorType" in obj:
        return "error", obj.get("requestId"), {"error_type": obj["errorType"] or "Unhandled"}
    return "other", None, None


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

    Text START/END/REPORT lines are parsed column-wise (REPORT lines straight from
    the Arrow text buffer, a piece at a time: see ``_text_reports``); the few other
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
    text_reports = _text_reports(df, msgs, is_report)
    starts = _text_starts(df, msgs, is_start)
    rest = np.flatnonzero(~pc.or_(pc.or_(is_report, is_start), is_end).to_numpy(zero_copy_only=False))
    json_reports, json_starts, failures = _scan_other_lines(df, rest, is_start, msgs)
    out = (
        pd.concat([f for f in (text_reports, json_reports) if len(f)], ignore_index=True)
        if len(json_reports)
        else text_reports
    )
    if len(out) == 0:
        return _empty_invocations()
    starts = pd.concat([starts, json_starts], ignore_index=True) if len(json_starts) else starts
    return _finish(out, starts, failures)


_FIXED_FIELDS = (  # the first five tab-separated REPORT fields, always in this order: prefix, column, unit, type
    ("REPORT RequestId: ", "request_id", 0, None),
    ("Duration: ", "duration_ms", 3, pa.float64()),
    ("Billed Duration: ", "billed_duration_ms", 3, pa.int64()),
    ("Memory Size: ", "memory_size_mb", 3, pa.int64()),
    ("Max Memory Used: ", "max_memory_used_mb", 3, pa.int64()),
)
_OPTIONAL_FIELDS = (  # fields that may follow, in any order (of a repeated one, the last wins)
    ("Init Duration: ", "init_duration_ms", 3, pa.float64()),
    ("Status: ", "status", 0, None),
    ("Error Type: ", "error_type", 0, None),
)
_PIECE_ROWS = 1 << 16  # lines read at once: a piece's scratch stays a few MB whatever the input's size
_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True  # the ASCII that utf8_rtrim_whitespace trims


def _text_reports(df: pd.DataFrame, msgs: pa.ChunkedArray, mask: pa.ChunkedArray) -> pd.DataFrame:
    """Tab-separated REPORT lines, column-wise, one piece of the message column at a time.

    In a piece the tabs are found once (numpy over the Arrow text buffer); each field is then checked
    for its prefix and read as an Arrow view into that same buffer (new offsets, no copy of the text),
    which Arrow casts to numbers. Only the request ids are copied. Lines not in AWS's layout (fewer than
    five tab-separated fields, a field without its prefix, non-ASCII text) and the lines of a piece
    with a value that does not convert go through the regex one by one.
    """
    sel = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    # Each piece's values go straight into columns sized for every REPORT line (no second copy to join).
    cols: dict[str, np.ndarray] = {
        name: np.empty(len(sel), typ.to_pandas_dtype()) for _, name, _, typ in _FIXED_FIELDS[1:]
    }
    cols["init_duration_ms"] = np.full(len(sel), np.nan)
    cols["status"], cols["error_type"] = np.empty(len(sel), object), np.full(len(sel), None, object)
    cols["status"].fill("success")  # one shared str (np.full would make a million)
    ids: list[pa.Array] = []
    good: list[np.ndarray] = []
    bad: list[np.ndarray] = []
    seen: set[str] = set()
    n = base = 0
    for piece in _pieces(msgs):
        lo, hi = np.searchsorted(sel, [base, base + len(piece)])
        if hi > lo:
            part, read, left = _report_piece(piece, sel[lo:hi] - base)
            for name, values in part.items():
                if name == "request_id":
                    ids.append(values)
                elif isinstance(values, tuple):  # (lines, values) of a field on few lines
                    if values[1] is not None:
                        cols[name][values[0] + n] = values[1]
                        seen.add(name)
                else:
                    cols[name][n : n + len(read)] = values
            good.append(read + base)
            bad.append(left + base)
            n += len(read)
        base += len(piece)
    out = (
        _report_frame(df, np.concatenate(good), ids, {k: v[:n] for k, v in cols.items()}, seen) if n else pd.DataFrame()
    )
    left_rows = np.concatenate(bad) if bad else np.zeros(0, np.int64)
    if len(left_rows) == 0:
        return out
    return pd.concat([f for f in (out, _regex_reports(df, msgs, left_rows)) if len(f)], ignore_index=True)


def _pieces(msgs: pa.ChunkedArray | pa.Array) -> Iterable[pa.Array]:
    for chunk in msgs.chunks if isinstance(msgs, pa.ChunkedArray) else [msgs]:
        for lo in range(0, len(chunk), _PIECE_ROWS):
            yield chunk.slice(lo, _PIECE_ROWS)


def _report_frame(df: pd.DataFrame, good: np.ndarray, ids: list[pa.Array], cols: dict, seen: set) -> pd.DataFrame:
    """The read lines' columns; function and log stream are the input's own when every line was read."""
    every = len(good) == len(df)  # good is sorted and unique: then it is every row, in order
    for k in ("status", "error_type"):  # str once a line has the field, else object (as pandas infers)
        cols[k] = pd.Series(cols[k], dtype="str" if k in seen else object, copy=False)
    return pd.DataFrame(
        {
            "function": (df["function"] if every else _take(df["function"], good)).array,
            "log_stream": (df["log_stream"] if every else _take(df["log_stream"], good)).array,
            "end_time": df["timestamp"].to_numpy() if every else df["timestamp"].to_numpy()[good],
            "request_id": pd.array(pa.chunked_array(ids, pa.large_string()), dtype="str"),
            **cols,
            "log_format": _repeated("text", len(good)),
        },
        copy=False,
    )


def _repeated(value: str, n: int) -> pd.Series:
    """A ``str`` column of one value, built in Arrow (from a scalar pandas goes through n Python objects)."""
    raw = value.encode()
    offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int64) * len(raw))
    return pd.Series(pd.array(pa.LargeStringArray.from_buffers(n, offsets, pa.py_buffer(raw * n)), dtype="str"))


def _report_piece(piece: pa.Array, rows: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """The REPORT lines ``rows`` of one piece → (their columns, the rows read, the rows left to the regex)."""
    offsets, text = piece.buffers()[1:3]
    off = np.frombuffer(offsets, np.int64)[piece.offset : piece.offset + len(piece) + 1]
    data = np.frombuffer(text, np.uint8)
    lo, hi = int(off[0]), int(off[-1])
    tabs = np.append(np.flatnonzero(data[lo:hi] == 9) + lo, hi)  # with a sentinel after the last tab
    s, e = off[rows], off[rows + 1]
    first = np.searchsorted(tabs[:-1], s)
    ntabs = np.searchsorted(tabs[:-1], e) - first
    ok = ntabs >= len(_FIXED_FIELDS) - 1
    # Non-ASCII text: trimming (Unicode whitespace) and cutting units (code points) by Arrow's kernels.
    trim = _Trim(text, data, unicode=hi > lo and int(data[lo:hi].max()) >= 0x80)
    words = np.ndarray((max(len(data) - 7, 0),), "<u8", text, 0, (1,))  # the 8 bytes from each position
    first, ntabs, s, e = first[ok], ntabs[ok], s[ok], e[ok]
    fields, valid = [], np.ones(len(s), bool)
    for k, (prefix, *_) in enumerate(_FIXED_FIELDS):
        start = s if k == 0 else tabs[first + k - 1] + 1
        end = trim.rtrim(start, np.where(ntabs > k, tabs[first + k], e))
        # the line starts with the first prefix: only trailing whitespace can have been cut into it
        valid &= (end - start >= len(prefix)) if k == 0 else _starts_with(words, start, end, prefix)
        fields.append((start, end))
    read = rows[ok][valid]
    left = np.setdiff1d(rows, read, assume_unique=True)
    try:
        cols = {
            name: _values(trim, start[valid], end[valid], prefix, unit, typ)
            for (start, end), (prefix, name, unit, typ) in zip(fields, _FIXED_FIELDS)
        }
        cols.update(_optional_fields(trim, words, tabs, first[valid], ntabs[valid], e[valid]))
    except pa.ArrowInvalid:  # a value that does not convert: the regex judges every line of the piece
        return {}, rows[:0], rows
    return cols, read, left


def _optional_fields(trim: _Trim, words: np.ndarray, tabs, first, ntabs, e) -> dict:
    """The fields after the fifth (Init Duration, Status, Error Type), wherever they are.

    Init Duration as a column; Status and Error Type, on few lines, as (lines, values).
    """
    n = len(first)
    extra = ntabs - (len(_FIXED_FIELDS) - 1)  # fields after the fifth, the empty one after a trailing tab too
    line = np.repeat(np.arange(n), extra)
    k = len(_FIXED_FIELDS) + np.arange(len(line)) - np.repeat(np.cumsum(extra) - extra, extra)
    start = tabs[first[line] + k - 1] + 1
    end = trim.rtrim(start, np.where(k < ntabs[line], tabs[first[line] + k], e[line]))
    cols: dict[str, Any] = {"init_duration_ms": np.full(n, np.nan)}
    for prefix, name, unit, typ in _OPTIONAL_FIELDS:
        hit = _starts_with(words, start, end, prefix)
        vals = _values(trim, start[hit], end[hit], prefix, unit, typ) if hit.any() else None
        if typ is not None:
            if vals is not None:
                cols[name][line[hit]] = vals
        else:
            cols[name] = (line[hit], vals.to_numpy(zero_copy_only=False) if vals is not None else None)
    return cols


class _Trim:
    """Field ends in one piece's text: trailing whitespace trimmed, units cut (bytes when it is all ASCII)."""

    def __init__(self, text: pa.Buffer, data: np.ndarray, unicode: bool):
        self.text, self.data, self.unicode = text, data, unicode

    def rtrim(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        if self.unicode:
            return start + _even(pc.binary_length(pc.utf8_rtrim_whitespace(_view(self.text, start, end))))
        end = end.copy()
        live = np.flatnonzero(end > start)
        while len(live):
            live = live[_WHITESPACE[self.data[end[live] - 1]]]
            end[live] -= 1
            live = live[end[live] > start[live]]
        return end

    def cut(self, begin: np.ndarray, end: np.ndarray, unit: int) -> np.ndarray:
        """The end of each value once its last ``unit`` characters are cut (never before ``begin``)."""
        if self.unicode and unit:
            return begin + _even(pc.binary_length(pc.utf8_slice_codeunits(_view(self.text, begin, end), 0, -unit)))
        return np.maximum(end - unit, begin)


def _even(lengths: pa.Array) -> np.ndarray:
    """The values at even slots of an int64 array made from a :func:`_view` (the odd slots are null)."""
    return np.frombuffer(lengths.buffers()[1], np.int64, len(lengths), lengths.offset * 8)[::2]


def _starts_with(words: np.ndarray, start: np.ndarray, end: np.ndarray, prefix: str) -> np.ndarray:
    """Which fields start with ``prefix`` (8 to 24 ASCII characters), compared 8 bytes at a time."""
    raw = prefix.encode()
    hit = end - start >= len(raw)
    at = np.where(hit, start, 0)
    for d in sorted({0, min(8, len(raw) - 8), len(raw) - 8}):  # overlapping words cover the prefix
        hit &= words[at + d] == int.from_bytes(raw[d : d + 8], "little")
    return hit


def _values(trim: _Trim, start: np.ndarray, end: np.ndarray, prefix: str, unit: int, typ) -> Any:
    """Each field without its prefix and its last ``unit`` characters: numbers (``typ``) or strings."""
    begin = start + len(prefix)
    view = _view(trim.text, begin, trim.cut(begin, end, unit))
    if typ is None:
        return view.drop_null()
    got = pc.cast(view, typ)  # null slots (the text between the values) are not parsed
    return np.frombuffer(got.buffers()[1], typ.to_pandas_dtype(), len(got), got.offset * 8)[::2].copy()


def _view(text: pa.Buffer, begin: np.ndarray, end: np.ndarray) -> pa.Array:
    """Strings ``text[begin[i]:end[i]]`` without copying the text: value, gap, value, gap, … (gaps null)."""
    n = len(begin)
    offsets = np.empty(2 * n + 1, np.int64)
    offsets[0:-1:2], offsets[1::2] = begin, end
    offsets[-1] = end[-1] if n else 0
    valid = np.full((2 * n + 7) // 8, 0x55, np.uint8)  # bits 0, 2, 4, …: the values
    return pa.LargeStringArray.from_buffers(2 * n, pa.py_buffer(offsets), text, pa.py_buffer(valid), n)


def _take(col: pd.Series, sel: np.ndarray) -> pd.Series:
    """``col.iloc[sel]`` for ascending ``sel``; a ``str`` column chunk by chunk (Arrow's take would first
    join the chunks: a transient copy of the whole column)."""
    if col.dtype != "str":
        return col.iloc[sel].reset_index(drop=True)
    whole = pa.array(col, type=pa.large_string())
    chunks = whole.chunks if isinstance(whole, pa.ChunkedArray) else [whole]
    bounds = np.cumsum([0] + [len(c) for c in chunks])
    cut = np.searchsorted(sel, bounds)
    parts = [c.take(pa.array(sel[cut[i] : cut[i + 1]] - bounds[i])) for i, c in enumerate(chunks)]
    return pd.Series(pd.array(pa.chunked_array(parts, pa.large_string()), dtype=col.dtype), copy=False)


def _regex_reports(df: pd.DataFrame, msgs: pa.Array, sel: np.ndarray) -> pd.DataFrame:
    """REPORT lines that are not tab-separated (e.g. copied with spaces): one regex each."""
    rows = []
    for i in sel:
        rep = parse_report_line(msgs[int(i)].as_py())
        if rep:
            rows.append(
                {
                    **rep,
                    "function": df["function"].iat[i],
                    "log_stream": df["log_stream"].iat[i],
                    "end_time": df["timestamp"].iat[i],
                    "log_format": "text",
                }
            )
    return pd.DataFrame(rows).drop(columns=["cold"], errors="ignore")


def _text_starts(df: pd.DataFrame, msgs: pa.Array, mask: pa.Array) -> pd.DataFrame:
    sel = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    words = pc.split_pattern(msgs.filter(mask) if len(sel) else msgs[:0], " ", max_splits=3)
    rid = pc.utf8_trim_whitespace(pc.list_element(words, 2))
    return pd.DataFrame(
        {
            "function": _take(df["function"], sel),
            "request_id": pd.array(rid, dtype="str"),
            "start_time": df["timestamp"].to_numpy()[sel],
        }
    )


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
            m = _START_RE.match(msgs[int(j)].as_py())
            if m:
                _note_failure(failures, (df["function"].iat[i], m.group(1)), kind, etype)


def _finish(out: pd.DataFrame, starts: pd.DataFrame, failures: dict) -> pd.DataFrame:
    out["end_time"] = _utc(out["end_time"])
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
    out = out[INVOCATION_COLUMNS]
    if not _in_order(out["function"], out["end_time"]):  # a stable sort of sorted rows changes nothing
        out = out.sort_values(["function", "end_time"], kind="stable")
    return out.reset_index(drop=True)


def _minus_ms(end: pd.Series, ms: pd.Series, rows: int = _PIECE_ROWS) -> pd.Series:
    """``end - to_timedelta(ms, unit="ms")`` a piece at a time (at once it held five temporaries of the whole)."""
    if len(end) <= rows:
        return end - pd.to_timedelta(ms, unit="ms")
    values = np.empty(len(end), np.int64)
    for i in range(0, len(end), rows):
        part = end.iloc[i : i + rows] - pd.to_timedelta(ms.iloc[i : i + rows], unit="ms")
        values[i : i + rows] = part.array.asi8
    naive = pd.Series(values.view(f"M8[{part.dtype.unit}]"), index=end.index, copy=False)
    return naive.dt.tz_localize(part.dtype.tz)


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


def _utc(s: pd.Series) -> pd.Series:
    s = pd.to_datetime(s, unit="ms") if pd.api.types.is_integer_dtype(s) else pd.to_datetime(s)
    return s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")


def _apply_failures(out: pd.DataFrame, failures: dict) -> None:
    keys = pd.MultiIndex.from_tuples(list(failures), names=["function", "request_id"])
    fail = pd.DataFrame(list(failures.values()), index=keys, columns=["f_status", "f_error_type"])
    joined = out[["function", "request_id"]].join(fail, on=["function", "request_id"])
    mask = joined["f_status"].notna() & (out["status"] == "success")
    out.loc[mask, "status"] = joined.loc[mask, "f_status"]
    out.loc[mask, "error_type"] = joined.loc[mask, "f_error_type"]
