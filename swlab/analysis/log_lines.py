"""One Lambda log line → what it says: the grammar of the platform lines, text and JSON formats.

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

Public API: :func:`parse_report_line`, :func:`classify_line`, :func:`json_object`,
:data:`TIMEOUT_ERROR_TYPE`. These read one line at a time; :mod:`swlab.analysis.log_columns` reads
the bulk of text REPORT lines column-wise with the same rules, and :func:`swlab.analysis.logs.parse_log_events`
puts both together into invocations. The lines are written (by the local cloud, and into synthetic
fixtures) by ``swlab.localcloud.report_lines``; tests/unit/test_report_lines.py checks that what it
writes parses back to the same values. The functions' own ``aws_calls`` lines are read by
:mod:`swlab.analysis.aws_calls`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"

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
