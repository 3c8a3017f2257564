"""Collection from the real local cloud: functions invoked directly and through a Standard state
machine, collected with swlab.analysis.collect_run, saved, reloaded and analysed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from conftest import invoke_json, log_messages, wait_for
from sfn_helpers import create_state_machine, run_execution

from swlab.analysis import stats, workflow
from swlab.analysis.collect import collect_run
from swlab.analysis.dataset import load_run, save_run

pytestmark = pytest.mark.functional


def test_collect_a_short_run_from_the_local_cloud(aws, deploy_probe, lab_settings, tmp_path):
    stack = "an" + uuid.uuid4().hex[:6]
    start = datetime.now(timezone.utc) - timedelta(seconds=2)
    echo = deploy_probe("echo", name=f"{stack}-echo")
    sleeper = deploy_probe("sleep", name=f"{stack}-sleep", Timeout=1)
    lam = aws("lambda")
    for i in range(3):
        invoke_json(lam, echo, {"i": i})
    invoke_json(lam, sleeper, {"seconds": 3})
    arn = lam.get_function(FunctionName=echo)["Configuration"]["FunctionArn"]
    sm = create_state_machine(
        aws("stepfunctions"),
        {"StartAt": "Echo", "States": {"Echo": {"Type": "Task", "Resource": arn, "End": True}}},
        prefix=stack,
    )
    done = run_execution(aws("stepfunctions"), sm, {"x": 1}, name=f"run-{uuid.uuid4().hex[:6]}")
    assert done["status"] == "SUCCEEDED"
    assert wait_for(lambda: len(log_messages(aws("logs"), echo, "REPORT")) >= 4, 15)
    assert wait_for(lambda: len(log_messages(aws("logs"), sleeper, "REPORT")) >= 1, 15)

    run = collect_run(
        lab_settings.with_(stack=stack), start, datetime.now(timezone.utc) + timedelta(seconds=2), period_s=60
    )
    inv = run["invocations"]
    assert sorted(run["functions"]["function"]) == sorted([echo, sleeper])
    per_fn = inv.groupby("function").agg(n=("request_id", "size"), cold=("cold", "sum"))
    assert per_fn.loc[echo, "n"] == 4 and per_fn.loc[echo, "cold"] == 1
    timed_out = inv[inv["function"] == sleeper].iloc[0]
    assert (timed_out["status"], timed_out["error_type"]) == ("timeout", "Sandbox.Timedout")
    assert (inv["billed_duration_ms"] >= inv["duration_ms"]).all()
    invocations = run["metrics"].query("metric == 'Invocations' and stat == 'Sum'").groupby("function")["value"].sum()
    assert invocations.get(echo) == 4

    ex = run["executions"]
    assert len(ex) == 1 and ex.iloc[0]["status"] == "SUCCEEDED" and ex.iloc[0]["duration_ms"] > 0
    states = workflow.attach_lambda_durations(run["states"], inv)
    echo_state = states[states["state"] == "Echo"].iloc[0]
    assert echo_state["resource"] == echo and echo_state["lambda_duration_ms"] > 0
    assert echo_state["lambda_duration_ms"] <= echo_state["duration_ms"]
    overhead = workflow.orchestration_overhead(states, ex).iloc[0]
    assert 0 <= overhead["overhead_ms"] <= overhead["e2e_ms"]

    again = load_run(save_run(run, tmp_path / "run"))
    assert again.manifest["target"] == "local" and again.manifest["stack"] == stack
    assert stats.cold_warm_table(again["invocations"]).loc[echo, "cold"] == 1
