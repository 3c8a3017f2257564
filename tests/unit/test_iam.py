"""swlab.provision.iam: every role names only its own resources, with only the actions its code uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swlab.provision import asl, iam, roles
from swlab.provision.changes import ChangeReport
from swlab.provision.context import Clients, DeployContext
from swlab.provision.naming import Names, stack_tags
from swlab.settings import load_settings

pytestmark = pytest.mark.unit
LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
RES = iam.StackResources(
    stack="swlab",
    account_id="123456789012",
    region="us-east-1",
    bucket="swlab-123456789012-us-east-1",
    table="swlab-images",
)
OTHER = iam.StackResources(
    stack="other", account_id="123456789012", region="us-east-1", bucket="other-bucket", table="other-images"
)
FUNCTIONS = sorted(p.parent.name for p in LAMBDAS.glob("*/function.json"))


def actions(policy):
    return {a for s in policy["Statement"] for a in s["Action"]}


def test_every_function_folder_gets_a_policy():
    policies = iam.function_policies(LAMBDAS, RES)
    assert sorted(policies) == FUNCTIONS and "ingest" in policies and "_shared" not in policies
    assert len(FUNCTIONS) == 17


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_policy_names_only_its_own_resources(function):
    policy = iam.function_policies(LAMBDAS, RES)[function]
    named = iam.resources_named(policy)
    own_logs = RES.log_group_arn(function)
    assert {own_logs, f"{own_logs}:*"} <= named
    for arn in named:
        assert arn != "*" and "other" not in arn
        assert arn.startswith((own_logs, RES.bucket_arn, RES.table_arn, RES.state_machine_arn("swlab-classify"))), arn
    for other in FUNCTIONS:
        if other != function:
            assert not any(RES.log_group_arn(other) + suffix in named for suffix in ("", ":*"))
    starts = {"states:StartExecution"} if function == "classifications" else set()
    assert {a for a in actions(policy) if a.startswith("states:")} == starts
    assert not any(a.startswith(("lambda:", "iam:")) or a.endswith("*") for a in actions(policy))


def test_function_policies_follow_the_access_blocks():
    p = iam.function_policies(LAMBDAS, RES)
    bucket = RES.bucket_arn
    assert actions(p["ingest"]) >= {"s3:PutObject", "s3:DeleteObject", "dynamodb:PutItem"}
    assert "s3:GetObject" not in actions(p["ingest"]) and "dynamodb:UpdateItem" not in actions(p["ingest"])
    assert {f"{bucket}/raw/*"} == {
        r for s in p["ingest"]["Statement"] if s["Sid"] == "WriteObjects" for r in s["Resource"]
    }
    read = {r for s in p["fetch_image"]["Statement"] if s["Sid"] == "ReadObjects" for r in s["Resource"]}
    assert read == {f"{bucket}/raw/*"} and "dynamodb:GetItem" not in actions(p["fetch_image"])
    assert actions(p["aggregate"]) == {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
    assert actions(p["update"]) - actions(p["aggregate"]) == {"dynamodb:UpdateItem"}
    assert f"{bucket}/models/*" in iam.resources_named(p["resnet"]) and "s3:PutObject" not in actions(p["resnet"])


@pytest.mark.parametrize(
    "access, message",
    [
        ({"s3_admin": ["*"]}, "unknown access keys"),
        ({"s3_read": ["*"]}, "under a prefix"),
        ({"s3_write": ["/raw/*"]}, "under a prefix"),
        ({"s3_read": "raw/*"}, "list of non-empty strings"),
        ({"dynamodb": ["Scan"]}, "access.dynamodb allows"),
        ({"dynamodb": ["*"]}, "access.dynamodb allows"),
    ],
)
def test_access_blocks_that_would_widen_a_role_are_refused(access, message):
    with pytest.raises(iam.AccessError, match=message):
        iam.function_policy("x", access, RES)


def test_state_machine_policy_invokes_exactly_the_workflow_functions():
    used = asl.classify_functions(LAMBDAS)
    assert "ingest" not in used and {"fetch_image", "resnet", "mark_failed"} <= set(used) and len(used) == 11
    assert len(asl.classify_functions(LAMBDAS, "fused")) == 8
    policy = iam.state_machine_policy(RES, used)
    invoke = next(s for s in policy["Statement"] if s["Sid"] == "InvokeStackFunctions")
    assert set(invoke["Action"]) == {"lambda:InvokeFunction"}
    assert set(invoke["Resource"]) == {RES.function_arn(f) + q for f in used for q in ("", ":*")}
    assert RES.function_arn("ingest") not in invoke["Resource"]
    table = next(s for s in policy["Statement"] if s["Sid"] == "ReadImageMetadata")
    assert (table["Action"], table["Resource"]) == (["dynamodb:GetItem"], [RES.table_arn])
    star = [s for s in policy["Statement"] if "*" in s["Resource"]]
    assert [s["Sid"] for s in star] == ["LogDelivery"] and all(a.startswith("logs:") for a in star[0]["Action"])
    assert not [s for s in iam.state_machine_policy(RES, used, log_delivery=False)["Statement"] if "*" in s["Resource"]]


def test_api_gateway_policy_names_one_state_machine():
    arn = RES.state_machine_arn("swlab-classify")
    policy = iam.api_gateway_policy(arn)
    assert iam.resources_named(policy) == {arn}
    assert actions(policy) == {"states:StartExecution", "states:StartSyncExecution"}


def test_ingest_invoke_permission_is_scoped_to_one_api_and_route():
    permission = iam.ingest_invoke_permission(RES, "abc123")
    assert permission["FunctionName"] == "swlab-ingest" and permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"] == "arn:aws:execute-api:us-east-1:123456789012:abc123/*/POST/ingest"


def test_trust_policies_name_their_service():
    for service, principal in [
        ("lambda", "lambda.amazonaws.com"),
        ("states", "states.amazonaws.com"),
        ("apigateway", "apigateway.amazonaws.com"),
    ]:
        doc = iam.trust_policy(service)
        assert doc["Statement"][0]["Principal"] == {"Service": principal}
        assert doc["Statement"][0]["Action"] == "sts:AssumeRole"


def test_stacks_do_not_share_resources():
    mine = set().union(*(iam.resources_named(p) for p in iam.function_policies(LAMBDAS, RES).values()))
    theirs = set().union(*(iam.resources_named(p) for p in iam.function_policies(LAMBDAS, OTHER).values()))
    assert not mine & theirs


def test_policies_are_valid_json_documents_iam_accepts_in_size():
    for policy in iam.function_policies(LAMBDAS, RES).values():
        text = json.dumps(policy)
        assert json.loads(text)["Version"] == "2012-10-17" and len(text) < 10_240  # inline role policy limit


def test_moto_iam_accepts_every_document():
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("iam", region_name="us-east-1")
        documents = {f"swlab-{f}": ("lambda", p) for f, p in iam.function_policies(LAMBDAS, RES).items()}
        documents["swlab-states"] = ("states", iam.state_machine_policy(RES, asl.classify_functions(LAMBDAS)))
        documents["swlab-apigateway"] = ("apigateway", iam.api_gateway_policy(RES.state_machine_arn("swlab-classify")))
        for role, (service, policy) in documents.items():
            client.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(iam.trust_policy(service)))
            client.put_role_policy(RoleName=role, PolicyName="least-privilege", PolicyDocument=json.dumps(policy))
        assert len(client.list_roles()["Roles"]) == len(FUNCTIONS) + 2


def test_deploy_creates_its_roles_with_the_one_trust_policy(monkeypatch):
    """The roles module uses iam.trust_policy (once there were two; the tested one was not the deployed one)."""
    import boto3
    from moto import mock_aws

    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        settings = load_settings(env={}, target="aws", region="us-east-1")
        lines: list[str] = []
        ctx = DeployContext(
            settings,
            Clients(settings, lambda s: boto3.client(s, region_name="us-east-1")),
            ChangeReport(lines.append),
            Names("swlab", "123456789012", "us-east-1"),
            tags=stack_tags("swlab"),
        )
        policy = iam.api_gateway_policy(RES.state_machine_arn("swlab-classify"))
        for service in ("lambda", "states", "apigateway"):
            roles.ensure_role(ctx, f"swlab-{service}", service, policy)
            role = ctx.clients("iam").get_role(RoleName=f"swlab-{service}")["Role"]
            assert role["AssumeRolePolicyDocument"] == iam.trust_policy(service)
            roles.ensure_role(ctx, f"swlab-{service}", service, policy)
        assert [line.split()[0] for line in lines] == ["created", "unchanged"] * 3
