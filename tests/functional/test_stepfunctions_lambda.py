"""Step Functions tasks that call Lambda run through the local cloud's Lambda data
plane (real awslambdaric processes): both Resource forms, Retry on a failing
function, Catch, Task TimeoutSeconds, Parallel, and a workflow-shaped machine
mixing DynamoDB service integrations with Lambda tasks (Standard and Express)."""

from __future__ import annotations

import json
import time

import pytest
from sfn_helpers import create_state_machine, history_events, run_execution, unique

pytestmark = pytest.mark.functional

ACCOUNT_REGION = "us-east-1:123456789012"


@pytest.fixture(scope="module")
def sfn(aws):
    return aws("stepfunctions")


@pytest.fixture(scope="module")
def echo(deploy_probe):
    return deploy_probe("echo", Timeout=10)


@pytest.fixture(scope="module")
def failing(deploy_probe):
    return deploy_probe("raise", Timeout=10)


@pytest.fixture(scope="module")
def sleeper(deploy_probe):
    return deploy_probe("sleep", Timeout=10)


def fn_arn(name: str) -> str:
    return f"arn:aws:lambda:{ACCOUNT_REGION}:function:{name}"


def invoke_task(name: str, **extra) -> dict:
    """The ``arn:aws:states:::lambda:invoke`` form, returning the function's payload."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": name, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        **extra,
    }


def test_lambda_invoke_resource_form(sfn, echo):
    arn = create_state_machine(sfn, {"StartAt": "T", "States": {"T": invoke_task(echo, End=True)}})
    desc = run_execution(sfn, arn, {"image_id": "a"})
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert out["event"] == {"image_id": "a"} and out["context"]["function_name"] == echo


def test_plain_function_arn_resource_form(sfn, echo):
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "T",
            "States": {
                "T": {"Type": "Task", "Resource": fn_arn(echo), "ResultSelector": {"got.$": "$.event"}, "End": True}
            },
        },
    )
    desc = run_execution(sfn, arn, {"n": 1})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == {"got": {"n": 1}}


def test_retry_on_failing_lambda_then_catch(sfn, failing):
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "T",
            "States": {
                "T": invoke_task(
                    failing,
                    Retry=[{"ErrorEquals": ["ProbeError"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1.0}],
                    Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
                    End=True,
                ),
                "Failed": {"Type": "Pass", "End": True},
            },
        },
    )
    desc = run_execution(sfn, arn, {"message": "bad image"})
    assert desc["status"] == "SUCCEEDED", desc
    error = json.loads(desc["output"])["error"]
    assert error["Error"] == "ProbeError"
    assert json.loads(error["Cause"])["errorMessage"] == "bad image"
    scheduled = [e for e in history_events(sfn, desc["executionArn"]) if e["type"] == "TaskScheduled"]
    assert len(scheduled) == 3  # first attempt + MaxAttempts retries


def test_uncaught_lambda_error_fails_the_execution(sfn, failing):
    arn = create_state_machine(
        sfn, {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": fn_arn(failing), "End": True}}}
    )
    desc = run_execution(sfn, arn, {"message": "nope"})
    assert desc["status"] == "FAILED" and desc["error"] == "ProbeError"


def test_task_timeout_raises_states_timeout(sfn, sleeper):
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "T",
            "States": {
                "T": invoke_task(
                    sleeper,
                    TimeoutSeconds=1,
                    Catch=[{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "TimedOut"}],
                    End=True,
                ),
                "TimedOut": {"Type": "Pass", "End": True},
            },
        },
    )
    t0 = time.monotonic()
    desc = run_execution(sfn, arn, {"seconds": 3})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["error"]["Error"] == "States.Timeout"
    assert time.monotonic() - t0 < 2.9  # did not wait for the 3 s call (which keeps running, as on AWS)


def test_parallel_of_three_lambda_branches(sfn, echo):
    branches = [
        {"StartAt": "B", "States": {"B": invoke_task(echo, ResultSelector={"model": model}, OutputPath="$", End=True)}}
        for model in ("alexnet", "resnet", "mobilenet")
    ]
    arn = create_state_machine(
        sfn, {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": branches, "End": True}}}
    )
    desc = run_execution(sfn, arn, {"image_id": "p"})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"]) == [{"model": "alexnet"}, {"model": "resnet"}, {"model": "mobilenet"}]


def workflow_definition(table: str, step: str, models: str) -> dict:
    """Shaped like Workflow 2: read metadata, a Lambda step, three models in parallel, write the result."""
    key = {"id": {"S.$": "$.image_id"}}
    branches = [
        {"StartAt": "M", "States": {"M": invoke_task(models, ResultSelector={"model": m}, OutputPath="$", End=True)}}
        for m in ("alexnet", "resnet", "mobilenet")
    ]
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}]
    return {
        "StartAt": "Read",
        "States": {
            "Read": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:getItem",
                "Parameters": {"TableName": table, "Key": key},
                "ResultSelector": {"key.$": "$.Item.s3_key.S"},
                "ResultPath": "$.meta",
                "Next": "Step",
            },
            "Step": invoke_task(
                step,
                ResultSelector={"step.$": "$.Payload.event.meta.key"},
                ResultPath="$.step",
                OutputPath="$",
                Retry=[{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                Catch=catch,
                Next="Models",
            ),
            "Models": {
                "Type": "Parallel",
                "Branches": branches,
                "ResultPath": "$.labels",
                "Catch": catch,
                "Next": "Update",
            },
            "Update": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:updateItem",
                "Parameters": {
                    "TableName": table,
                    "Key": key,
                    "UpdateExpression": "SET #s = :s",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":s": {"S": "DONE"}},
                },
                "ResultPath": None,
                "End": True,
            },
            "MarkFailed": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:updateItem",
                "Parameters": {
                    "TableName": table,
                    "Key": key,
                    "UpdateExpression": "SET #s = :s, #e = :e",
                    "ExpressionAttributeNames": {"#s": "status", "#e": "error"},
                    "ExpressionAttributeValues": {":s": {"S": "FAILED"}, ":e": {"S.$": "$.error.Error"}},
                },
                "ResultPath": None,
                "Next": "Fail",
            },
            "Fail": {"Type": "Fail", "Error": "ImageFailed", "Cause": "see the item's error attribute"},
        },
    }


@pytest.fixture(scope="module")
def table(aws):
    name = unique("wf-images")
    aws("dynamodb").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    return name


def _put_image(aws, table: str, image_id: str) -> None:
    aws("dynamodb").put_item(
        TableName=table, Item={"id": {"S": image_id}, "s3_key": {"S": f"raw/{image_id}.jpg"}, "status": {"S": "NEW"}}
    )


@pytest.mark.parametrize("sm_type", ["STANDARD", "EXPRESS"])
def test_workflow_shaped_machine_succeeds(sfn, aws, table, echo, sm_type):
    arn = create_state_machine(sfn, workflow_definition(table, echo, echo), sm_type=sm_type)
    image_id = unique("ok")
    _put_image(aws, table, image_id)
    if sm_type == "EXPRESS":
        resp = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"image_id": image_id}))
        status, output = resp["status"], json.loads(resp["output"])
    else:
        desc = run_execution(sfn, arn, {"image_id": image_id})
        status, output = desc["status"], json.loads(desc.get("output", "null"))
    assert status == "SUCCEEDED"
    assert output["step"] == {"step": f"raw/{image_id}.jpg"}
    assert [x["model"] for x in output["labels"]] == ["alexnet", "resnet", "mobilenet"]
    item = aws("dynamodb").get_item(TableName=table, Key={"id": {"S": image_id}})["Item"]
    assert item["status"]["S"] == "DONE"


def test_workflow_shaped_machine_records_failure(sfn, aws, table, echo, failing):
    arn = create_state_machine(sfn, workflow_definition(table, echo, failing), sm_type="EXPRESS")
    image_id = unique("bad")
    _put_image(aws, table, image_id)
    resp = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"image_id": image_id}))
    assert (resp["status"], resp["error"]) == ("FAILED", "ImageFailed")
    item = aws("dynamodb").get_item(TableName=table, Key={"id": {"S": image_id}})["Item"]
    assert (item["status"]["S"], item["error"]["S"]) == ("FAILED", "ProbeError")


def test_timeout_inside_a_parallel_branch_is_catchable(sfn, sleeper):
    branch = {"StartAt": "S", "States": {"S": invoke_task(sleeper, TimeoutSeconds=1, End=True)}}
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [branch],
                    "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Caught"}],
                    "End": True,
                },
                "Caught": {"Type": "Pass", "End": True},
            },
        },
    )
    desc = run_execution(sfn, arn, {"seconds": 3})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["error"]["Error"] == "States.Timeout"


def test_missing_function_fails_with_the_lambda_service_error(sfn):
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "T",
            "States": {
                "T": invoke_task(
                    "no-such-function",
                    Catch=[
                        {
                            "ErrorEquals": ["Lambda.ResourceNotFoundException"],
                            "ResultPath": "$.error",
                            "Next": "Missing",
                        }
                    ],
                    End=True,
                ),
                "Missing": {"Type": "Pass", "End": True},
            },
        },
    )
    desc = run_execution(sfn, arn, {})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["error"]["Error"] == "Lambda.ResourceNotFoundException"


def test_throttled_lambda_surfaces_as_lambda_too_many_requests(sfn, aws, deploy_probe):
    throttled = deploy_probe("echo")
    aws("lambda").put_function_concurrency(FunctionName=throttled, ReservedConcurrentExecutions=0)
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "T",
            "States": {
                "T": invoke_task(
                    throttled,
                    Retry=[
                        {"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 1, "MaxAttempts": 1}
                    ],
                    Catch=[
                        {
                            "ErrorEquals": ["Lambda.TooManyRequestsException"],
                            "ResultPath": "$.error",
                            "Next": "Throttled",
                        }
                    ],
                    End=True,
                ),
                "Throttled": {"Type": "Pass", "End": True},
            },
        },
    )
    desc = run_execution(sfn, arn, {})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["error"]["Error"] == "Lambda.TooManyRequestsException"
    scheduled = [e for e in history_events(sfn, desc["executionArn"]) if e["type"] == "TaskScheduled"]
    assert len(scheduled) == 2


def test_throttled_plain_function_arn_task_fails_with_lambda_too_many_requests(sfn, aws, deploy_probe):
    throttled = deploy_probe("echo")
    aws("lambda").put_function_concurrency(FunctionName=throttled, ReservedConcurrentExecutions=0)
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": fn_arn(throttled),
                    "Retry": [
                        {"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 1, "MaxAttempts": 1}
                    ],
                    "Catch": [
                        {
                            "ErrorEquals": ["Lambda.TooManyRequestsException"],
                            "ResultPath": "$.error",
                            "Next": "Throttled",
                        }
                    ],
                    "End": True,
                },
                "Throttled": {"Type": "Pass", "End": True},
            },
        },
    )
    desc = run_execution(sfn, arn, {})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["error"]["Error"] == "Lambda.TooManyRequestsException"
    scheduled = [e for e in history_events(sfn, desc["executionArn"]) if e["type"] == "LambdaFunctionScheduled"]
    assert len(scheduled) == 2  # the Retry on that name matched


def test_a_lambda_timeout_is_sandbox_timedout_to_step_functions(sfn, deploy_probe):
    quick = deploy_probe("sleep", Timeout=1)
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": fn_arn(quick),
                    "Parameters": {"seconds": 5},
                    "Catch": [{"ErrorEquals": ["Sandbox.Timedout"], "ResultPath": "$.error", "Next": "TimedOut"}],
                    "End": True,
                },
                "TimedOut": {"Type": "Pass", "End": True},
            },
        },
    )
    desc = run_execution(sfn, arn, {})
    assert desc["status"] == "SUCCEEDED", desc
    assert json.loads(desc["output"])["error"]["Error"] == "Sandbox.Timedout"
