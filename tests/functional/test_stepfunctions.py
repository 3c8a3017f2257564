"""Step Functions with real execution on the local cloud (moto's interpreter plus
our patches): Pass/Choice, Parallel, Retry with backoff, Catch, DynamoDB service
integrations, Standard and Express, StartSyncExecution, unique execution names
and bounded execution memory. Lambda tasks: test_stepfunctions_lambda.py."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
from botocore.exceptions import ClientError
from sfn_helpers import chain, create_state_machine, history_events, run_execution, unique

from swlab.localcloud.server import LocalCloudProcess
from swlab.settings import client, load_settings

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def sfn(aws):
    return aws("stepfunctions")


@pytest.fixture(scope="module")
def table(aws):
    ddb = aws("dynamodb")
    name = unique("sfn-items")
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    return name


def test_executions_run_and_pass_states_transform(sfn):
    arn = create_state_machine(
        sfn,
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.added", "End": True}}},
    )
    desc = run_execution(sfn, arn, {"in": "put"})
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"]) == {"in": "put", "added": {"x": 1}}


def test_unnamed_executions_get_unique_uuid_names(sfn):
    arn = create_state_machine(sfn, chain(1, {"Type": "Pass"}))
    names = set()
    for _ in range(3):
        started = sfn.start_execution(stateMachineArn=arn, input="{}")
        name = started["executionArn"].rsplit(":", 1)[1]
        uuid.UUID(name)
        names.add(name)
    assert len(names) == 3


def test_named_execution_still_rejects_a_reused_name(sfn):
    arn = create_state_machine(sfn, chain(1, {"Type": "Pass"}))
    run_execution(sfn, arn, {}, name="once")
    with pytest.raises(ClientError) as err:
        sfn.start_execution(stateMachineArn=arn, name="once", input='{"other": 1}')
    assert err.value.response["Error"]["Code"] == "ExecutionAlreadyExists"


def test_choice_routes_on_input(sfn):
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "C",
            "States": {
                "C": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"}],
                    "Default": "Small",
                },
                "Big": {"Type": "Pass", "Result": "big", "End": True},
                "Small": {"Type": "Pass", "Result": "small", "End": True},
            },
        },
    )
    assert json.loads(run_execution(sfn, arn, {"n": 11})["output"]) == "big"
    assert json.loads(run_execution(sfn, arn, {"n": 3})["output"]) == "small"


def test_parallel_of_three_branches_collects_results_in_order(sfn):
    branches = [
        {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": name, "End": True}}}
        for name in ("alexnet", "resnet", "mobilenet")
    ]
    arn = create_state_machine(
        sfn, {"StartAt": "Par", "States": {"Par": {"Type": "Parallel", "Branches": branches, "End": True}}}
    )
    desc = run_execution(sfn, arn)
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"]) == ["alexnet", "resnet", "mobilenet"]


def test_retry_backs_off_then_catch_records_the_error(sfn):
    failing = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom", "Cause": "always"}}}
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "Try",
            "States": {
                "Try": {
                    "Type": "Parallel",
                    "Branches": [failing],
                    "Next": "Ok",
                    "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2}],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handled"}],
                },
                "Ok": {"Type": "Pass", "End": True},
                "Handled": {"Type": "Pass", "End": True},
            },
        },
    )
    t0 = time.monotonic()
    desc = run_execution(sfn, arn, {"image_id": "i1"})
    elapsed = time.monotonic() - t0
    assert desc["status"] == "SUCCEEDED"
    out = json.loads(desc["output"])
    assert out["image_id"] == "i1" and out["error"]["Error"] == "Boom"
    starts = [e["timestamp"] for e in history_events(sfn, desc["executionArn"]) if e["type"] == "ParallelStateStarted"]
    assert len(starts) == 3  # first try + 2 retries
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # 1 s, then 1 s x BackoffRate 2
    assert elapsed >= 2.9


@pytest.mark.parametrize("error", ["States.TaskFailed", "States.Timeout", "Custom.Error"])
def test_branch_errors_reach_the_parallel_catch(sfn, error):
    branch = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": error, "Cause": "c"}}}
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [branch],
                    "End": True,
                    "Catch": [{"ErrorEquals": [error], "ResultPath": "$.e", "Next": "C"}],
                },
                "C": {"Type": "Pass", "End": True},
            },
        },
    )
    desc = run_execution(sfn, arn, {"x": 1})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"x": 1, "e": {"Error": error, "Cause": "c"}}


def test_uncaught_failure_fails_the_execution_with_error_and_cause(sfn):
    arn = create_state_machine(
        sfn, {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "ImageFailed", "Cause": "bad pixels"}}}
    )
    desc = run_execution(sfn, arn)
    assert (desc["status"], desc["error"], desc["cause"]) == ("FAILED", "ImageFailed", "bad pixels")


def test_dynamodb_put_get_update_service_integrations(sfn, aws, table):
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "Put",
            "States": {
                "Put": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::dynamodb:putItem",
                    "ResultPath": None,
                    "Parameters": {"TableName": table, "Item": {"id": {"S.$": "$.id"}, "status": {"S": "NEW"}}},
                    "Next": "Update",
                },
                "Update": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::dynamodb:updateItem",
                    "ResultPath": None,
                    "Parameters": {
                        "TableName": table,
                        "Key": {"id": {"S.$": "$.id"}},
                        "UpdateExpression": "SET #s = :s",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":s": {"S": "DONE"}},
                    },
                    "Next": "Get",
                },
                "Get": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::dynamodb:getItem",
                    "Parameters": {"TableName": table, "Key": {"id": {"S.$": "$.id"}}},
                    "ResultSelector": {"status.$": "$.Item.status.S"},
                    "End": True,
                },
            },
        },
    )
    desc = run_execution(sfn, arn, {"id": "img-1"})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"status": "DONE"}
    item = aws("dynamodb").get_item(TableName=table, Key={"id": {"S": "img-1"}})["Item"]
    assert item["status"]["S"] == "DONE"


def test_dynamodb_error_is_catchable_by_its_aws_name(sfn):
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "Get",
            "States": {
                "Get": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::dynamodb:getItem",
                    "Parameters": {"TableName": "no-such-table", "Key": {"id": {"S": "x"}}},
                    "Catch": [{"ErrorEquals": ["DynamoDB.ResourceNotFoundException"], "Next": "Missing"}],
                    "End": True,
                },
                "Missing": {"Type": "Pass", "Result": "missing", "End": True},
            },
        },
    )
    desc = run_execution(sfn, arn)
    assert (desc["status"], json.loads(desc["output"])) == ("SUCCEEDED", "missing")


def test_state_machine_timeout_times_out(sfn):
    arn = create_state_machine(
        sfn, {"StartAt": "W", "TimeoutSeconds": 1, "States": {"W": {"Type": "Wait", "Seconds": 5, "End": True}}}
    )
    t0 = time.monotonic()
    desc = run_execution(sfn, arn)
    assert desc["status"] == "TIMED_OUT"
    assert time.monotonic() - t0 < 4


# -- Express and StartSyncExecution ---------------------------------------------------

SYNC_KEYS = {"executionArn", "stateMachineArn", "name", "startDate", "stopDate", "status", "input", "billingDetails"}


def test_express_state_machine_runs_with_start_execution(sfn):
    arn = create_state_machine(sfn, chain(3, {"Type": "Pass"}), sm_type="EXPRESS")
    assert sfn.describe_state_machine(stateMachineArn=arn)["type"] == "EXPRESS"
    assert run_execution(sfn, arn, {"a": 1})["status"] == "SUCCEEDED"


def test_start_sync_execution_succeeds_with_aws_response_shape(sfn):
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "End": True}},
        },
        sm_type="EXPRESS",
    )
    resp = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"n": 21}), name="sync-1")
    assert SYNC_KEYS | {"output"} <= set(resp)
    assert resp["status"] == "SUCCEEDED" and json.loads(resp["output"]) == {"doubled": 42}
    assert resp["name"] == "sync-1" and resp["stateMachineArn"] == arn
    assert resp["stopDate"] >= resp["startDate"]
    assert resp["billingDetails"]["billedDurationInMilliseconds"] % 100 == 0
    assert resp["billingDetails"]["billedMemoryUsedInMB"] >= 64
    # The local cloud keeps Express executions describable (AWS does not).
    assert sfn.describe_execution(executionArn=resp["executionArn"])["status"] == "SUCCEEDED"


def test_start_sync_execution_failure_carries_error_and_cause(sfn):
    arn = create_state_machine(
        sfn, {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Nope", "Cause": "because"}}}, sm_type="EXPRESS"
    )
    resp = sfn.start_sync_execution(stateMachineArn=arn, input="{}")
    assert (resp["status"], resp["error"], resp["cause"]) == ("FAILED", "Nope", "because")
    assert "output" not in resp


def test_start_sync_execution_times_out(sfn):
    arn = create_state_machine(
        sfn,
        {"StartAt": "W", "TimeoutSeconds": 1, "States": {"W": {"Type": "Wait", "Seconds": 5, "End": True}}},
        sm_type="EXPRESS",
    )
    assert sfn.start_sync_execution(stateMachineArn=arn, input="{}")["status"] == "TIMED_OUT"


def test_start_sync_execution_refuses_standard(sfn):
    arn = create_state_machine(sfn, chain(1, {"Type": "Pass"}))
    with pytest.raises(ClientError) as err:
        sfn.start_sync_execution(stateMachineArn=arn, input="{}")
    assert err.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"


def test_start_sync_execution_rejects_bad_input(sfn):
    arn = create_state_machine(sfn, chain(1, {"Type": "Pass"}), sm_type="EXPRESS")
    with pytest.raises(ClientError) as err:
        sfn.start_sync_execution(stateMachineArn=arn, input="{not json")
    assert err.value.response["Error"]["Code"] == "InvalidExecutionInput"


def test_unnamed_sync_executions_are_unique(sfn):
    arn = create_state_machine(sfn, chain(1, {"Type": "Pass"}), sm_type="EXPRESS")
    names = {sfn.start_sync_execution(stateMachineArn=arn, input="{}")["name"] for _ in range(3)}
    assert len(names) == 3


# -- bounded memory ---------------------------------------------------------------------


def test_finished_executions_are_bounded(tmp_path):
    """A local cloud keeping 5 finished executions per state machine lists at most ~10% more."""
    env = {**os.environ, "SWLAB_SFN_KEEP_EXECUTIONS": "5"}
    with LocalCloudProcess(port=0, work_dir=tmp_path / "lc", env=env) as cloud:
        sfn = client(load_settings(env={}, endpoint_url=cloud.endpoint_url), "stepfunctions")
        arn = create_state_machine(sfn, chain(2, {"Type": "Pass"}), sm_type="EXPRESS")
        for i in range(20):
            sfn.start_sync_execution(stateMachineArn=arn, input="{}", name=f"e{i:02d}")
        listed = sfn.list_executions(stateMachineArn=arn)["executions"]
        names = sorted(e["name"] for e in listed)
        assert 5 <= len(names) <= 6
        assert names[-1] == "e19" and "e00" not in names
