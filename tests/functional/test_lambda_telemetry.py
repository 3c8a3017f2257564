"""Concurrency limits, and what the data plane publishes: log streams and AWS/Lambda metrics."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from conftest import invoke_json, log_messages, wait_for

from swlab.analysis.log_lines import parse_report_line
from swlab.settings import client

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def lam(lab_settings):
    """A Lambda client that does not retry throttles (botocore would, hiding the 429s)."""
    return client(lab_settings, "lambda", retries={"total_max_attempts": 1}, read_timeout=30, max_pool_connections=20)


def metric_sum(cw, name: str, function: str, statistic: str = "Sum") -> float:
    now = datetime.now(timezone.utc)
    points = cw.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName=name,
        Dimensions=[{"Name": "FunctionName", "Value": function}],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
        Period=3600,
        Statistics=[statistic],
    )["Datapoints"]
    return sum(p[statistic] for p in points)


def test_reserved_concurrency_throttles_instead_of_hanging(aws, deploy_probe, lam):
    name = deploy_probe("sleep", Timeout=10)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)

    def call(_):
        try:
            resp, out = invoke_json(lam, name, {"seconds": 1.0})
            return resp["StatusCode"]
        except lam.exceptions.TooManyRequestsException as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            assert exc.response["Error"]["Message"] == "Rate Exceeded."
            return exc.response["Reason"]

    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(call, range(10)))
    assert time.monotonic() - started < 15, "no invoke waited for a free slot"
    successes = results.count(200)
    throttles = results.count("ReservedFunctionConcurrentInvocationLimitExceeded")
    assert 1 <= successes <= 2 + 2 and throttles >= 5 and successes + throttles == 10, results
    assert wait_for(lambda: metric_sum(aws("cloudwatch"), "Throttles", name) == throttles, 10)
    assert metric_sum(aws("cloudwatch"), "ConcurrentExecutions", name, "Maximum") <= 2


def test_zero_reserved_concurrency_always_throttles(aws, deploy_probe, lam):
    name = deploy_probe("echo")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException) as err:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert err.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert err.value.response["Error"]["Code"] == "TooManyRequestsException"
    lam.delete_function_concurrency(FunctionName=name)
    assert invoke_json(lam, name)[0]["StatusCode"] == 200


def test_logs_follow_aws_layout(aws, deploy_probe):
    name = deploy_probe("echo")
    ids = [invoke_json(aws("lambda"), name, {"n": i})[0]["ResponseMetadata"]["RequestId"] for i in range(3)]
    events = wait_for(
        lambda: (lambda ev: ev if sum("REPORT" in e["message"] for e in ev) == 3 else None)(
            log_messages(aws("logs"), name)
        ),
        10,
    )
    assert events, "three REPORT lines reached CloudWatch Logs"
    streams = {e["logStreamName"] for e in events}
    assert len(streams) == 1 and re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", streams.pop())
    messages = [e["message"] for e in sorted(events, key=lambda e: (e["timestamp"], e["eventId"]))]
    assert messages[0].startswith("INIT_START Runtime Version: python:3.11")
    body = [m for m in messages if not m.startswith("INIT_START")]
    for i, rid in enumerate(ids):
        start, own, end, report = body[4 * i : 4 * i + 4]
        assert start == f"START RequestId: {rid} Version: $LATEST\n"
        assert own == "echo probe got 8 characters\n"
        assert end == f"END RequestId: {rid}\n"
        assert report.endswith("\t\n") and report.count("\t") == (6 if i == 0 else 5)
        parsed = parse_report_line(report)
        assert parsed["request_id"] == rid and parsed["cold"] is (i == 0)
    reports = log_messages(aws("logs"), name, contains="REPORT")  # plain-term filters work on moto
    assert [e["message"] for e in reports] == [body[3], body[7], body[11]]


def test_timeout_log_line(aws, deploy_probe, lam):
    name = deploy_probe("sleep", Timeout=1)
    rid = invoke_json(lam, name, {"seconds": 5})[0]["ResponseMetadata"]["RequestId"]
    line = wait_for(lambda: log_messages(aws("logs"), name, contains="timed"), 10)
    assert line and re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT[\d:.]+Z {rid} Task timed out after 1\.\d\d seconds\n", line[0]["message"]
    )


def test_metrics_in_aws_lambda_namespace(aws, deploy_probe):
    ok = deploy_probe("echo")
    bad = deploy_probe("raise")
    for _ in range(4):
        invoke_json(aws("lambda"), ok)
    for _ in range(2):
        invoke_json(aws("lambda"), bad)
    cw = aws("cloudwatch")
    assert wait_for(lambda: metric_sum(cw, "Invocations", ok) == 4 and metric_sum(cw, "Invocations", bad) == 2, 10)
    assert metric_sum(cw, "Errors", ok) == 0 and metric_sum(cw, "Errors", bad) == 2
    assert metric_sum(cw, "Duration", ok, "SampleCount") == 4
    assert 0 < metric_sum(cw, "Duration", ok, "Maximum") < 1000
    assert metric_sum(cw, "ConcurrentExecutions", ok, "Maximum") == 1
    listed = cw.list_metrics(Namespace="AWS/Lambda", Dimensions=[{"Name": "FunctionName", "Value": ok}])["Metrics"]
    assert {m["MetricName"] for m in listed} >= {"Invocations", "Errors", "Duration", "ConcurrentExecutions"}


def test_concurrent_invokes_scale_out_to_the_concurrency_used(lam, deploy_probe, local_cloud):
    from conftest import environments

    name = deploy_probe("sleep", Timeout=10)
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: invoke_json(lam, name, {"seconds": 0.3})[1], range(16)))
    assert outs == [{"slept": 0.3}] * 16
    envs = environments(local_cloud.endpoint_url, name)
    assert 2 <= len(envs) <= 4 and all(e["state"] == "idle" for e in envs)


def test_a_multi_line_log_record_is_one_event_and_unterminated_output_stays_in_its_invocation(aws, deploy_probe, lam):
    name = deploy_probe("logs")
    ids = [invoke_json(lam, name, LogType="Tail")[0]["ResponseMetadata"]["RequestId"] for _ in range(2)]
    events = wait_for(
        lambda: (lambda ev: ev if sum("REPORT" in e["message"] for e in ev) == 2 else None)(
            log_messages(aws("logs"), name)
        ),
        10,
    )
    assert events, "both REPORT lines reached CloudWatch Logs"
    messages = [e["message"] for e in sorted(events, key=lambda e: (e["timestamp"], e["eventId"]))]
    for rid in ids:
        (record,) = [m for m in messages if f"logs probe caught {rid}" in m]
        assert "Traceback (most recent call last):" in record and "ZeroDivisionError: division by zero" in record
        own = messages.index(f"START RequestId: {rid} Version: $LATEST\n")
        end = messages.index(f"END RequestId: {rid}\n")
        assert f"no newline from {rid}\n" in messages[own:end]  # before its own END, not the next invocation's
