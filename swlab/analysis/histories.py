"""Step Functions execution histories → executions rows and per-state visits (pure; no boto3).

Reads both shapes the lab meets: ``GetExecutionHistory`` events (Standard, and Express on the
local cloud) and the JSON records an Express state machine writes to its CloudWatch log group
(level ALL, include execution data), which is the only history AWS keeps for Express.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd


def normalise_history_event(event: dict) -> dict:
    """A ``get_execution_history`` event or an Express log record → (id, previous_id, type, timestamp, details).

    Express log records (CloudWatch Logs, level ALL) look like
    ``{"id": "3", "type": "TaskStateEntered", "details": {...}, "previous_event_id": "2",
    "event_timestamp": "1700000000123", "execution_arn": ...}``.
    """
    if "event_timestamp" in event:
        ts = pd.Timestamp(int(event["event_timestamp"]), unit="ms", tz="UTC")
        return {
            "id": int(event["id"]),
            "previous_id": int(event.get("previous_event_id") or 0),
            "type": event["type"],
            "timestamp": ts,
            "details": event.get("details") or {},
            "execution_arn": event.get("execution_arn"),
        }
    details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
    return {
        "id": int(event["id"]),
        "previous_id": int(event.get("previousEventId") or 0),
        "type": event["type"],
        "timestamp": pd.Timestamp(event["timestamp"]).tz_convert("UTC")
        if pd.Timestamp(event["timestamp"]).tzinfo
        else pd.Timestamp(event["timestamp"], tz="UTC"),
        "details": details,
    }


_FAILED_SUFFIXES = ("Failed", "TimedOut", "StartFailed", "SubmitFailed", "ScheduleFailed")


def history_to_states(events: list[dict], execution_arn: str) -> pd.DataFrame:
    """Normalised history events → one row per state visit.

    Columns: execution_arn, state, state_type, entered, exited, duration_ms,
    status (succeeded/failed/unfinished: the outcome of the last attempt),
    resource (Lambda function name or the service integration), error (the
    last error seen, also when a retry then succeeded), failed_attempts.
    """
    by_id = {e["id"]: e for e in events}
    open_states: dict[str, list[dict]] = {}
    rows: list[dict] = []
    row_of_entered: dict[int, dict] = {}
    for e in sorted(events, key=lambda e: e["id"]):
        t = e["type"]
        if t.endswith("StateEntered"):
            row = {
                "execution_arn": execution_arn,
                "state": e["details"].get("name"),
                "state_type": t[: -len("StateEntered")],
                "entered": e["timestamp"],
                "exited": pd.NaT,
                "status": "unfinished",
                "resource": None,
                "error": None,
                "failed_attempts": 0,
            }
            rows.append(row)
            row_of_entered[e["id"]] = row
            open_states.setdefault(row["state"], []).append(row)
        elif t.endswith("StateExited"):
            stack = open_states.get(e["details"].get("name"), [])
            if stack:
                row = stack.pop(0)
                row["exited"] = e["timestamp"]
                row["status"] = "failed" if row.pop("_last_failed", False) else "succeeded"
        elif t.endswith("Scheduled") and (owner := _owner(e, by_id, row_of_entered)) is not None:
            owner["resource"] = _resource_name(e["details"])
        elif t.endswith(_FAILED_SUFFIXES) and (owner := _owner(e, by_id, row_of_entered)) is not None:
            owner["error"] = e["details"].get("error") or t
            owner["failed_attempts"] += 1
            owner["status"], owner["_last_failed"] = "failed", True
        elif t.endswith("Succeeded") and (owner := _owner(e, by_id, row_of_entered)) is not None:
            owner["_last_failed"] = False
    for row in rows:
        row.pop("_last_failed", None)
    df = pd.DataFrame(
        rows,
        columns=[
            "execution_arn",
            "state",
            "state_type",
            "entered",
            "exited",
            "status",
            "resource",
            "error",
            "failed_attempts",
        ],
    )
    df["duration_ms"] = (
        pd.to_datetime(df["exited"], utc=True) - pd.to_datetime(df["entered"], utc=True)
    ).dt.total_seconds() * 1000
    return df


def _owner(event: dict, by_id: dict, row_of_entered: dict) -> dict | None:
    """The state visit an event belongs to: follow previous ids back to a ``*StateEntered`` event."""
    cur: dict | None = event
    for _ in range(1000):
        if cur is None:
            return None
        if cur["id"] in row_of_entered:
            return row_of_entered[cur["id"]]
        cur = by_id.get(cur["previous_id"])
    return None


def _resource_name(details: dict) -> str | None:
    """Lambda function name (from a resource ARN or the ``FunctionName`` parameter), else the resource."""
    params = details.get("parameters")
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            params = {}
    name = (params or {}).get("FunctionName") if isinstance(params, dict) else None
    resource = name or details.get("resource")
    if not resource:
        return None
    rtype = details.get("resourceType")
    if rtype and rtype != "lambda" and not name:
        return f"{rtype}:{resource}"
    if ":function:" in resource:
        return resource.split(":function:", 1)[1].split(":", 1)[0]
    return resource.split(":", 1)[0] if name else resource


def executions_from_history(events: list[dict], execution_arn: str, state_machine: str) -> dict:
    """One executions row (status, start, stop, duration_ms) from normalised history events."""
    start = next((e["timestamp"] for e in events if e["type"] == "ExecutionStarted"), pd.NaT)
    end_ev = next(
        (e for e in reversed(events) if e["type"].startswith("Execution") and e["type"] != "ExecutionStarted"), None
    )
    status = (
        {
            "ExecutionSucceeded": "SUCCEEDED",
            "ExecutionFailed": "FAILED",
            "ExecutionTimedOut": "TIMED_OUT",
            "ExecutionAborted": "ABORTED",
        }.get(end_ev["type"], "RUNNING")
        if end_ev
        else "RUNNING"
    )
    stop = end_ev["timestamp"] if end_ev else pd.NaT
    return {
        "execution_arn": execution_arn,
        "state_machine": state_machine,
        "status": status,
        "start_date": start,
        "stop_date": stop,
        "error": (end_ev or {}).get("details", {}).get("error") if status == "FAILED" else None,
        "image_id": _input_image_id(events),
    }


def _input_image_id(events: list[dict]) -> str | None:
    """The ``image_id`` of the execution's input (its ExecutionStarted event), if it names one."""
    started = next((e for e in events if e["type"] == "ExecutionStarted"), None)
    raw = (started or {}).get("details", {}).get("input")
    try:
        document = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    image_id = document.get("image_id") if isinstance(document, dict) else None
    return image_id if isinstance(image_id, str) else None


def express_log_records(log_events: pd.DataFrame) -> dict[str, list[dict]]:
    """Express execution events from a state machine's log group → {execution_arn: normalised events}."""
    out: dict[str, list[dict]] = {}
    for msg in log_events.get("message", []):
        try:
            rec = json.loads(msg)
        except ValueError:
            continue
        if isinstance(rec, dict) and "event_timestamp" in rec and rec.get("execution_arn"):
            out.setdefault(rec["execution_arn"], []).append(normalise_history_event(rec))
    return out


def executions_frame(rows: list[dict]) -> pd.DataFrame:
    cols = ["execution_arn", "state_machine", "status", "start_date", "stop_date", "error", "image_id", "source"]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("start_date", "stop_date"):
        df[c] = pd.to_datetime(df[c], utc=True)
    df["duration_ms"] = (df["stop_date"] - df["start_date"]).dt.total_seconds() * 1000
    return df
