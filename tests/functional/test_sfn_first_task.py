"""A fresh local cloud's first Lambda Task costs no more outside the function than the next one.

The Step Functions Task client used to be built at the first Task (65-250 ms measured), a cost of
the local cloud's process that AWS does not show; it is now built at start, in the background.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from conftest import deploy
from sfn_helpers import create_state_machine, history_events, run_execution

from swlab.analysis.collect import fetch_log_events
from swlab.analysis.logs import parse_log_events
from swlab.localcloud.server import LocalCloudProcess
from swlab.settings import client, load_settings

pytestmark = pytest.mark.functional


def report_of(logs, name: str, since: datetime, wait_s: float = 20.0):
    """The function's first REPORT line, parsed (polls: logs are written in batches)."""
    deadline = time.monotonic() + wait_s
    while True:
        until = datetime.now(timezone.utc) + timedelta(minutes=1)
        reports = parse_log_events(fetch_log_events(logs, f"/aws/lambda/{name}", since, until))
        if len(reports) or time.monotonic() > deadline:
            assert len(reports), f"no REPORT line of {name} in {wait_s} s"
            return reports.iloc[0]
        time.sleep(0.2)


def test_the_first_task_of_a_fresh_cloud_pays_no_client_start(tmp_path):
    with LocalCloudProcess(port=0, work_dir=tmp_path / "cloud", options={"cpu_model": "off"}) as cloud:
        settings = load_settings(env={}, target="local", endpoint_url=cloud.endpoint_url, region="us-east-1")
        lam, iam, sfn, logs = (client(settings, n) for n in ("lambda", "iam", "stepfunctions", "logs"))
        since = datetime.now(timezone.utc) - timedelta(seconds=5)
        names = [deploy(lam, iam, "echo", MemorySize=512, Timeout=10) for _ in range(2)]
        arns = [lam.get_function(FunctionName=n)["Configuration"]["FunctionArn"] for n in names]
        states = {
            "A": {"Type": "Task", "Resource": arns[0], "Next": "B"},
            "B": {"Type": "Task", "Resource": arns[1], "End": True},
        }
        desc = run_execution(sfn, create_state_machine(sfn, {"StartAt": "A", "States": states}), {})
        assert desc["status"] == "SUCCEEDED", desc
        events = history_events(sfn, desc["executionArn"])
        scheduled = [e["timestamp"] for e in events if e["type"] == "LambdaFunctionScheduled"]
        done = [e["timestamp"] for e in events if e["type"] == "LambdaFunctionSucceeded"]
        outside = []
        for i, name in enumerate(names):
            report = report_of(logs, name, since)
            task_ms = (done[i] - scheduled[i]).total_seconds() * 1000
            outside.append(task_ms - float(report["init_duration_ms"]) - float(report["duration_ms"]))
    # both Tasks are cold starts of a new function; only the first used to build the Task client
    assert outside[0] < 3 * outside[1] + 20, outside
