"""JTL parsing, the benchmark figures and the live progress parsing, on fixture files."""

import io
from pathlib import Path

import pandas as pd
import pytest

from swlab.loadtest.jtl import arrival_gaps_s, parse_jtl, returned_ids, summarize_jtl
from swlab.loadtest.progress import (
    NotebookProgress,
    Progress,
    SummaryTracker,
    TerminalProgress,
    arrivals_due,
    default_progress,
)
from swlab.loadtest.runner import _late_warning

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "jtl"


def test_parse_types_every_column():
    df = parse_jtl(FIXTURES / "edge_cases.jtl")
    assert len(df) == 4
    assert str(df["timeStamp"].dtype) == "datetime64[ms, UTC]" or str(df["timeStamp"].dtype).endswith(", UTC]")
    assert df["timeStamp"].iloc[0] == pd.Timestamp(1795755000000, unit="ms", tz="UTC")
    for col in ("elapsed", "Latency", "Connect", "bytes", "sentBytes", "row_index"):
        assert str(df[col].dtype) == "Int64", col
    assert df["success"].dtype == bool
    assert df["success"].tolist() == [True, False, False, True]
    assert df["elapsed"].tolist() == [1203, 35001, 14, 9]
    assert df["row_index"].tolist() == [0, 1, 2, 3]
    assert str(df["failureMessage"].dtype) == "string"


def test_failure_messages_keep_newlines_commas_and_quotes():
    df = parse_jtl(FIXTURES / "edge_cases.jtl")
    assert df.loc[2, "failureMessage"] == (
        'HTTP 502: {"message": "Internal server error",\n "detail": "a, b, and c"}\nsecond line, with "quotes"'
    )
    assert df.loc[2, "row_value"] == "http://img/2.jpg?x=1,y=2"
    assert df.loc[1, "responseCode"] == "Non HTTP response code: java.net.SocketTimeoutException"
    assert df.loc[0, "failureMessage"] == ""


def test_unset_sample_variables_are_empty_not_the_word_null():
    df = parse_jtl(FIXTURES / "edge_cases.jtl")
    assert df["sample_id"].tolist() == ["img-1", "", "", "img-4"]


def test_returned_ids_are_those_of_successful_samples_in_order():
    assert returned_ids(parse_jtl(FIXTURES / "edge_cases.jtl")) == ["img-1", "img-4"]
    samples = pd.DataFrame({"success": [True, False, True, True], "sample_id": ["b", "lost", "", "a"]})
    assert returned_ids(samples) == ["b", "a"]  # a failure's id and an empty id are not returned


def test_real_jmeter_output_with_failures():
    """Files written by JMeter 5.5 against the stub API (fail_every=3)."""
    ingest = parse_jtl(FIXTURES / "ingest_with_failures.jtl")
    assert len(ingest) == 6 and (~ingest["success"]).sum() == 2
    failed = ingest[~ingest["success"]]
    assert failed["failureMessage"].str.startswith("HTTP 500: stub failure, request ").all()
    assert failed["failureMessage"].str.endswith('\n"on purpose"').all()
    assert (failed["sample_id"] == "").all() and (ingest.loc[ingest["success"], "sample_id"] != "").all()
    assert ingest["row_value"].str.contains(',b="q"', regex=False).all()
    classify = parse_jtl(FIXTURES / "classify_with_failures.jtl")
    assert classify["sample_id"].str.startswith("arn:aws:states:").all()
    assert (
        classify.loc[~classify["success"], "failureMessage"].str.startswith("execution FAILED: States.TaskFailed").all()
    )
    assert classify["timeStamp"].is_monotonic_increasing  # sorted by start, JMeter writes in end order


def test_parse_rejects_a_file_that_is_not_a_csv_jtl(tmp_path):
    (tmp_path / "x.jtl").write_text("<?xml version='1.0'?>\n<testResults/>\n")
    with pytest.raises(ValueError, match="timeStamp"):
        parse_jtl(tmp_path / "x.jtl")


def test_header_only_jtl_is_an_empty_frame(tmp_path):
    header = (FIXTURES / "edge_cases.jtl").read_text().splitlines()[0]
    (tmp_path / "empty.jtl").write_text(header + "\n")
    df = parse_jtl(tmp_path / "empty.jtl")
    assert df.empty and "failureMessage" in df.columns


def _frame(starts_s, elapsed_ms, success):
    return pd.DataFrame(
        {
            "timeStamp": pd.to_datetime([1_800_000_000_000 + int(s * 1000) for s in starts_s], unit="ms", utc=True),
            "elapsed": pd.array(elapsed_ms, dtype="Int64"),
            "success": success,
        }
    )


def test_arrival_gaps_skip_the_first_seconds():
    df = _frame([0, 0.1, 0.2, 5, 6, 7, 9.5], [1] * 7, [True] * 7)
    assert arrival_gaps_s(df, skip_first_s=5).tolist() == [1.0, 1.0, 2.5]
    assert arrival_gaps_s(df, skip_first_s=0).max() == 4.8


def test_summary_figures():
    df = _frame(list(range(10)), [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000], [True] * 9 + [False])
    figures = summarize_jtl(df, samples_planned=12)
    assert figures["samples_planned"] == 12 and figures["samples"] == 10
    assert figures["error_pct"] == 10.0
    assert figures["p50_ms"] == 550.0
    assert figures["p95_ms"] == pytest.approx(955.0)
    assert figures["p99_ms"] == pytest.approx(991.0)
    assert figures["max_arrival_gap_s"] == 1.0


SUMMARISER = """Creating summariser <summary>
Starting standalone test @ 2026 Nov 27 04:47:42 UTC (1795754862916)
swlab: schedule starts (1795754864500)
summary +      1 in 00:00:06 =    0.2/s Avg:    87 Min:    87 Max:    87 Err:     0 (0.00%) Active: 8 Started: 16 Finished: 8
summary +     19 in 00:00:02 =    7.8/s Avg:   426 Min:     3 Max:  1074 Err:     2 (10.53%) Active: 0 Started: 20 Finished: 20
summary =     20 in 00:00:08 =    2.5/s Avg:   409 Min:     3 Max:  1074 Err:     2 (10.00%)
summary +      4 in 00:00:02 =    2.0/s Avg:    10 Min:     3 Max:    20 Err:     1 (25.00%) Active: 0 Started: 24 Finished: 24
summary =     24 in 00:00:10 =    2.4/s Avg:   342 Min:     3 Max:  1074 Err:     3 (12.50%)
Tidying up ...    @ 2026 Nov 27 04:47:52 UTC (1795754872957)
"""


def test_summary_tracker_counts_deltas_and_totals():
    tracker = SummaryTracker()
    seen = []
    for i, line in enumerate(SUMMARISER.splitlines()):
        tracker.feed(line, now=float(i))
        seen.append((tracker.samples, tracker.errors))
    assert tracker.started_at == 1.0 and tracker.test_start_epoch_s == 1795754862.916
    assert tracker.schedule_start_epoch_s == 1795754864.5
    assert seen[3] == (1, 0) and seen[4] == (20, 2) and seen[5] == (20, 2) and seen[-1] == (24, 3)


def test_terminal_progress_on_a_pipe_prints_plain_lines():
    out = io.StringIO()
    show = TerminalProgress(out, every_s=3600)
    show(Progress("wf1 ingest", 12.0, 190.0, 7, 1, sent=9, planned_samples=180))
    show(Progress("wf1 ingest", 13.0, 190.0, 8, 1, sent=10, planned_samples=180))  # throttled
    show(Progress("wf1 ingest", 190.0, 190.0, 180, 1, done=True, sent=180, planned_samples=180))
    lines = out.getvalue().splitlines()
    assert lines == [
        "wf1 ingest: sent 9/180  answered 6  failed 1 (14.3%)  178 s left",
        "wf1 ingest: sent 180/180  answered 179  failed 1 (0.6%)  done in 190 s",
    ]


def test_terminal_progress_on_a_tty_rewrites_one_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    show = TerminalProgress(out)
    show(Progress("wf2", 1.0, 10.0, 0, 0))
    show(Progress("wf2", 10.0, 10.0, 20, 0, done=True))
    text = out.getvalue()
    assert text.count("\r") == 2 and text.count("\n") == 1
    assert text.rstrip().endswith("answered 20  failed 0 (0.0%)  done in 10 s")


def test_notebook_progress_updates_one_display(monkeypatch):
    import IPython.display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj.data))

    def display(obj, display_id=False):
        shown.append(("display", obj.data, display_id))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    show = NotebookProgress()
    show(Progress("wf1 ingest", 1.0, 10.0, 0, 0))
    show(Progress("wf1 ingest", 10.0, 10.0, 20, 0, done=True))
    assert shown[0] == ("display", "wf1 ingest: answered 0  failed 0 (0.0%)  9 s left", True)
    assert shown[1] == ("update", "wf1 ingest: answered 20  failed 0 (0.0%)  done in 10 s")


def test_requests_sent_follow_the_schedule():
    # 0.5/s for 10 s after a 1 s warm-up: arrivals at 1, 3, 5, 7, 9 s after the schedule starts
    due = [arrivals_due(1000.0, 1000.0 + t, 1.0, 0.5, 5) for t in (0.5, 1.0, 2.9, 3.0, 9.0, 60.0)]
    assert due == [0, 1, 1, 2, 5, 5]
    assert arrivals_due(None, 1e9, 1.0, 0.5, 5) == 0  # the schedule has not started


def test_default_progress_outside_a_kernel_is_the_terminal_line():
    assert isinstance(default_progress(), TerminalProgress)


@pytest.mark.parametrize(
    "late_s, rate, warned", [(0.1, 1.0, False), (0.9, 1.0, False), (0.6, 2.0, True), (None, 1.0, False)]
)
def test_late_first_arrival_warning(late_s, rate, warned):
    assert bool(_late_warning(late_s, rate)) is warned
