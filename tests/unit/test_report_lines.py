"""Platform lines written by swlab.localcloud.report_lines parse back with swlab.analysis.logs to the same values.

The data plane writes each message with a trailing newline; the parser must read them either way.
"""

import json
import math
from datetime import datetime, timezone

import pandas as pd
import pytest

from swlab.analysis.log_lines import TIMEOUT_ERROR_TYPE, classify_line, parse_report_line
from swlab.analysis.logs import parse_log_events
from swlab.localcloud.report_lines import (
    billed_duration_ms,
    end_line,
    init_report_line,
    init_start_line,
    iso_ms,
    report_json,
    report_line,
    runtime_exit_line,
    start_line,
    timeout_line,
)

pytestmark = pytest.mark.unit
T0 = 1_795_755_000_000  # epoch ms
WHEN = datetime(2026, 11, 27, 4, 0, 5, 2000, tzinfo=timezone.utc)


def invocation(
    rid: str,
    t_ms: int,
    duration_ms: float,
    memory: int,
    used: int,
    init_ms: float | None = None,
    failure: str | None = None,
    error_type: str | None = None,
    newline: str = "",
) -> list[tuple]:
    """One invocation's lines as the data plane writes them: (timestamp ms, message)."""
    end = t_ms + math.ceil(duration_ms)
    lines = []
    if init_ms is not None:
        lines.append((t_ms - 1, init_start_line("python3.11", "us-east-1")))
    lines.append((t_ms, start_line(rid)))
    if failure == "error":
        lines.append((end, runtime_exit_line(rid, "signal: killed", error_type)))
    lines.append((end, end_line(rid)))
    billed = billed_duration_ms(duration_ms + (init_ms or 0))
    lines.append(
        (
            end,
            report_line(
                rid, duration_ms, billed, memory, used, init_ms, failure, error_type if failure == "error" else None
            ),
        )
    )
    if failure == "timeout":
        lines.append((end, timeout_line(rid, duration_ms / 1000, WHEN)))
    return [(ts, msg + newline) for ts, msg in lines]


@pytest.mark.parametrize("newline", ["", "\n"])
def test_lines_round_trip_through_parse_log_events(newline):
    cases = {  # request id → (duration, memory, used, init, failure, error type)
        "warm-ok": (12.34, 128, 45, None, None, None),
        "cold-ok": (50.5, 256, 80, 245.67, None, None),
        "timeout": (3000.0, 128, 47, None, "timeout", None),
        "cold-timeout": (3000.0, 128, 47, 120.25, "timeout", None),
        "oom": (81.2, 128, 129, None, "error", "Runtime.OutOfMemory"),
        "crash": (7.5, 512, 60, 99.99, "error", "Runtime.ExitError"),
    }
    rows = []
    for k, (rid, (dur, mem, used, init, failure, etype)) in enumerate(cases.items()):
        for ts, msg in invocation(rid, T0 + k * 10_000, dur, mem, used, init, failure, etype, newline):
            rows.append({"function": "swlab-f", "log_stream": f"s{k}", "timestamp": ts, "message": msg})
    got = {r["request_id"]: r for r in parse_log_events(pd.DataFrame(rows)).to_dict("records")}
    assert set(got) == set(cases)
    for k, (rid, (dur, mem, used, init, failure, etype)) in enumerate(cases.items()):
        row = got[rid]
        assert row["duration_ms"] == dur and row["memory_size_mb"] == mem and row["max_memory_used_mb"] == used
        assert row["billed_duration_ms"] == math.ceil(dur + (init or 0))
        assert row["cold"] is (init is not None)
        assert (row["init_duration_ms"] == init) if init is not None else math.isnan(row["init_duration_ms"])
        assert row["status"] == (failure or "success")
        expected_type = TIMEOUT_ERROR_TYPE if failure == "timeout" else etype
        if expected_type:
            assert row["error_type"] == expected_type
        else:
            assert row["error_type"] is None or pd.isna(row["error_type"])
        assert row["start_time"] == pd.Timestamp(T0 + k * 10_000, unit="ms", tz="UTC")
        assert row["log_format"] == "text"


@pytest.mark.parametrize("init", [None, 123.45])
@pytest.mark.parametrize(
    "status,error_type", [(None, None), ("success", None), ("timeout", None), ("error", "Runtime.OutOfMemory")]
)
def test_report_line_round_trips_through_parse_report_line(init, status, error_type):
    line = report_line("r-1", 12.34, 13, 128, 45, init, status, error_type)
    assert (
        parse_report_line(line)
        == parse_report_line(line + "\n")
        == {
            "request_id": "r-1",
            "duration_ms": 12.34,
            "billed_duration_ms": 13,
            "memory_size_mb": 128,
            "max_memory_used_mb": 45,
            "init_duration_ms": init,
            "cold": init is not None,
            "status": status or "success",
            "error_type": error_type,
        }
    )


def test_the_other_platform_lines_classify_as_the_parser_expects():
    assert classify_line(start_line("r-1", "7")) == ("start", "r-1", None)
    assert classify_line(end_line("r-1")) == ("end", "r-1", None)
    timeout = {"error_type": TIMEOUT_ERROR_TYPE}
    assert classify_line(timeout_line("r-1", 3, WHEN)) == ("timeout", "r-1", timeout)
    for etype in ("Runtime.ExitError", "Runtime.OutOfMemory"):
        line = runtime_exit_line("r-1", "signal: killed", etype) + "\n"
        assert classify_line(line) == ("error", "r-1", {"error_type": etype})
    assert classify_line(init_start_line("python3.11", "us-east-1"))[0] == "other"
    assert classify_line(init_report_line(10.0, "error", "Runtime.ExitError"))[0] == "other"


def test_init_lines_are_aws_text():
    assert init_start_line("python3.11", "eu-west-1") == (
        "INIT_START Runtime Version: python:3.11.localcloud\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:localcloud"
    )
    assert (
        init_report_line(10, "timeout", "ignored")
        == "INIT_REPORT Init Duration: 10.00 ms\tPhase: init\tStatus: timeout\t"
    )
    assert (
        init_report_line(10, "error", "Runtime.ExitError")
        == "INIT_REPORT Init Duration: 10.00 ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError\t"
    )


def test_iso_ms_defaults_to_now_in_utc():
    assert iso_ms(WHEN) == "2026-11-27T04:00:05.002Z"
    assert iso_ms(WHEN.replace(tzinfo=None)) == "2026-11-27T04:00:05.002Z"
    assert iso_ms().endswith("Z") and len(iso_ms()) == len("2026-11-27T04:00:05.002Z")


def test_format_report_line_is_aws_text_and_round_trips():
    line = report_line("r-1", 12.3456, 13, 128, 45, 123.454)
    assert line == (
        "REPORT RequestId: r-1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 45 MB\tInit Duration: 123.45 ms\t"
    )
    assert parse_report_line(line)["init_duration_ms"] == 123.45
    warm = report_line("r-2", 3000, 3000, 128, 47, status="timeout")
    assert warm.endswith("Max Memory Used: 47 MB\tStatus: timeout\t")
    assert parse_report_line(warm)["status"] == "timeout"


def test_format_timeout_and_json_report_parse_back():
    when = datetime(2026, 11, 27, 4, 0, 5, 2000, tzinfo=timezone.utc)
    assert timeout_line("r-3", 3, when) == "2026-11-27T04:00:05.002Z r-3 Task timed out after 3.00 seconds"
    js = report_json("r-4", 10.5, 11, 256, 60, when, init_duration_ms=99.0)
    rep = parse_report_line(js)
    assert (rep["request_id"], rep["duration_ms"], rep["init_duration_ms"], rep["memory_size_mb"]) == (
        "r-4",
        10.5,
        99.0,
        256,
    )
    assert json.loads(js)["time"] == "2026-11-27T04:00:05.002Z"
