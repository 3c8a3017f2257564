"""The pure parts of provisioning: names, invoke URLs, change reports, what the API and state machine get."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from swlab.provision import api, awserrors, packaging, state_machine
from swlab.provision.awserrors import role_not_ready
from swlab.provision.changes import ChangeReport, outcome
from swlab.provision.functions import configuration_diff, desired_configuration
from swlab.provision.naming import Names, invoke_url
from swlab.provision.options import DeployOptions
from swlab.provision.packaging import CodeSource
from swlab.provision.state_machine import logging_configuration
from swlab.settings import load_settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
NAMES = Names("swlab", "123456789012", "us-east-1")


def test_names_are_prefixed_and_within_aws_limits():
    assert NAMES.bucket == "swlab-images-123456789012-us-east-1"
    assert NAMES.function("fetch_image") == "swlab-fetch_image"
    long = Names("a" * 31, "123456789012", "ap-southeast-2")
    assert len(long.bucket) <= 63 and long.bucket.startswith("a" * 31 + "-images-")
    assert long.bucket == Names("a" * 31, "123456789012", "ap-southeast-2").bucket
    assert len(long.lambda_role("x" * 40)) <= 64


def test_invoke_url_on_both_targets():
    local = load_settings(env={}, target="local", endpoint_url="http://127.0.0.1:4566/")
    assert (
        invoke_url(local, "abc123", "lab", "/ingest")
        == "http://127.0.0.1:4566/restapis/abc123/lab/_user_request_/ingest"
    )
    aws = load_settings(env={}, target="aws", region="eu-west-1")
    assert (
        invoke_url(aws, "abc123", "lab", "classify")
        == "https://abc123.execute-api.eu-west-1.amazonaws.com/lab/classify"
    )
    with pytest.raises(ValueError, match="endpoint_url"):
        invoke_url(load_settings(env={}, target="local"), "abc123")


def test_change_report_prints_one_line_per_resource_and_summarises():
    lines: list[str] = []
    report = ChangeReport(lines.append)
    report.record("s3 bucket", "b", *outcome(False, []))
    report.record("lambda function", "f", *outcome(False, ["MemorySize"]))
    assert lines == ["unchanged s3 bucket            b", "updated   lambda function      f  (MemorySize)"]
    assert not report.all_unchanged and report.counts() == {"unchanged": 1, "updated": 1}
    assert outcome(True, ["tags"]) == ("created", "")


def test_workflow_type_is_checked():
    with pytest.raises(ValueError, match="workflow_type"):
        DeployOptions(workflow_type="SYNC")


def test_configuration_diff_names_what_differs_only():
    spec = packaging.FunctionConfig("f", REPO, memory_mb=256, timeout_s=9)
    desired = desired_configuration(spec, CodeSource("zip", "sha", {}), "arn:role", {"A": "1"}, "d")
    current = {
        "Role": "arn:role",
        "Timeout": 9,
        "MemorySize": 256,
        "Description": "d",
        "Handler": "handler.handler",
        "Runtime": "python3.11",
        "Environment": {"Variables": {"A": "1"}},
    }
    assert configuration_diff(current, desired) == []
    assert configuration_diff({**current, "MemorySize": 128, "Environment": {"Variables": {}}}, desired) == [
        "MemorySize",
        "Environment",
    ]
    image = desired_configuration(spec, CodeSource("image", "sha", {}), "arn:role", {}, "d")
    assert "Handler" not in image and "Runtime" not in image


@pytest.mark.parametrize("kind, action", [("EXPRESS", "StartSyncExecution"), ("STANDARD", "StartExecution")])
def test_classify_integration_follows_the_workflow_type(kind, action):
    machine = {"arn": NAMES.arn("states", "stateMachine:swlab-classify"), "type": kind}
    ingest_arn = NAMES.arn("lambda", "function:swlab-ingest")
    integrations = api.desired_integrations(NAMES, ingest_arn, machine, "arn:aws:iam::1:role/r")
    classify = integrations[("classify", "POST")]
    assert classify["uri"] == f"arn:aws:apigateway:us-east-1:states:action/{action}"
    assert classify["credentials"] == "arn:aws:iam::1:role/r"
    template = classify["requestTemplates"]["application/json"]
    assert machine["arn"] in template and "$context.requestId" in template and "$input.json('$')" in template
    assert (kind == "EXPRESS") == ("200" in classify["responseTemplates"])
    assert ("classifications", "POST") not in integrations  # no classifications function given
    assert integrations[("ingest", "POST")] == {
        "type": "AWS_PROXY",
        "httpMethod": "POST",
        "uri": f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{ingest_arn}/invocations",
    }


def test_state_machine_logs_everything_to_its_group():
    cfg = logging_configuration("arn:aws:logs:us-east-1:1:log-group:/aws/vendedlogs/states/swlab-classify:*")
    assert cfg["level"] == "ALL" and cfg["includeExecutionData"] is True
    assert cfg["destinations"][0]["cloudWatchLogsLogGroup"]["logGroupArn"].endswith("swlab-classify:*")


def test_usage_plan_patch_only_for_differences():
    throttle = {"rateLimit": 50.0, "burstLimit": 100}
    stages = [{"apiId": "a1", "stage": "lab"}]
    plan = {"throttle": {"rateLimit": 50.0, "burstLimit": 100}, "apiStages": stages}
    assert api._usage_plan_patch(plan, throttle, stages) == []
    ops = api._usage_plan_patch({"throttle": {"rateLimit": 10, "burstLimit": 100}}, throttle, stages)
    assert ops == [
        {"op": "replace", "path": "/throttle/rateLimit", "value": "50"},
        {"op": "add", "path": "/apiStages", "value": "a1:lab"},
    ]


def test_the_labs_state_machine_gets_every_placeholder_from_the_labs_functions():
    specs = packaging.discover_functions(REPO / "lambdas")
    functions = {s.name: {"arn": NAMES.arn("lambda", f"function:{NAMES.function(s.name)}")} for s in specs}
    definition = json.loads(
        state_machine.load_definition(
            REPO / "asl" / "classify.asl.json", state_machine.state_machine_values(NAMES, functions)
        )
    )
    text = json.dumps(definition)
    assert "${" not in text and NAMES.table in text
    assert NAMES.function("fetch_image") in text and NAMES.function("ingest") not in text


def client_error(code: str, message: str):
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateFunction")


def test_role_propagation_errors_are_retried_and_others_are_not(monkeypatch):
    assert role_not_ready(
        client_error("InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda.")
    )
    assert role_not_ready(
        client_error(
            "AccessDeniedException",
            "Neither the global service principal "
            "states.amazonaws.com, nor the regional one is authorized to assume the role",
        )
    )
    assert not role_not_ready(client_error("InvalidParameterValueException", "Unzipped size must be smaller"))
    monkeypatch.setattr(awserrors.time, "sleep", lambda s: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise client_error("InvalidParameterValueException", "cannot be assumed by Lambda")
        return "ok"

    assert awserrors.retry(flaky, role_not_ready, timeout_s=60) == "ok" and len(calls) == 3
    with pytest.raises(Exception, match="Unzipped"):
        awserrors.retry(
            lambda: (_ for _ in ()).throw(client_error("InvalidParameterValueException", "Unzipped")), role_not_ready
        )
