"""The platform's log lines, in AWS's exact text: START, END, REPORT, timeouts, INIT_*, runtime exits.

The one writer of these lines in the lab: the Lambda data plane writes them
into CloudWatch Logs, :mod:`swlab.bench.synthetic` writes them into seeded
fixtures, and :mod:`swlab.analysis.logs` parses them back (a round-trip test,
tests/unit/test_report_lines.py, holds the two together). Standard library only.

Each function returns one log message without a trailing newline::

    START RequestId: <id> Version: $LATEST
    END RequestId: <id>
    REPORT RequestId: <id>\\tDuration: 12.34 ms\\tBilled Duration: 13 ms\\tMemory Size: 128 MB\\t
      Max Memory Used: 45 MB\\tInit Duration: 123.45 ms\\t        (Init Duration only on cold starts;
      then Status: timeout|error and Error Type: ... on platform failures)
    2026-11-27T04:00:05.002Z <id> Task timed out after 3.00 seconds
    INIT_START Runtime Version: python:3.11.localcloud\\tRuntime Version ARN: ...
    INIT_REPORT Init Duration: 10.00 ms\\tPhase: init\\tStatus: error\\tError Type: Runtime.ExitError\\t
    RequestId: <id> Error: Runtime exited with error: signal: killed\\nRuntime.ExitError
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any


def start_line(request_id: str, version: str = "$LATEST") -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    duration_ms: float,
    billed_duration_ms: int,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    """A text REPORT line as Lambda writes it (tab-separated, trailing tab).

    ``status``/``error_type`` are appended only for a platform failure
    (``Status: timeout``, ``Status: error\\tError Type: Runtime.OutOfMemory``);
    ``None`` or ``"success"`` adds nothing.
    """
    parts = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {int(billed_duration_ms)} ms",
        f"Memory Size: {int(memory_size_mb)} MB",
        f"Max Memory Used: {int(max_memory_used_mb)} MB",
    ]
    if init_duration_ms is not None:
        parts.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status and status != "success":
        parts.append(f"Status: {status}")
        if error_type:
            parts.append(f"Error Type: {error_type}")
    return "\t".join(parts) + "\t"


def timeout_line(request_id: str, seconds: float, when: datetime | None = None) -> str:
    """``2026-11-27T04:00:05.002Z <id> Task timed out after 3.00 seconds`` (``when`` defaults to now)."""
    return f"{iso_ms(when)} {request_id} Task timed out after {seconds:.2f} seconds"


def init_start_line(runtime: str, region: str) -> str:
    """The INIT_START line of a new environment (``python3.11`` → ``python:3.11.localcloud``)."""
    return (
        f"INIT_START Runtime Version: {runtime.replace('python', 'python:')}.localcloud\t"
        f"Runtime Version ARN: arn:aws:lambda:{region}::runtime:localcloud"
    )


def init_report_line(init_duration_ms: float, status: str, error_type: str | None = None, phase: str = "init") -> str:
    """INIT_REPORT of an init that failed (``status`` timeout or error; the error type only for error).

    ``phase`` is ``init``, or ``invoke`` for an init run again inside the first invocation after the
    init phase timed out.
    """
    return f"INIT_REPORT Init Duration: {init_duration_ms:.2f} ms\tPhase: {phase}\tStatus: {status}\t" + (
        f"Error Type: {error_type}\t" if status == "error" and error_type is not None else ""
    )


def runtime_exit_message(request_id: str, reason: str) -> str:
    """``RequestId: <id> Error: Runtime exited with error: <reason>``; a clean exit (``exit status 0``, as
    ``sys.exit(0)`` in a handler) is ``... Error: Runtime exited without providing a reason``."""
    if reason == "exit status 0":
        return f"RequestId: {request_id} Error: Runtime exited without providing a reason"
    return f"RequestId: {request_id} Error: Runtime exited with error: {reason}"


def runtime_exit_line(request_id: str, reason: str, error_type: str) -> str:
    """The runtime died during an invoke (one message, two lines): :func:`runtime_exit_message` + ``\\n<type>``."""
    return f"{runtime_exit_message(request_id, reason)}\n{error_type}"


def report_json(
    request_id: str,
    duration_ms: float,
    billed_duration_ms: int,
    memory_size_mb: int,
    max_memory_used_mb: int,
    when: datetime,
    init_duration_ms: float | None = None,
    status: str = "success",
    error_type: str | None = None,
) -> str:
    """A JSON-format ``platform.report`` event (Lambda Telemetry API field names)."""
    metrics: dict[str, Any] = {
        "durationMs": round(duration_ms, 2),
        "billedDurationMs": int(billed_duration_ms),
        "memorySizeMB": int(memory_size_mb),
        "maxMemoryUsedMB": int(max_memory_used_mb),
    }
    if init_duration_ms is not None:
        metrics["initDurationMs"] = round(init_duration_ms, 2)
    record: dict[str, Any] = {"requestId": request_id, "metrics": metrics, "status": status}
    if error_type:
        record["errorType"] = error_type
    return json.dumps({"time": iso_ms(when), "type": "platform.report", "record": record})


def billed_duration_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the next millisecond."""
    return math.ceil(duration_ms)


def iso_ms(when: datetime | None = None) -> str:
    """``2026-11-27T04:00:05.002Z``: UTC, milliseconds (a naive ``when`` is taken as UTC; None is now)."""
    if when is None:
        when = datetime.now(timezone.utc)
    when = when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
