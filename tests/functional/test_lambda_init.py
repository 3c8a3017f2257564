"""The init phase as AWS runs it for on-demand functions: limited to 10 s (1 s here), then run again in the invoke."""

from __future__ import annotations

import re

import pytest
from conftest import deploy, invoke_json, log_messages, wait_for
from test_lambda_invoke import report_of

from swlab.localcloud.server import LocalCloudProcess
from swlab.settings import client, load_settings

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    """A local cloud whose init limit is 1 s (AWS: 10 s), so a slow init is quick to test."""
    with LocalCloudProcess(
        port=0, work_dir=tmp_path_factory.mktemp("init-cloud"), options={"init_timeout_s": 1.0}
    ) as cloud:
        settings = load_settings(env={}, target="local", endpoint_url=cloud.endpoint_url, region="us-east-1")
        config = {"retries": {"total_max_attempts": 1}, "read_timeout": 60}
        yield client(settings, "lambda", **config), client(settings, "iam"), client(settings, "logs")


def init_reports(logs, name: str, count: int) -> list[str]:
    def found() -> list[str]:
        return [
            e["message"]
            for e in log_messages(logs, name, contains="INIT_REPORT")
            if e["message"].startswith("INIT_REPORT")
        ]

    return wait_for(lambda: (lambda r: r if len(r) >= count else None)(found()), 10) or found()


def test_an_init_past_its_limit_runs_again_inside_the_first_invocation(clients):
    lam, iam, logs = clients
    name = deploy(lam, iam, "slowinit", Timeout=10, Environment={"Variables": {"INIT_SLEEP_S": "1.5"}})
    resp, out = invoke_json(lam, name, LogType="Tail")
    assert "FunctionError" not in resp, out
    report = report_of(resp)
    assert report["duration_ms"] >= 1500  # the second init is in the invocation's Duration ...
    assert report["init_duration_ms"] is None  # ... not an Init Duration
    assert out["remaining_ms"] < 10000 - 1400  # and it ran under the function's timeout
    (line,) = init_reports(logs, name, 1)
    assert re.fullmatch(r"INIT_REPORT Init Duration: [\d.]+ ms\tPhase: init\tStatus: timeout\t\n?", line)
    assert 900 <= float(line.split()[3]) < 1500
    resp, _ = invoke_json(lam, name, LogType="Tail")  # the environment is warm now
    assert report_of(resp)["duration_ms"] < 1000 and report_of(resp)["init_duration_ms"] is None


def test_an_init_that_outlasts_the_function_timeout_times_out_the_invocation(clients):
    lam, iam, logs = clients
    name = deploy(lam, iam, "slowinit", Timeout=2, Environment={"Variables": {"INIT_SLEEP_S": "30"}})
    resp, out = invoke_json(lam, name, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled" and out["errorType"] == "Sandbox.Timedout"
    seconds = float(re.search(r"Task timed out after ([\d.]+) seconds", out["errorMessage"]).group(1))
    assert 1.9 <= seconds < 4  # the function's timeout, not 0.00
    lines = init_reports(logs, name, 2)
    assert "Phase: init\tStatus: timeout" in lines[0] and "Phase: invoke\tStatus: timeout" in lines[1]
