"""Lambda versions, aliases and provisioned concurrency on the local cloud, as AWS runs them.

A published version runs the code and configuration it was published with, in environments of its own;
invoking it by ``Qualifier``, by a qualified name or ARN, or through an alias says which version ran
(``X-Amz-Executed-Version``, the START line, ``context.function_version``) and how it was named
(``context.invoked_function_arn``). Provisioned concurrency keeps initialised environments of a version.
"""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest
from botocore.exceptions import ClientError
from conftest import environments, invoke_json, wait_for

pytestmark = pytest.mark.functional

ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


def tail_lines(resp: dict, prefix: str) -> list[str]:
    return [line for line in base64.b64decode(resp["LogResult"]).decode().splitlines() if line.startswith(prefix)]


@pytest.fixture
def versioned(aws, deploy_probe):
    """An echo function with version 1 (PROBE_VAR=v1, 256 MB), then $LATEST changed (v2), alias ``live`` → 1."""
    lam = aws("lambda")
    name = deploy_probe("echo", MemorySize=256, Environment={"Variables": {"PROBE_VAR": "v1"}})
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_configuration(FunctionName=name, MemorySize=512, Environment={"Variables": {"PROBE_VAR": "v2"}})
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    return name


def test_a_version_runs_its_own_code_and_configuration_in_its_own_environments(aws, versioned, local_cloud):
    lam, name = aws("lambda"), versioned
    resp, latest = invoke_json(lam, name, LogType="Tail")
    assert resp["ExecutedVersion"] == "$LATEST" and latest["env"]["PROBE_VAR"] == "v2"
    assert latest["context"]["memory_limit_in_mb"] == "512"
    assert tail_lines(resp, "START")[0].endswith("Version: $LATEST")

    resp, v1 = invoke_json(lam, name, Qualifier="1", LogType="Tail")
    assert resp["ExecutedVersion"] == "1"
    assert tail_lines(resp, "START")[0].endswith("Version: 1")
    assert v1["env"]["PROBE_VAR"] == "v1" and v1["context"]["memory_limit_in_mb"] == "256"
    assert v1["context"]["function_version"] == "1" and v1["env"]["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    assert v1["context"]["invoked_function_arn"] == f"{ARN}{name}:1"
    assert "[1]" in v1["context"]["log_stream_name"]
    assert v1["pid"] != latest["pid"] and v1["cold"] is True

    envs = environments(local_cloud.endpoint_url, name)
    assert sorted(e["version"] for e in envs) == ["$LATEST", "1"]


@pytest.mark.parametrize(
    "how", [{"Qualifier": "live"}, {"FunctionName": "{name}:live"}, {"FunctionName": ARN + "{name}:live"}]
)
def test_an_alias_or_a_qualified_arn_runs_the_version_it_names(aws, versioned, how):
    lam, name = aws("lambda"), versioned
    kwargs = {k: v.format(name=name) for k, v in how.items()}
    function = kwargs.pop("FunctionName", name)
    resp = lam.invoke(FunctionName=function, Payload=b"{}", **kwargs)
    out = json.loads(resp["Payload"].read())
    assert resp["ExecutedVersion"] == "1" and out["env"]["PROBE_VAR"] == "v1"
    assert out["context"]["function_version"] == "1"
    assert out["context"]["invoked_function_arn"] == f"{ARN}{name}:live"
    resp = lam.invoke(FunctionName=f"{ARN}{name}:1", Payload=b"{}")
    assert resp["ExecutedVersion"] == "1"
    assert json.loads(resp["Payload"].read())["context"]["invoked_function_arn"] == f"{ARN}{name}:1"


@pytest.mark.parametrize("qualifier", ["7", "nosuchalias"])
def test_an_unknown_qualifier_is_a_404_resource_not_found(aws, versioned, qualifier):
    with pytest.raises(ClientError) as err:
        aws("lambda").invoke(FunctionName=versioned, Qualifier=qualifier, Payload=b"{}")
    error = err.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert f"{ARN}{versioned}:{qualifier}" in error["Error"]["Message"]


def test_provisioned_concurrency_keeps_initialised_environments(aws, versioned, local_cloud):
    lam, name = aws("lambda"), versioned
    with pytest.raises(ClientError) as err:  # only a published version or an alias
        lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"

    put = lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=2)
    assert put["RequestedProvisionedConcurrentExecutions"] == 2 and put["Status"] in ("IN_PROGRESS", "READY")
    ready = wait_for(
        lambda: lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")["Status"] == "READY", 60
    )
    assert ready
    got = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    assert got["AllocatedProvisionedConcurrentExecutions"] == 2
    provisioned = [e for e in environments(local_cloud.endpoint_url, name) if e["provisioned"]]
    assert len(provisioned) == 2 and {e["version"] for e in provisioned} == {"1"}
    assert {e["state"] for e in provisioned} == {"idle"}

    # a forced cold start leaves provisioned environments alone; invocations they serve are warm
    urllib.request.urlopen(
        urllib.request.Request(f"{local_cloud.endpoint_url}/_localcloud/lambda?FunctionName={name}", method="DELETE")
    ).read()
    for _ in range(3):
        resp, out = invoke_json(lam, name, Qualifier="live", LogType="Tail")
        assert resp["ExecutedVersion"] == "1"
        assert out["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
        assert "Init Duration" not in tail_lines(resp, "REPORT")[0]
        assert out["pid"] in {e["pid"] for e in provisioned}
    # $LATEST is not provisioned: on demand, a cold start on the request path
    resp, out = invoke_json(lam, name, LogType="Tail")
    assert "Init Duration" in tail_lines(resp, "REPORT")[0]
    assert out["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"

    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == [f"{ARN}{name}:live"]
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    gone = wait_for(lambda: not any(e["provisioned"] for e in environments(local_cloud.endpoint_url, name)))
    assert gone
    with pytest.raises(ClientError) as err:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    assert err.value.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"


def test_a_provisioned_environment_that_dies_is_replaced(aws, deploy_probe, local_cloud):
    lam = aws("lambda")
    name = deploy_probe("exit")
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)

    def live() -> list[dict]:
        envs = environments(local_cloud.endpoint_url, name)
        return [e for e in envs if e["provisioned"] and e["state"] == "idle"]

    (first,) = wait_for(live, 60)
    resp = lam.invoke(FunctionName=name, Qualifier=version, Payload=b"{}", LogType="Tail")
    assert resp["FunctionError"] == "Unhandled" and "Init Duration" not in tail_lines(resp, "REPORT")[0]
    replaced = wait_for(lambda: [e for e in live() if e["id"] != first["id"]], 60)
    assert len(replaced) == 1 and not any(e["id"] == first["id"] for e in environments(local_cloud.endpoint_url, name))
    status = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert status["Status"] == "READY" and status["AllocatedProvisionedConcurrentExecutions"] == 1
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
