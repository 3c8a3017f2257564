"""Real Apache JMeter against a tiny stub of the lab's API on 127.0.0.1 (no lab stack needed).

2 requests/s for 10 s per workflow: exactly the planned samples, all successful, each data row
used as intended, even arrivals even when the API is slower than the arrival interval, the
dashboard written, no listening socket on all interfaces, failures recorded with their reason.
"""

import socket
from collections import Counter

import psutil
import pytest

from swlab.bench.loadtest import bench_loadtest, main
from swlab.loadtest.install import JMeterSetupError, ensure_jmeter
from swlab.loadtest.jtl import arrival_gaps_s, parse_jtl
from swlab.loadtest.plans import ApiEndpoint, LoadProfile, write_data_file
from swlab.loadtest.runner import run_workflow
from swlab.loadtest.stub import StubApi

pytestmark = pytest.mark.jmeter

PROFILE = LoadProfile(rate_per_s=2, duration_s=10, timeout_ms=3000)


@pytest.fixture(scope="module")
def install():
    try:
        return ensure_jmeter()
    except JMeterSetupError as exc:
        pytest.skip(str(exc))


class SocketWatch:
    """Progress callback that records JMeter's (the java child's) sockets while it runs."""

    def __init__(self):
        self.sockets = []
        self.updates = []

    def __call__(self, progress):
        self.updates.append(progress)
        for child in psutil.Process().children(recursive=True):
            if child.name() == "java":
                self.sockets += child.net_connections(kind="inet")


def _wildcard_listeners(sockets):
    return [
        s
        for s in sockets
        if s.laddr
        and s.laddr.ip in ("0.0.0.0", "::")
        and (s.type == socket.SOCK_DGRAM or s.status == psutil.CONN_LISTEN)
    ]


def _check_arrivals(df, interval_s):
    """Even arrivals at the planned rate, whatever the latency (a closed model would stretch them).

    From the second sample on (the first one may pay for first-use class loading). A busy
    2-core machine (load average 5-10 measured while writing this) delays single arrivals by up
    to ~1 s, so a couple of hiccups are tolerated; a drift or a slowed rate is not.
    """
    starts = df["timeStamp"].iloc[1:]
    gaps = arrival_gaps_s(df.iloc[1:], skip_first_s=0)
    span_s = (starts.iloc[-1] - starts.iloc[0]).total_seconds()
    assert abs(span_s - (len(starts) - 1) * interval_s) <= 1.0, f"arrivals drifted: span {span_s} s"
    assert abs(gaps.median() - interval_s) <= 0.1 * interval_s, gaps.tolist()
    assert gaps.max() <= interval_s + 1.0, f"late arrival: {gaps.tolist()}"
    assert (gaps < 0.5 * interval_s).sum() <= 2, f"bunched arrivals: {gaps.tolist()}"


def test_ingest_open_model_even_arrivals_each_row_once(install, tmp_path):
    rows = [f"http://127.0.0.1/images/{i:03d}.jpg?size=1,2" for i in range(20)]
    data = write_data_file(tmp_path / "urls.csv", rows, "image_url")
    watch = SocketWatch()
    # The API answers in 0.8 s, slower than the 0.5 s between arrivals: arrivals must not wait.
    with StubApi(delay_s=0.8) as stub:
        run = run_workflow("wf1", stub.endpoint(), data, tmp_path / "run", PROFILE, install=install, progress=watch)
    df = parse_jtl(run.jtl)
    assert run.samples_planned == 20 and len(df) == 20 and len(stub.requests) == 20
    assert df["success"].all(), df.loc[~df["success"], "failureMessage"].tolist()
    assert sorted(df["row_index"]) == list(range(20))
    assert (df["row_value"] == [rows[i] for i in df["row_index"]]).all()
    assert sorted(body["image_url"] for _, _, body in stub.requests) == sorted(rows)  # each row once
    assert df["sample_id"].str.match(r"^img-\d{6}$").all() and df["sample_id"].is_unique
    assert (df["elapsed"] >= 800).all() and (df["label"] == "ingest").all()
    _check_arrivals(df, 0.5)
    assert run.first_arrival_late_s < 1.0  # scheduled from the end of setUp, not from test start
    assert run.dashboard.name == "index.html" and run.dashboard.is_file()
    assert run.jmeter_startup_s > PROFILE.warmup_s
    assert watch.updates and watch.updates[-1].done and watch.updates[-1].samples == 20
    assert watch.sockets, "the java process was not observed"
    assert _wildcard_listeners(watch.sockets) == []
    assert run.properties["api_key"] == "***" and "stub-key" not in (tmp_path / "run" / "run.json").read_text()


def test_classify_cycles_rows_and_records_failure_reasons(install, tmp_path):
    ids = ["img-a", "img-b", "img-c"]
    data = write_data_file(tmp_path / "ids.csv", ids, "image_id")
    with StubApi(fail_every=4) as stub:
        run = run_workflow("wf2", stub.endpoint(), data, tmp_path / "run", PROFILE, install=install)
    df = parse_jtl(run.jtl)
    assert len(df) == 20
    assert sorted(df["row_index"]) == list(range(20))
    assert (df["row_value"] == [ids[i % 3] for i in df["row_index"]]).all()  # row k mod N
    assert Counter(body["image_id"] for _, _, body in stub.requests) == Counter(ids[k % 3] for k in range(20))
    failed = df[~df["success"]]
    assert len(failed) == 5 and (failed["responseCode"] == "500").all()
    assert (
        failed["failureMessage"]
        .str.match(r'^HTTP 500: States\.TaskFailed: stub failure, request \d+\n"on purpose"$')
        .all()
    )
    # the error body names the execution; the success body (the output object) does not
    assert failed["sample_id"].str.startswith("arn:aws:states:us-east-1:000000000000:execution:").all()
    assert (df.loc[df["success"], "sample_id"] == "").all()
    _check_arrivals(df, 0.5)


def test_classify_async_one_sample_per_submission_from_submit_to_terminal(install, tmp_path):
    """mode=async: POST /classifications then polling GET /images/{id}: one JTL line per submission,
    whose elapsed time covers the polling up to this submission's terminal status."""
    ids = ["img-a", "img-b", "img-c", "img/d e"]  # one quoted in the status URL
    data = write_data_file(tmp_path / "ids.csv", ids, "image_id")
    profile = LoadProfile(rate_per_s=2, duration_s=10, timeout_ms=4000, mode="async", poll_ms=200)
    # Each execution takes 1.2 s; an image comes back every 2 s, so submissions of one image do not overlap.
    with StubApi(fail_every=4, async_s=1.2) as stub:
        run = run_workflow("wf2", stub.endpoint(), data, tmp_path / "run", profile, install=install)
    df = parse_jtl(run.jtl)
    posts = [(t, b) for t, p, b in stub.requests if p.endswith("/classifications")]
    polls = [p for _, p, _ in stub.requests if "/images/" in p]
    assert len(df) == 20 and len(posts) == 20 and not any(p.endswith("/classify") for _, p, _ in stub.requests)
    assert Counter(b["image_id"] for _, b in posts) == Counter(ids[k % 4] for k in range(20))
    assert set(polls) == {f"{stub.base_path}/images/{i}" for i in ("img-a", "img-b", "img-c", "img%2Fd%20e")}
    assert len(polls) >= 20 * 5  # 1.2 s of polling every 0.2 s per submission
    assert (df["label"] == "classify").all() and df["sample_id"].is_unique
    assert df["sample_id"].str.match(r"^arn:aws:states:us-east-1:000000000000:execution:swlab-classify:exec-").all()
    # elapsed = submit -> terminal, at least the execution's 1.2 s; Latency = submit -> 202
    assert (df["elapsed"] >= 1200).all() and (df["elapsed"] < 4000).all(), df["elapsed"].tolist()
    assert (df["Latency"] < df["elapsed"] - 1000).all()
    failed = df[~df["success"]]
    assert len(failed) == 5, df[["success", "failureMessage"]]  # every 4th submission
    assert (
        failed["failureMessage"]
        .str.match(r'^execution FAILED: States\.TaskFailed: stub failure, request \d+\n"on purpose"$')
        .all()
    )
    assert df.loc[df["success"], "responseMessage"].str.match(r"^CLASSIFIED after \d+ polls$").all()
    _check_arrivals(df, 0.5)


def test_classify_async_times_out_with_the_last_status(install, tmp_path):
    data = write_data_file(tmp_path / "ids.csv", ["img-a"], "image_id")
    profile = LoadProfile(rate_per_s=1, duration_s=1, timeout_ms=1500, mode="async", poll_ms=300)
    with StubApi(async_s=30) as stub:
        run = run_workflow("wf2", stub.endpoint(), data, tmp_path / "run", profile, install=install)
    df = parse_jtl(run.jtl)
    assert len(df) == 1 and not df["success"].any()
    assert df["failureMessage"].iloc[0].startswith("no terminal status for execution exec-000001 within 1500 ms (")
    assert df["failureMessage"].iloc[0].endswith("polls, last: CLASSIFYING by exec-000001)")
    assert 1500 <= df["elapsed"].iloc[0] < 3000


def test_wrong_api_key_fails_every_sample_with_the_status(install, tmp_path):
    data = write_data_file(tmp_path / "urls.csv", ["http://127.0.0.1/x.jpg"], "image_url")
    profile = LoadProfile(rate_per_s=2, duration_s=2, timeout_ms=1000)
    with StubApi(api_key="right") as stub:
        target = ApiEndpoint("127.0.0.1", stub.port, base_path=stub.base_path, api_key="wrong")
        run = run_workflow("wf1", target, data, tmp_path / "run", profile, install=install)
    df = parse_jtl(run.jtl)
    assert len(df) == 4 and not df["success"].any()
    assert (df["failureMessage"] == 'HTTP 403: {"message": "Forbidden"}').all()
    assert (df["sample_id"] == "").all()


def test_bench_feeds_workflow_1_ids_to_workflow_2(install, tmp_path):
    profile = LoadProfile(rate_per_s=2, duration_s=3, timeout_ms=1000)
    with StubApi() as stub:
        urls = write_data_file(tmp_path / "urls.csv", [f"http://127.0.0.1/{i}.jpg" for i in range(6)], "image_url")
        figures = bench_loadtest(stub.endpoint(), urls, tmp_path / "bench", profile, install=install)
        ingested = [b["image_url"] for _, p, b in stub.requests if p.endswith("/ingest")]
        classified = [b["image_id"] for _, p, b in stub.requests if p.endswith("/classify")]
    wf1 = parse_jtl(tmp_path / "bench" / "wf1" / "results.jtl")
    assert len(ingested) == 6 and sorted(classified) == sorted(wf1["sample_id"])
    for wf in ("wf1", "wf2"):
        assert figures[f"{wf}_samples_planned"] == 6 and figures[f"{wf}_samples"] == 6
        assert figures[f"{wf}_error_pct"] == 0.0
        assert 0 < figures[f"{wf}_p50_ms"] <= figures[f"{wf}_p95_ms"] <= figures[f"{wf}_p99_ms"]
    assert figures["jmeter_startup_s"] > profile.warmup_s


def test_the_test_ends_once_every_arrival_is_answered_not_after_the_timeout_pause(install, tmp_path):
    # The answers outlast the arrivals (2.5 s each, arrivals over after 2 s): the run waits for them,
    # records every one, and then ends instead of sitting out the schedule's 60 s pause.
    data = write_data_file(tmp_path / "urls.csv", ["http://127.0.0.1/x.jpg"], "image_url")
    profile = LoadProfile(rate_per_s=2, duration_s=2, timeout_ms=60_000)
    with StubApi(delay_s=2.5) as stub:
        run = run_workflow("wf1", stub.endpoint(), data, tmp_path / "run", profile, install=install)
    df = parse_jtl(run.jtl)
    assert len(df) == 4 and df["success"].all() and (df["elapsed"] >= 2500).all()
    assert "swlab: every arrival answered (4); ending the test" in run.stdout.read_text()
    assert run.dashboard.is_file()
    schedule_s = profile.warmup_s + profile.duration_s + profile.timeout_ms / 1000
    assert run.wall_s < schedule_s - 20, f"JMeter ran {run.wall_s:.0f} s of a {schedule_s:.0f} s schedule"


def test_bench_loadtest_mode_async_polls_and_says_its_mode(install, tmp_path, capsys):
    """scripts/bench-loadtest --mode async: Workflow 2 submits to /classifications and polls /images/{id}."""
    assert main(["--against-stub", "--rate", "2", "--duration", "2", "--mode", "async", "--poll-ms", "200",
                 "--runs-dir", str(tmp_path / "b")]) == 0  # fmt: skip
    out = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line)
    assert out["wf2_mode"] == "async" and out["wf2_samples"] == "4" and float(out["wf2_error_pct"]) == 0.0
    plan = (tmp_path / "b" / "wf2").rglob("*")
    assert any(p.name == "results.jtl" for p in plan)
