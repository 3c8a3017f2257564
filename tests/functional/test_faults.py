"""Faults on purpose (issue 13): the local cloud fails as AWS fails, when told to, counted per type."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from conftest import deploy, invoke_json
from sfn_helpers import create_state_machine, history_events, run_execution

from swlab.localcloud.server import LocalCloudProcess
from swlab.settings import client, load_settings

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """A cloud of its own (S3/DynamoDB rules would hit every test of a shared one), started with one rule."""
    proc = LocalCloudProcess(
        port=0,
        work_dir=tmp_path_factory.mktemp("faults-cloud"),
        options={"faults": [{"type": "lambda_error", "functions": ["born-faulty"], "error_type": "FromOptions"}]},
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def faults(cloud):
    """POST rules (→ the report); the rules are cleared after the test."""

    def post(rules):
        return admin(cloud, "POST", rules)

    yield post
    admin(cloud, "DELETE")


def admin(cloud, method, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(cloud.endpoint_url + "/_localcloud/faults", data=data, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def clients(cloud, service):
    settings = load_settings(env={}, target="local", endpoint_url=cloud.endpoint_url, region="us-east-1")
    return client(settings, service, retries={"total_max_attempts": 1}, read_timeout=30)


def error_of(call):
    with pytest.raises(ClientError) as info:
        call()
    resp = info.value.response
    return resp["Error"]["Code"], resp["ResponseMetadata"]["HTTPStatusCode"]


def test_rules_given_at_start_apply(cloud):
    lam = clients(cloud, "lambda")
    name = deploy(lam, clients(cloud, "iam"), "echo", name="born-faulty-echo")
    resp, out = invoke_json(lam, name)
    assert resp["FunctionError"] == "Unhandled" and out["errorType"] == "FromOptions"
    admin(cloud, "DELETE")
    resp, out = invoke_json(lam, name)
    assert "FunctionError" not in resp and out["event"] == {}


def test_bad_rules_are_refused_with_a_reason_and_none_added(cloud, faults):
    before = admin(cloud, "GET")["rules"]
    for body, reason in [
        ({"type": "meteor"}, "fault type 'meteor' is not one of"),
        ({"type": "s3_error", "rate": 2}, "rate must be within 0..1"),
        ([{"type": "s3_error"}, {"type": "s3_error", "colour": "red"}], "unknown fault rule field(s): colour"),
        ({"type": "s3_error", "start_s": 5, "end_s": 1}, "end_s (1.0) must be after start_s (5.0)"),
        ({"type": "dynamodb_throttle", "code": "Busy"}, "code must be one of"),
    ]:
        with pytest.raises(urllib.error.HTTPError) as info:
            faults(body)
        assert info.value.code == 400 and reason in json.loads(info.value.read())["error"]
    assert admin(cloud, "GET")["rules"] == before


@pytest.mark.parametrize(
    "fault,error_type",
    [
        ("lambda_kill", "Runtime.ExitError"),
        ("lambda_timeout", "Sandbox.Timedout"),
        ("lambda_oom", "Runtime.OutOfMemory"),
    ],
)
def test_an_environment_ended_mid_invocation(cloud, faults, fault, error_type):
    lam = clients(cloud, "lambda")
    name = deploy(lam, clients(cloud, "iam"), "sleep", Timeout=20)
    before = admin(cloud, "GET")["counts"][fault]
    faults({"type": fault, "functions": [name], "after_s": 0.5, "max_count": 1})
    started = time.monotonic()
    resp, out = invoke_json(lam, name, {"seconds": 5})
    assert time.monotonic() - started < 4.5  # ended by the fault, not by the handler or the 20 s timeout
    assert resp["FunctionError"] == "Unhandled" and out["errorType"] == error_type
    assert admin(cloud, "GET")["counts"][fault] == before + 1
    resp, out = invoke_json(lam, name, {"seconds": 0})  # max_count 1: the next invoke runs (a new environment)
    assert "FunctionError" not in resp and out == {"slept": 0}
    log = (cloud.work_dir / "localcloud.log").read_text()
    assert f"fault injected: {fault} on {name}" in log


def test_a_function_raising_before_its_handler(cloud, faults):
    lam = clients(cloud, "lambda")
    name = deploy(lam, clients(cloud, "iam"), "echo")
    faults({"type": "lambda_error", "functions": [name]})
    resp, out = invoke_json(lam, name)
    assert resp["FunctionError"] == "Unhandled" and out["errorType"] == "Runtime.Unknown"
    assert "Injected fault" in out["errorMessage"]


def test_a_function_down_for_a_period(cloud, faults):
    lam = clients(cloud, "lambda")
    name = deploy(lam, clients(cloud, "iam"), "echo")
    other = deploy(lam, clients(cloud, "iam"), "echo")
    invoke_json(lam, name)  # warm: being down is not about cold starts
    faults({"type": "function_down", "functions": [name], "start_s": 0, "end_s": 2})
    for _ in range(3):
        assert error_of(lambda: invoke_json(lam, name)) == ("ServiceException", 500)
    assert "FunctionError" not in invoke_json(lam, other)[0]  # only the named function is down
    time.sleep(2.1)
    assert "FunctionError" not in invoke_json(lam, name)[0]
    assert admin(cloud, "GET")["counts"]["function_down"] >= 3


def test_s3_throttling_and_internal_errors_as_aws_answers_them(cloud, faults):
    s3 = clients(cloud, "s3")
    s3.create_bucket(Bucket="faults-bucket")
    faults([{"type": "s3_throttle", "max_count": 1}, {"type": "s3_error", "max_count": 1}])
    assert error_of(lambda: s3.put_object(Bucket="faults-bucket", Key="k", Body=b"x")) == ("SlowDown", 503)
    assert error_of(lambda: s3.get_object(Bucket="faults-bucket", Key="k")) == ("InternalError", 500)
    s3.put_object(Bucket="faults-bucket", Key="k", Body=b"x")
    assert s3.get_object(Bucket="faults-bucket", Key="k")["Body"].read() == b"x"
    counts = admin(cloud, "GET")["counts"]
    assert counts["s3_throttle"] == 1 and counts["s3_error"] == 1


def test_dynamodb_throttling_and_internal_errors_as_aws_answers_them(cloud, faults):
    ddb = clients(cloud, "dynamodb")
    ddb.create_table(
        TableName="faults-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    faults(
        [
            {"type": "dynamodb_throttle", "max_count": 1, "operations": ["PutItem"]},
            {"type": "dynamodb_throttle", "code": "ThrottlingException", "max_count": 1},
            {"type": "dynamodb_error", "max_count": 1},
        ]
    )
    put = lambda: ddb.put_item(TableName="faults-table", Item={"id": {"S": "a"}})  # noqa: E731
    get = lambda: ddb.get_item(TableName="faults-table", Key={"id": {"S": "a"}})  # noqa: E731
    assert error_of(put) == ("ProvisionedThroughputExceededException", 400)
    assert error_of(get) == ("ThrottlingException", 400)
    assert error_of(get) == ("InternalServerError", 500)
    put()
    assert get()["Item"]["id"] == {"S": "a"}


def test_a_rate_and_a_window(cloud, faults):
    s3 = clients(cloud, "s3")
    s3.create_bucket(Bucket="rate-bucket")
    faults({"type": "s3_error", "rate": 0.5, "operations": ["HEAD"], "end_s": 30})
    failed = 0
    for _ in range(60):
        try:
            s3.head_bucket(Bucket="rate-bucket")
        except ClientError:
            failed += 1
    assert 12 <= failed <= 48  # p(outside) < 1e-5 at rate 0.5
    assert admin(cloud, "GET")["counts"]["s3_error"] >= failed
    admin(cloud, "DELETE")
    faults({"type": "s3_throttle", "start_s": 1.0, "end_s": 2.5})
    s3.head_bucket(Bucket="rate-bucket")  # before the window
    time.sleep(1.2)
    assert error_of(lambda: s3.list_objects_v2(Bucket="rate-bucket")) == ("SlowDown", 503)
    time.sleep(1.5)
    s3.list_objects_v2(Bucket="rate-bucket")  # after it


CLASSIFY_ASL = Path(__file__).resolve().parents[2] / "asl" / "classify.asl.json"


@pytest.mark.parametrize(
    "rule,error",
    [
        ({"type": "lambda_kill"}, "Runtime.ExitError"),
        ({"type": "lambda_timeout"}, "Sandbox.Timedout"),
        ({"type": "lambda_oom"}, "Runtime.OutOfMemory"),
        ({"type": "lambda_error"}, "Runtime.Unknown"),
        ({"type": "function_down", "max_count": 2}, "Lambda.ServiceException"),
    ],
)
def test_the_workflow_retry_design_carries_a_task_through_each_lambda_fault(cloud, faults, rule, error):
    """A task with Workflow 2's Retry (the Resize state's) over a function that fails once: the execution
    succeeds, and its history shows the failed attempt under the error name the fault produces."""
    lam, sfn = clients(cloud, "lambda"), clients(cloud, "stepfunctions")
    name = deploy(lam, clients(cloud, "iam"), "echo")
    invoke_json(lam, name)  # a warm environment first
    resize = json.loads(CLASSIFY_ASL.read_text())["States"]["Resize"]
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": name, "Payload.$": "$"},
        "Retry": resize["Retry"],
        "End": True,
    }
    arn = create_state_machine(sfn, {"StartAt": "T", "States": {"T": task}})
    faults({"max_count": 1, **rule, "functions": [name]})
    desc = run_execution(sfn, arn, {"image_id": "x"})
    assert desc["status"] == "SUCCEEDED", desc
    failed = [
        e["taskFailedEventDetails"]["error"]
        for e in history_events(sfn, desc["executionArn"])
        if "taskFailedEventDetails" in e
    ]
    assert failed and set(failed) == {error}
