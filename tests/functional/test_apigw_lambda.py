"""API Gateway AWS_PROXY integration to a Lambda function running in the local
cloud's data plane: proxy event format 1.0 in, the function's response out,
function errors and malformed responses as 502."""

from __future__ import annotations

import base64
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
    api.function = fn
    return api


@pytest.fixture(scope="module")
def binary_api(aws, local_cloud, api):
    """The same function behind an API whose binary media types are ``image/png`` and ``application/octet-stream``."""
    apigw = aws("apigateway")
    binary = create_api(apigw, local_cloud.endpoint_url, "prod", ["image/png", "application/octet-stream"])
    add_method(apigw, binary, "images", "GET", lambda_proxy_integration(api.function))
    add_method(apigw, binary, "ingest", "POST", lambda_proxy_integration(api.function))
    deploy(apigw, binary)
    return binary


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


def test_base64_bodies_are_decoded_only_where_binary_media_types_say_so(api, binary_api):
    png = bytes([137, 80, 78, 71, 0, 255])
    # no binary media types: the function's base64 text is the body, as on AWS
    status, headers, body = http("GET", api.url("/images?mode=binary"), headers={"Accept": "image/png"})
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert body == base64.b64encode(png)
    # binary media types matching the request's first Accept type: decoded
    status, _, body = http("GET", binary_api.url("/images?mode=binary"), headers={"Accept": "image/png, */*"})
    assert (status, body) == (200, png)
    # an Accept that does not match: still the base64 text
    status, _, body = http("GET", binary_api.url("/images?mode=binary"), headers={"Accept": "text/html, image/png"})
    assert (status, body) == (200, base64.b64encode(png))


def test_binary_request_bodies_are_base64_only_for_binary_media_types(api, binary_api):
    raw = b"\xff\xfe\x00raw"
    status, _, body = http("POST", binary_api.url("/ingest"), raw, headers={"Content-Type": "application/octet-stream"})
    event = json.loads(body)
    assert status == 201 and event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw
    status, _, body = http("POST", api.url("/ingest"), b"plain text", headers={"x-api-key": api.key})
    event = json.loads(body)
    assert event["isBase64Encoded"] is False and event["body"] == "plain text"


@pytest.mark.parametrize("mode", ["unknown-key", "multi-not-list"])
def test_proxy_response_validated_as_aws_does(api, mode):
    status, _, body = http("GET", api.url(f"/images?mode={mode}"))
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_proxy_response_without_status_code_is_200_with_empty_body(api):
    status, headers, body = http("GET", api.url("/images?mode=no-status"))
    assert (status, body, headers["X-Probe"]) == (200, b"", "yes")


def test_headers_and_multi_value_headers_of_one_name_are_joined(api):
    status, headers, body = http("GET", api.url("/images?mode=joined"))
    assert (status, body) == (200, b"ok")
    assert sorted(headers.get_all("X-Multi")) == ["a", "b", "c"]
    assert headers.get_all("X-Same") == ["s"]


@pytest.mark.parametrize("mode", ["raise", "malformed"])
def test_function_error_or_malformed_response_is_502(api, mode):
    status, _, body = http("GET", api.url(f"/images?mode={mode}"))
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_api_key_still_required_on_proxy_methods(api):
    assert http("POST", api.url("/ingest"), {"a": 1})[0] == 403
