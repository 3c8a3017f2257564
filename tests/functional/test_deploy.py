"""Provisioning and teardown on the local cloud, with the fixture functions of tests/fixtures/lambdas.

The tests run in file order against one deployment (module fixture): deploy,
check what was made, deploy again (nothing changes), change one setting (only
that changes), drive the API over HTTP, switch the workflow type, tear down
(nothing left), tear down again (still fine).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from swlab.provision import deploy as deploy_mod
from swlab.provision import iam, storage
from swlab.provision.context import Clients
from swlab.provision.naming import TAG_KEY, Names
from swlab.provision.teardown import remaining, teardown

pytestmark = pytest.mark.functional

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STACK = "fxdeploy"
FUNCTIONS = {"echo", "ingest", "model"}


@pytest.fixture(scope="module")
def settings(lab_settings, tmp_path_factory):
    return lab_settings.with_(stack=STACK, runs_dir=tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def options(tmp_path_factory):
    return deploy_mod.DeployOptions(
        lambdas_dir=FIXTURES / "lambdas",
        asl_path=FIXTURES / "asl" / "classify.asl.json",
        cache_dir=tmp_path_factory.mktemp("deps"),
        placeholders={"AllowedHosts": "127.0.0.1:9"},
        **deploy_mod.LOCAL_CLOUD_OPTIONS,
    )


@pytest.fixture(scope="module")
def first(settings, options):
    lines: list[str] = []
    result = deploy_mod.deploy(settings, options, progress=lines.append)
    result.lines = lines
    return result


@pytest.fixture(scope="module")
def names(first, settings):
    return Names(STACK, first.outputs.account_id, settings.region)


def post(url: str, body: dict, key: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_first_deploy_creates_every_resource_and_reports_each(first):
    kinds = {c.kind for c in first.report.changes}
    assert kinds == {
        "s3 bucket",
        "dynamodb table",
        "log group",
        "iam role",
        "lambda function",
        "state machine",
        "rest api",
        "api key",
        "usage plan",
    }
    assert {c.action for c in first.report.changes} == {"created"}
    assert len([c for c in first.report.changes if c.kind == "iam role"]) == len(FUNCTIONS) + 2
    # one line per resource, one saying how many functions (the runner's "deployed k of n"), one for the outputs
    assert len(first.lines) == len(first.report.changes) + 2
    assert first.lines[0] == f"planned   {len(first.outputs.functions)} lambda functions"


def test_outputs_are_recorded_and_match_the_cloud(first, aws):
    outputs = deploy_mod.load_outputs(first.outputs_path)
    assert outputs == first.outputs
    assert set(outputs.functions) == FUNCTIONS
    for name, fn in outputs.functions.items():
        cfg = aws("lambda").get_function_configuration(FunctionName=fn["function_name"])
        assert fn["function_name"] == f"{STACK}-{name}" and cfg["CodeSha256"] == fn["code_sha256"]
    machine = aws("stepfunctions").describe_state_machine(stateMachineArn=outputs.state_machine["arn"])
    assert machine["type"] == outputs.state_machine["type"] == "EXPRESS"
    assert machine["loggingConfiguration"]["level"] == "ALL"
    api = outputs.api
    assert api["endpoints"]["ingest"].endswith(f"/restapis/{api['id']}/lab/_user_request_/ingest")
    assert api["api_key"] == aws("apigateway").get_api_key(apiKey=api["api_key_id"], includeValue=True)["value"]


def test_bucket_is_private_and_encrypted(first, aws):
    s3, bucket = aws("s3"), first.outputs.bucket
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == storage.PUBLIC_ACCESS_BLOCK and all(block.values())
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]} == {TAG_KEY: STACK}
    assert first.outputs.bucket_tls_only is False  # the local cloud speaks plain HTTP (see the next test)


def test_tls_only_policy_denies_plain_http_and_is_removed_again(first, settings, options, aws):
    s3, bucket = aws("s3"), first.outputs.bucket
    tls = deploy_mod.deploy(settings, options, progress=lambda line: None, tls_only=True)
    assert [(c.kind, c.detail) for c in tls.report.changes if c.action != "unchanged"] == [("s3 bucket", "policy")]
    (statement,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    with pytest.raises(s3.exceptions.ClientError, match="403"):
        s3.put_object(Bucket=bucket, Key="raw/plain-http", Body=b"x")  # the endpoint is http://127.0.0.1
    back = deploy_mod.deploy(settings, options, progress=lambda line: None)
    assert [(c.kind, c.detail) for c in back.report.changes if c.action != "unchanged"] == [
        ("s3 bucket", "policy removed")
    ]
    s3.put_object(Bucket=bucket, Key="raw/plain-http", Body=b"x")


def test_table_is_on_demand_keyed_by_image_id(first, aws):
    table = aws("dynamodb").describe_table(TableName=first.outputs.table)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "image_id", "KeyType": "HASH"}]


def test_functions_get_their_configuration_environment_and_own_role(first, aws, names):
    cfg = aws("lambda").get_function_configuration(FunctionName=f"{STACK}-echo")
    assert (cfg["MemorySize"], cfg["Timeout"], cfg["Handler"], cfg["Runtime"]) == (
        128,
        10,
        "handler.handler",
        "python3.11",
    )
    assert cfg["Environment"]["Variables"] == {
        "BUCKET": names.bucket,
        "TABLE": names.table,
        "STACK": STACK,
        "REGION": names.region,
        "MODE": "fixture",
    }
    ingest = aws("lambda").get_function_configuration(FunctionName=f"{STACK}-ingest")
    assert ingest["Environment"]["Variables"]["ALLOWED_HOSTS"] == "127.0.0.1:9"
    role = aws("iam").get_role(RoleName=names.lambda_role("echo"))["Role"]
    assert cfg["Role"] == role["Arn"] and role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"
    }
    assert aws("iam").list_role_policies(RoleName=names.lambda_role("echo"))["PolicyNames"] == [
        names.lambda_role("echo")
    ]
    policy = aws("iam").get_role_policy(RoleName=names.lambda_role("echo"), PolicyName=names.lambda_role("echo"))
    resources = iam.StackResources(STACK, names.account_id, names.region, names.bucket, names.table)
    assert policy["PolicyDocument"] == iam.function_policy(
        "echo", {"s3_read": ["raw/*"], "dynamodb": ["GetItem"]}, resources
    )


def test_second_deploy_changes_nothing(first, settings, options, aws):
    again = deploy_mod.deploy(settings, options, progress=lambda line: None)
    assert again.report.all_unchanged, [c for c in again.report.changes if c.action != "unchanged"]
    assert len(again.report.changes) == len(first.report.changes)
    assert {n: f["code_sha256"] for n, f in again.outputs.functions.items()} == {
        n: f["code_sha256"] for n, f in first.outputs.functions.items()
    }
    assert again.outputs.api["id"] == first.outputs.api["id"]


def test_a_changed_setting_updates_only_that_resource(settings, options, aws):
    changed = deploy_mod.deploy(
        settings, options, progress=lambda line: None, function_overrides={"echo": {"memory_mb": 256}}
    )
    touched = [(c.kind, c.name, c.action, c.detail) for c in changed.report.changes if c.action != "unchanged"]
    assert touched == [("lambda function", f"{STACK}-echo", "updated", "MemorySize")]
    assert aws("lambda").get_function_configuration(FunctionName=f"{STACK}-echo")["MemorySize"] == 256
    restored = deploy_mod.deploy(settings, options, progress=lambda line: None)
    assert [c.name for c in restored.report.changes if c.action == "updated"] == [f"{STACK}-echo"]


def test_the_api_answers_over_http_with_the_key_only(first):
    api = first.outputs.api
    status, body = post(api["endpoints"]["ingest"], {"image_url": "http://example.invalid/a.jpg"}, api["api_key"])
    assert status == 201 and body["got"] == {"image_url": "http://example.invalid/a.jpg"}
    assert post(api["endpoints"]["ingest"], {}, None)[0] == 403
    assert post(api["endpoints"]["classify"], {"image_id": "x"}, "wrong-key")[0] == 403
    status, output = post(api["endpoints"]["classify"], {"image_id": "0" * 31 + "1"}, api["api_key"])
    assert status == 200, output  # the execution's output object itself, not a string in "output"
    assert (
        output["echo"] is True and output["model"] == "fixture" and output["config"]["bucket"] == first.outputs.bucket
    )


def test_switching_to_standard_replaces_the_state_machine_and_the_integration(settings, options, aws):
    standard = deploy_mod.deploy(settings, options, progress=lambda line: None, workflow_type="STANDARD")
    touched = {(c.kind, c.action) for c in standard.report.changes if c.action != "unchanged"}
    assert touched == {("state machine", "updated"), ("rest api", "updated")}
    api = standard.outputs.api
    status, body = post(api["endpoints"]["classify"], {"image_id": "0" * 31 + "2"}, api["api_key"])
    assert status == 200 and body["executionArn"].startswith(
        standard.outputs.state_machine["arn"].replace(":stateMachine:", ":execution:")
    )
    assert (
        aws("stepfunctions").describe_state_machine(stateMachineArn=standard.outputs.state_machine["arn"])["type"]
        == "STANDARD"
    )


def test_teardown_leaves_nothing_and_spares_other_stacks(first, settings, aws, names):
    clients = Clients(settings, aws)
    before = remaining(clients, names, settings)
    tagged = [r for r in before if r.startswith("tagged ")]
    assert any(":lambda:" in r for r in tagged) and any(":states:" in r for r in tagged)
    assert any("arn:aws:s3:::" in r for r in tagged) and any(":logs:" in r for r in tagged)
    other = f"{STACK}-x-images"  # another stack whose name starts like ours
    aws("dynamodb").create_table(
        TableName=other,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        Tags=[{"Key": TAG_KEY, "Value": f"{STACK}-x"}],
    )
    report = teardown(settings, progress=lambda line: None)
    assert report.clean and report.remaining == []
    assert {c.action for c in report.deleted} == {"deleted"}
    assert {c.kind for c in report.deleted} == {c.kind for c in first.report.changes}
    assert not first.outputs_path.exists()
    assert remaining(clients, names, settings) == []
    assert (
        aws("resourcegroupstaggingapi").get_resources(TagFilters=[{"Key": TAG_KEY, "Values": [STACK]}])[
            "ResourceTagMappingList"
        ]
        == []
    )
    assert not [f for f in aws("lambda").list_functions()["Functions"] if f["FunctionName"].startswith(f"{STACK}-")]
    assert not [r for r in aws("iam").list_roles()["Roles"] if r["RoleName"].startswith(f"{STACK}-")]
    assert not [a for a in aws("apigateway").get_rest_apis()["items"] if a["name"].startswith(f"{STACK}-")]
    assert aws("dynamodb").list_tables()["TableNames"].count(other) == 1
    aws("dynamodb").delete_table(TableName=other)


def test_teardown_again_is_a_clean_no_op(settings):
    report = teardown(settings, progress=lambda line: None)
    assert report.clean and report.deleted == []
