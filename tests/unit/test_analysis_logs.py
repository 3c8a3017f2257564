"""Lambda log parsing on hand-written fixture logs (text and JSON formats); the writer's round trips are in
test_report_lines.py."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from swlab.analysis import log_columns, logs
from swlab.analysis.log_lines import TIMEOUT_ERROR_TYPE, parse_report_line
from swlab.analysis.logs import INVOCATION_COLUMNS, parse_log_events
from swlab.bench.synthetic import report_events
from swlab.localcloud.report_lines import timeout_line

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"


def events(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())["events"]


def by_rid(df: pd.DataFrame) -> dict:
    return {r["request_id"]: r for r in df.to_dict("records")}


def test_cold_report_line_has_init_duration():
    line = (
        "REPORT RequestId: 3f2a\tDuration: 50.12 ms\tBilled Duration: 51 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 45 MB\tInit Duration: 245.67 ms\t"
    )
    rep = parse_report_line(line)
    assert rep == {
        "request_id": "3f2a",
        "duration_ms": 50.12,
        "billed_duration_ms": 51,
        "memory_size_mb": 128,
        "max_memory_used_mb": 45,
        "init_duration_ms": 245.67,
        "cold": True,
        "status": "success",
        "error_type": None,
    }


def test_warm_report_line_has_no_init_duration():
    rep = parse_report_line(
        "REPORT RequestId: abc\tDuration: 1.00 ms\tBilled Duration: 1 ms\t"
        "Memory Size: 2048 MB\tMax Memory Used: 99 MB\t\n"
    )
    assert rep["init_duration_ms"] is None and rep["cold"] is False and rep["memory_size_mb"] == 2048


def test_report_line_with_spaces_instead_of_tabs_and_status():
    rep = parse_report_line(
        "REPORT RequestId: x Duration: 3000.00 ms Billed Duration: 3000 ms Memory Size: 128 MB "
        "Max Memory Used: 47 MB Status: error Error Type: Runtime.OutOfMemory"
    )
    assert rep["status"] == "error" and rep["error_type"] == "Runtime.OutOfMemory"


@pytest.mark.parametrize(
    "line",
    [
        "START RequestId: a Version: $LATEST",
        "END RequestId: a",
        "hello",
        "",
        '{"type": "platform.start", "record": {"requestId": "a"}}',
        "REPORT nonsense",
    ],
)
def test_non_report_lines_give_none(line):
    assert parse_report_line(line) is None


def test_json_platform_report_uses_telemetry_field_names():
    msg = (
        '{"time":"2026-11-27T04:00:00.481Z","type":"platform.report","record":{"requestId":"r1",'
        '"metrics":{"durationMs":80.25,"billedDurationMs":81,"memorySizeMB":512,"maxMemoryUsedMB":90,'
        '"initDurationMs":397.68},"status":"success"}}'
    )
    rep = parse_report_line(msg)
    assert (rep["request_id"], rep["duration_ms"], rep["billed_duration_ms"], rep["init_duration_ms"]) == (
        "r1",
        80.25,
        81,
        397.68,
    )
    assert rep["cold"] and rep["status"] == "success"


def test_text_fixture_cold_warm_timeout_and_errors():
    df = parse_log_events(events("text_format.json"))
    assert list(df.columns) == INVOCATION_COLUMNS and len(df) == 5
    rows = by_rid(df)
    cold = rows["11111111-aaaa-4bbb-8ccc-000000000001"]
    assert cold["cold"] and cold["init_duration_ms"] == 245.67 and cold["function"] == "swlab-grayscale"
    assert cold["start_time"] == pd.Timestamp("2026-11-27T04:00:00.250Z")
    assert cold["end_time"] == pd.Timestamp("2026-11-27T04:00:00.301Z")
    warm = rows["11111111-aaaa-4bbb-8ccc-000000000002"]
    assert not warm["cold"] and warm["status"] == "success" and warm["duration_ms"] == 12.34
    timeout = rows["11111111-aaaa-4bbb-8ccc-000000000003"]
    assert (timeout["status"], timeout["error_type"]) == ("timeout", TIMEOUT_ERROR_TYPE)
    # the unhandled exception line names no request: attributed to the open invocation of its stream
    unhandled = rows["22222222-aaaa-4bbb-8ccc-000000000001"]
    assert (unhandled["status"], unhandled["error_type"], unhandled["cold"]) == ("error", "KeyError", True)
    oom = rows["22222222-aaaa-4bbb-8ccc-000000000002"]
    assert (oom["status"], oom["error_type"], oom["memory_size_mb"]) == ("error", "Runtime.OutOfMemory", 256)
    assert df.groupby("function")["cold"].sum().to_dict() == {"swlab-flip": 1, "swlab-grayscale": 1}


def test_json_fixture():
    df = parse_log_events(events("json_format.json"))
    rows = by_rid(df)
    assert len(df) == 3 and set(df["log_format"]) == {"json"}
    first, second, third = (rows[f"33333333-aaaa-4bbb-8ccc-00000000000{i}"] for i in (1, 2, 3))
    assert first["cold"] and first["init_duration_ms"] == 397.68 and first["status"] == "success"
    assert first["start_time"] == pd.Timestamp("2026-11-27T04:00:00.400Z")
    assert (second["status"], second["error_type"], second["duration_ms"]) == ("timeout", TIMEOUT_ERROR_TYPE, 5000.0)
    assert (third["status"], third["error_type"]) == ("error", "UnidentifiedImageError")


def test_accepts_dataframe_with_datetime_timestamps_and_mixed_formats():
    ev = pd.DataFrame(events("text_format.json") + events("json_format.json"))
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], unit="ms", utc=True)
    df = parse_log_events(ev)
    assert len(df) == 8 and df["cold"].sum() == 3
    assert sorted(df["function"].unique()) == ["swlab-flip", "swlab-grayscale", "swlab-resize"]


def test_empty_input_gives_empty_frame_with_columns():
    df = parse_log_events([])
    assert len(df) == 0 and list(df.columns) == INVOCATION_COLUMNS


def test_order_of_events_does_not_matter():
    evs = events("text_format.json") + events("json_format.json")
    shuffled = [evs[i] for i in __import__("numpy").random.default_rng(3).permutation(len(evs))]
    a = parse_log_events(evs).sort_values("request_id").reset_index(drop=True)
    b = parse_log_events(shuffled).sort_values("request_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert by_rid(b)["22222222-aaaa-4bbb-8ccc-000000000001"]["error_type"] == "KeyError"


def test_malformed_and_space_separated_report_lines_take_the_regex_path():
    ev = pd.DataFrame(
        {
            "function": "f",
            "log_stream": "s",
            "timestamp": [1, 2, 3],
            "message": [
                "REPORT RequestId: a\tDuration: 1x.0 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 4 MB\t",
                "REPORT RequestId: b\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 4 MB",
                "REPORT RequestId: c Duration: 2.00 ms Billed Duration: 2 ms Memory Size: 128 MB Max Memory Used: 4 MB "
                "Init Duration: 9.00 ms",
            ],
        }
    )
    df = parse_log_events(ev).set_index("request_id")
    assert list(df.index) == ["b", "c"]  # "a" is not a REPORT line anyone can read: dropped, not guessed
    assert df.loc["b", "duration_ms"] == 1.5 and df.loc["c", "init_duration_ms"] == 9.0 and df.loc["c", "cold"]


def test_failed_init_counts_once_through_its_report_line():
    ev = pd.DataFrame(
        {
            "function": "f",
            "log_stream": "s",
            "timestamp": [1, 2, 3, 4, 5],
            "message": [
                "INIT_START Runtime Version: python:3.11.v48\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:x\n",
                "INIT_REPORT Init Duration: 3000.12 ms\tPhase: init\tStatus: timeout\n",
                "START RequestId: r1 Version: $LATEST\n",
                "END RequestId: r1\n",
                "REPORT RequestId: r1\tDuration: 3000.00 ms\tBilled Duration: 6001 ms\tMemory Size: 128 MB\t"
                "Max Memory Used: 30 MB\tInit Duration: 3000.12 ms\tStatus: timeout\t\n",
            ],
        }
    )
    row = parse_log_events(ev).iloc[0]
    assert (row["request_id"], row["cold"], row["status"], row["error_type"]) == (
        "r1",
        True,
        "timeout",
        TIMEOUT_ERROR_TYPE,
    )


@pytest.mark.parametrize("ending", ["", "\t", "\t\n", " \n", "\t \t"])
def test_report_lines_read_the_same_whatever_whitespace_ends_them(ending):
    base = (
        "REPORT RequestId: r-{i}\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 80 MB"
    )
    lines = [base.format(i=1) + ending, base.format(i=2) + "\tInit Duration: 101.25 ms" + ending]
    df = parse_log_events(
        [{"function": "f", "log_stream": "s", "timestamp": 1000 + i, "message": m} for i, m in enumerate(lines)]
    )
    assert df["request_id"].tolist() == ["r-1", "r-2"]
    assert df["duration_ms"].tolist() == [12.5, 12.5] and df["max_memory_used_mb"].tolist() == [80, 80]
    assert df["init_duration_ms"].isna().tolist() == [True, False] and df["init_duration_ms"].iloc[1] == 101.25
    assert df["status"].tolist() == ["success", "success"]


def _text_buffer(col: pd.Series) -> int:
    """Address of the text of a str column's first Arrow chunk."""
    arr = pa.array(col, type=pa.large_string())
    return (arr.chunks[0] if isinstance(arr, pa.ChunkedArray) else arr).buffers()[2].address


def test_report_only_logs_keep_the_inputs_function_and_stream_text():
    ev = report_events(2_000)
    inv = parse_log_events(ev)
    assert len(inv) == 2_000 and inv["log_stream"].tolist() == ev["log_stream"].tolist()
    # every line was a REPORT, in order: the columns are the input's own, not a copy of every string (a guard:
    # the previous reader kept them too, through pandas)
    assert _text_buffer(inv["log_stream"]) == _text_buffer(ev["log_stream"])
    assert _text_buffer(inv["function"]) == _text_buffer(ev["function"])


def test_lines_read_a_piece_at_a_time_give_what_one_piece_gives(monkeypatch):
    fixture = logs._events_frame(events("text_format.json"))[["function", "log_stream", "timestamp", "message"]]
    ev = pd.concat([report_events(300, with_start_end=True, cold_every=7), fixture], ignore_index=True)
    ev["message"] = ev["message"].str.replace("RequestId: 0000", "RequestId: ü000", regex=False)  # non-ASCII
    ev.loc[5, "message"] = ev.loc[5, "message"] + "\u00a0"  # Unicode whitespace ends a line
    whole = parse_log_events(ev)
    monkeypatch.setattr(log_columns, "_PIECE_ROWS", 7)
    pd.testing.assert_frame_equal(parse_log_events(ev), whole, check_exact=True)
    assert len(whole) == 300 + 5 and whole["request_id"].str.startswith("ü000").sum() > 0


def test_few_valued_columns_take_a_byte_a_row_and_compare_as_strings():
    ev = report_events(3_000)
    ev.loc[7, "message"] = ev.loc[7, "message"] + "Status: timeout\t"
    inv = parse_log_events(ev)
    for col in ("status", "log_format"):
        assert isinstance(inv[col].dtype, pd.CategoricalDtype), col
        assert inv[col].memory_usage(index=False, deep=True) < 2 * len(inv)  # object or str: 8-12 bytes a row
    assert list(inv["status"].cat.categories) == ["success", "timeout"]  # sorted, only the values held
    assert (inv["status"] == "timeout").sum() == 1 and inv.loc[7, "error_type"] == TIMEOUT_ERROR_TYPE
    # what the analysis does with these columns works as with strings
    assert inv["status"].fillna("").isin(["success"]).sum() == len(inv) - 1
    assert set(inv["log_format"]) == {"text"} and (inv["status"] != "success").sum() == 1


def test_end_times_are_a_view_of_the_input_timestamps_that_neither_side_can_change():
    ev = report_events(1_000)
    inv = parse_log_events(ev)
    assert inv["end_time"].iloc[3] == pd.Timestamp(int(ev["timestamp"].iloc[3]), unit="ms", tz="UTC")
    assert np.shares_memory(inv["end_time"].array.asi8, ev["timestamp"].to_numpy())  # no copy of a million
    before, stamps = inv["end_time"].copy(), ev["timestamp"].copy()
    ev["timestamp"] += 5  # copy-on-write: the invocations keep their times
    inv.loc[0, "end_time"] = pd.Timestamp("2000-01-01", tz="UTC")
    assert inv["end_time"].iloc[1:].equals(before.iloc[1:]) and ev["timestamp"].equals(stamps + 5)


def test_error_type_is_missing_at_almost_no_cost_and_still_takes_a_failure():
    ev = report_events(200_000)
    inv = parse_log_events(ev)
    assert inv["error_type"].dtype == "str" and inv["error_type"].isna().all()
    arrow = pa.array(inv["error_type"], type=pa.large_string())
    held = {b.address: b.size for c in arrow.chunks for b in c.buffers() if b is not None}  # buffers, not views
    assert sum(held.values()) < 2**20  # half a MB whatever the rows (a column of None: 1.6 MB here)
    # a timeout line for one request: that row gets its error type, the others stay missing
    rid = inv["request_id"].iloc[5]
    more = pd.DataFrame(
        {
            "function": [ev["function"].iloc[5]],
            "log_stream": [ev["log_stream"].iloc[5]],
            "timestamp": [1],
            "message": [timeout_line(rid, 3.0, pd.Timestamp("2026-11-27T04:00:00Z"))],
        }
    )
    failed = parse_log_events(pd.concat([ev, more], ignore_index=True))
    assert failed["error_type"].notna().sum() == 1 and failed.loc[failed["request_id"] == rid, "error_type"].item() == (
        TIMEOUT_ERROR_TYPE
    )
    assert (failed["status"] == "timeout").sum() == 1 and inv["error_type"].isna().all()
