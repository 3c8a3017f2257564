"""Build small REST APIs on the local cloud and call them over HTTP (one copy, shared)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class Api:
    api_id: str
    root_id: str
    stage: str
    base_url: str  # .../restapis/<id>/<stage>/_user_request_

    def url(self, path: str) -> str:
        return self.base_url + path


def create_api(apigw: Any, endpoint_url: str, stage: str = "test", binary_media_types: list[str] | None = None) -> Api:
    extra = {"binaryMediaTypes": binary_media_types[:1]} if binary_media_types else {}
    api_id = apigw.create_rest_api(name=f"api-{uuid.uuid4().hex[:6]}", **extra)["id"]
    if binary_media_types and binary_media_types[1:]:  # the others as AWS adds them: the type in the path
        ops = [{"op": "add", "path": "/binaryMediaTypes/" + t.replace("/", "~1")} for t in binary_media_types[1:]]
        apigw.update_rest_api(restApiId=api_id, patchOperations=ops)
    root_id = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    return Api(api_id, root_id, stage, f"{endpoint_url}/restapis/{api_id}/{stage}/_user_request_")


def add_method(
    apigw: Any,
    api: Api,
    path_part: str,
    http_method: str,
    integration: dict,
    integration_responses: list[dict] | None = None,
    *,
    api_key_required: bool = False,
    parent_id: str | None = None,
) -> str:
    """Resource + method + integration (+ integration responses); returns the resource id."""
    resource_id = apigw.create_resource(restApiId=api.api_id, parentId=parent_id or api.root_id, pathPart=path_part)[
        "id"
    ]
    apigw.put_method(
        restApiId=api.api_id,
        resourceId=resource_id,
        httpMethod=http_method,
        authorizationType="NONE",
        apiKeyRequired=api_key_required,
    )
    apigw.put_integration(restApiId=api.api_id, resourceId=resource_id, httpMethod=http_method, **integration)
    for response in integration_responses or []:
        apigw.put_integration_response(restApiId=api.api_id, resourceId=resource_id, httpMethod=http_method, **response)
    return resource_id


def deploy(apigw: Any, api: Api) -> None:
    apigw.create_deployment(restApiId=api.api_id, stageName=api.stage)


def add_key(apigw: Any, api: Api, throttle: dict | None = None, quota: dict | None = None, enabled: bool = True) -> str:
    """An API key in a usage plan on the API's stage; returns the key value."""
    key = apigw.create_api_key(name=f"k-{uuid.uuid4().hex[:6]}", enabled=enabled)
    plan_args: dict[str, Any] = {
        "name": f"plan-{uuid.uuid4().hex[:6]}",
        "apiStages": [{"apiId": api.api_id, "stage": api.stage}],
    }
    if throttle:
        plan_args["throttle"] = throttle
    if quota:
        plan_args["quota"] = quota
    plan = apigw.create_usage_plan(**plan_args)
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    return key["value"]


def http(
    method: str, url: str, body: Any = None, headers: dict | None = None, timeout: float = 60
) -> tuple[int, Any, bytes]:
    """→ (status, headers (an email.message.Message), body) for any status (no exception on 4xx/5xx)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})} if data is not None else (headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def mock_integration(status: int = 200, body: str = '{"ok": true}') -> tuple[dict, list[dict]]:
    """A MOCK integration answering ``status`` with ``body`` (integration + its responses)."""
    integration = {"type": "MOCK", "requestTemplates": {"application/json": json.dumps({"statusCode": status})}}
    responses = [{"statusCode": str(status), "selectionPattern": "", "responseTemplates": {"application/json": body}}]
    return integration, responses


PROXY_HANDLER = """import base64, json

def handler(event, context):
    mode = (event.get("queryStringParameters") or {}).get("mode")
    if mode == "raise":
        raise RuntimeError("boom")
    if mode == "binary":
        return {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "isBase64Encoded": True,
                "body": base64.b64encode(bytes([137, 80, 78, 71, 0, 255])).decode()}
    if mode == "malformed":
        return {"hello": "no statusCode"}
    if mode == "unknown-key":
        return {"statusCode": 200, "body": "x", "cookies": ["a=b"]}
    if mode == "multi-not-list":
        return {"statusCode": 200, "multiValueHeaders": {"X-Multi": "a"}}
    if mode == "no-status":
        return {"headers": {"X-Probe": "yes"}}
    if mode == "joined":
        return {"statusCode": 200, "headers": {"X-Multi": "c", "X-Same": "s"},
                "multiValueHeaders": {"X-Multi": ["a", "b"], "X-Same": ["s"]}, "body": "ok"}
    return {"statusCode": 201, "headers": {"X-Probe": "yes"}, "multiValueHeaders": {"X-Multi": ["a", "b"]},
            "body": json.dumps(event)}
"""


def proxy_function(lambda_client: Any, iam: Any) -> str:
    """A function answering API Gateway proxy events (``?mode=raise|binary|malformed|...``); returns its ARN."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", PROXY_HANDLER)
    name = f"proxy-{uuid.uuid4().hex[:8]}"
    try:
        role = iam.get_role(RoleName="apigw-proxy-test")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="apigw-proxy-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": buf.getvalue()},
        Timeout=10,
    )["FunctionArn"]


def lambda_proxy_integration(function_arn: str, region: str = "us-east-1") -> dict:
    return {
        "type": "AWS_PROXY",
        "integrationHttpMethod": "POST",
        "uri": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
    }
