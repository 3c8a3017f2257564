"""API Gateway AWS_PROXY integration to a Lambda function running in the local
cloud's data plane: proxy event format 1.0 in, the function's response out,
function errors and malformed responses as 502."""

from __future__ import annotations

import json

import pytest
from apigw_helpers import add_key, add_method, create_api, deploy, http, lambda_proxy_integration, proxy_function

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def api(aws, local_cloud):
    apigw = aws("apigateway")
    fn = proxy_function(aws("lambda"), aws("iam"))
    api = create_api(apigw, local_cloud.endpoint_url, stage="prod")
    add_method(apigw, api, "ingest", "POST", lambda_proxy_integration(fn), api_key_required=True)
    images = add_method(apigw, api, "images", "GET", lambda_proxy_integration(fn))
    add_method(apigw, api, "{id}", "GET", lambda_proxy_integration(fn), parent_id=images)
    deploy(apigw, api)
    apigw.update_stage(
        restApiId=api.api_id,
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/variables/color", "value": "blue"}],
    )
    api.key = add_key(apigw, api)
    return api


def test_proxy_event_format_1_0(api):
    status, headers, body = http(
        "POST",
        api.url("/ingest?x=1&x=2"),
        {"image_url": "http://127.0.0.1/a.jpg"},
        headers={"x-api-key": api.key, "X-Custom": "c"},
    )
    assert status == 201, body
    assert headers["X-Probe"] == "yes"
    event = json.loads(body)
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/ingest", "/ingest", "POST")
    assert json.loads(event["body"]) == {"image_url": "http://127.0.0.1/a.jpg"} and event["isBase64Encoded"] is False
    assert event["queryStringParameters"] == {"x": "2"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    assert {k.lower(): v for k, v in event["headers"].items()}["x-custom"] == "c"
    assert event["multiValueHeaders"]
    assert event["pathParameters"] is None
    ctx = event["requestContext"]
    assert (ctx["stage"], ctx["apiId"], ctx["resourcePath"], ctx["httpMethod"]) == (
        "prod",
        api.api_id,
        "/ingest",
        "POST",
    )
    assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["identity"]["apiKey"] == api.key
    assert isinstance(ctx["requestTimeEpoch"], int) and ctx["requestId"] == headers["x-amzn-RequestId"]
    assert ctx["path"] == "/prod/ingest"


def test_path_parameters_and_stage_variables(api):
    status, _, body = http("GET", api.url("/images/abc123"))
    assert status == 201
    event = json.loads(body)
    assert event["pathParameters"] == {"id": "abc123"} and event["resource"] == "/images/{id}"
    assert event["stageVariables"] == {"color": "blue"}
    assert event["body"] is None


def test_multi_value_response_headers(api):
    _, headers, _ = http("GET", api.url("/images"))
    assert headers.get_all("X-Multi") == ["a", "b"]


def test_binary_bodies_are_base64_both_ways(api):
    status, headers, body = http("GET", api.url("/images?mode=binary"))
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert body == bytes([137, 80, 78, 71, 0, 255])
    status, _, body = http("POST", api.url("/ingest"), b"\xff\xfe\x00raw", headers={"x-api-key": api.key})
    event = json.loads(body)
    assert event["isBase64Encoded"] is True


@pytest.mark.parametrize("mode", ["raise", "malformed"])
def test_function_error_or_malformed_response_is_502(api, mode):
    status, _, body = http("GET", api.url(f"/images?mode={mode}"))
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_api_key_still_required_on_proxy_methods(api):
    assert http("POST", api.url("/ingest"), {"a": 1})[0] == 403
