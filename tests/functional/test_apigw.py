"""API Gateway REST data plane: routing, API keys, usage-plan throttle and quota,
MOCK integrations and the Step Functions AWS integrations (StartSyncExecution,
StartExecution) over HTTP. Lambda proxy integration: test_apigw_lambda.py."""

from __future__ import annotations

import json

import pytest
from apigw_helpers import add_key, add_method, create_api, deploy, http, mock_integration
from sfn_helpers import chain, create_state_machine, wait_execution

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def apigw(aws):
    return aws("apigateway")


@pytest.fixture(scope="module")
def sfn(aws):
    return aws("stepfunctions")


def sfn_integration(action: str, state_machine_arn: str) -> dict:
    template = f'{{"input": "$util.escapeJavaScript($input.json(\'$\'))", "stateMachineArn": "{state_machine_arn}"}}'
    return {
        "type": "AWS",
        "integrationHttpMethod": "POST",
        "uri": f"arn:aws:apigateway:us-east-1:states:action/{action}",
        "requestTemplates": {"application/json": template},
    }


def test_mock_integration_routes_and_answers(apigw, local_cloud):
    api = create_api(apigw, local_cloud.endpoint_url)
    integration, responses = mock_integration(200, '{"hello": "$context.stage"}')
    add_method(apigw, api, "hello", "GET", integration, integration_responses=responses)
    deploy(apigw, api)
    status, headers, body = http("GET", api.url("/hello"))
    assert status == 200 and json.loads(body) == {"hello": "test"}
    assert headers.get("x-amzn-RequestId")


def test_unknown_routes_answer_like_aws(apigw, local_cloud):
    api = create_api(apigw, local_cloud.endpoint_url)
    integration, responses = mock_integration()
    add_method(apigw, api, "hello", "GET", integration, integration_responses=responses)
    deploy(apigw, api)
    assert http("GET", api.url("/nope"))[0] == 403
    assert json.loads(http("GET", api.url("/nope"))[2]) == {"message": "Missing Authentication Token"}
    assert http("POST", api.url("/hello"))[0] == 403  # method not defined
    wrong_stage = api.url("/hello").replace(f"/{api.stage}/", "/nostage/")
    assert http("GET", wrong_stage)[:1] == (403,) and json.loads(http("GET", wrong_stage)[2]) == {
        "message": "Forbidden"
    }
    assert http("GET", f"{local_cloud.endpoint_url}/restapis/nosuchapi/test/_user_request_/hello")[0] == 404


def test_path_parameters_and_greedy_proxy_resources(apigw, local_cloud):
    api = create_api(apigw, local_cloud.endpoint_url)
    integration, responses = mock_integration(200, '{"id": "$input.params(\'id\')"}')
    items = add_method(apigw, api, "items", "GET", *mock_integration(200, '{"list": true}'))
    add_method(apigw, api, "{id}", "GET", integration, parent_id=items, integration_responses=responses)
    add_method(apigw, api, "{proxy+}", "GET", *mock_integration(200, '{"proxy": true}'))
    deploy(apigw, api)
    assert json.loads(http("GET", api.url("/items"))[2]) == {"list": True}
    assert json.loads(http("GET", api.url("/items/abc"))[2]) == {"id": "abc"}
    assert json.loads(http("GET", api.url("/other/deep/path"))[2]) == {"proxy": True}


def test_api_key_required_is_enforced(apigw, local_cloud):
    api = create_api(apigw, local_cloud.endpoint_url)
    add_method(apigw, api, "secret", "GET", *mock_integration(), api_key_required=True)
    deploy(apigw, api)
    good = add_key(apigw, api)
    disabled = add_key(apigw, api, enabled=False)
    stray = apigw.create_api_key(name="not-in-a-plan", enabled=True)["value"]
    forbidden = (403, {"message": "Forbidden"})
    for headers in ({}, {"x-api-key": "wrong"}, {"x-api-key": disabled}, {"x-api-key": stray}):
        status, _, body = http("GET", api.url("/secret"), headers=headers)
        assert (status, json.loads(body)) == forbidden, headers
    assert http("GET", api.url("/secret"), headers={"x-api-key": good})[0] == 200


def test_usage_plan_throttle_answers_429(apigw, local_cloud):
    """Burst of 3, then one request per 20 s: the 4th..8th back-to-back requests are throttled
    (refill at the rate is checked with a fake clock in tests/unit/test_apigw_dataplane.py)."""
    api = create_api(apigw, local_cloud.endpoint_url)
    add_method(apigw, api, "t", "GET", *mock_integration(), api_key_required=True)
    deploy(apigw, api)
    key = add_key(apigw, api, throttle={"rateLimit": 0.05, "burstLimit": 3})
    results = [http("GET", api.url("/t"), headers={"x-api-key": key}) for _ in range(8)]
    assert [r[0] for r in results][:3] == [200, 200, 200]
    throttled = [r for r in results[3:] if r[0] == 429]
    assert len(throttled) >= 4
    assert json.loads(throttled[0][2]) == {"message": "Too Many Requests"}
    other_key = add_key(apigw, api, throttle={"rateLimit": 0.05, "burstLimit": 3})
    assert http("GET", api.url("/t"), headers={"x-api-key": other_key})[0] == 200  # buckets are per key


def test_usage_plan_quota_answers_limit_exceeded(apigw, local_cloud):
    api = create_api(apigw, local_cloud.endpoint_url)
    add_method(apigw, api, "q", "GET", *mock_integration(), api_key_required=True)
    deploy(apigw, api)
    key = add_key(apigw, api, quota={"limit": 2, "period": "DAY"})
    results = [http("GET", api.url("/q"), headers={"x-api-key": key}) for _ in range(3)]
    assert [r[0] for r in results] == [200, 200, 429]
    assert json.loads(results[2][2]) == {"message": "Limit Exceeded"}


def test_route_table_follows_configuration_changes(apigw, local_cloud):
    api = create_api(apigw, local_cloud.endpoint_url)
    add_method(apigw, api, "a", "GET", *mock_integration())
    deploy(apigw, api)
    assert http("GET", api.url("/a"))[0] == 200
    assert http("GET", api.url("/b"))[0] == 403
    add_method(apigw, api, "b", "GET", *mock_integration(201, '{"b": 1}'))
    assert http("GET", api.url("/b"))[0] == 201


def test_unsupported_template_fails_with_500(apigw, local_cloud):
    api = create_api(apigw, local_cloud.endpoint_url)
    integration = {"type": "MOCK", "requestTemplates": {"application/json": '#set($x = 1)\n{"statusCode": 200}'}}
    add_method(apigw, api, "vtl", "GET", integration)
    deploy(apigw, api)
    status, _, body = http("GET", api.url("/vtl"))
    assert (status, json.loads(body)) == (500, {"message": "Internal server error"})


# -- Step Functions integrations --------------------------------------------------------


def test_start_sync_execution_integration_returns_the_result(apigw, sfn, local_cloud):
    arn = create_state_machine(
        sfn,
        {
            "StartAt": "P",
            "States": {
                "P": {"Type": "Pass", "Parameters": {"image_id.$": "$.image_id", "labels": ["cat"]}, "End": True}
            },
        },
        sm_type="EXPRESS",
    )
    api = create_api(apigw, local_cloud.endpoint_url)
    add_method(apigw, api, "classify", "POST", sfn_integration("StartSyncExecution", arn), api_key_required=True)
    deploy(apigw, api)
    key = add_key(apigw, api)
    status, _, body = http("POST", api.url("/classify"), {"image_id": 'img "1"'}, headers={"x-api-key": key})
    assert status == 200, body
    result = json.loads(body)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"image_id": 'img "1"', "labels": ["cat"]}
    assert isinstance(result["startDate"], (int, float))  # JSON protocol: epoch seconds
    assert http("POST", api.url("/classify"), {"image_id": "x"})[0] == 403  # no key
    # AWS's escapeJavaScript turns ' into \' (not valid JSON): the execution does not start.
    status, _, body = http("POST", api.url("/classify"), {"image_id": "it's"}, headers={"x-api-key": key})
    assert status == 400 and json.loads(body)["__type"] == "SerializationException"


def test_start_execution_integration_supplies_unique_names(apigw, sfn, local_cloud):
    arn = create_state_machine(sfn, chain(2, {"Type": "Pass"}))
    api = create_api(apigw, local_cloud.endpoint_url)
    add_method(apigw, api, "classify", "POST", sfn_integration("StartExecution", arn))
    deploy(apigw, api)
    arns = []
    for i in range(3):
        status, _, body = http("POST", api.url("/classify"), {"image_id": f"img-{i}"})
        assert status == 200, body
        arns.append(json.loads(body)["executionArn"])
    assert len(set(arns)) == 3
    descs = [wait_execution(sfn, a) for a in arns]
    assert [json.loads(d["input"]) for d in descs] == [{"image_id": f"img-{i}"} for i in range(3)]
    assert all(d["status"] == "SUCCEEDED" for d in descs)


def test_service_error_selects_the_matching_integration_response(apigw, local_cloud):
    api = create_api(apigw, local_cloud.endpoint_url)
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:does-not-exist"
    responses = [
        {"statusCode": "200", "selectionPattern": ""},
        {
            "statusCode": "400",
            "selectionPattern": "4\\d{2}",
            "responseTemplates": {"application/json": '{"error": "$input.path(\'$.__type\')"}'},
        },
    ]
    add_method(
        apigw, api, "classify", "POST", sfn_integration("StartExecution", missing), integration_responses=responses
    )
    deploy(apigw, api)
    status, _, body = http("POST", api.url("/classify"), {"image_id": "x"})
    assert status == 400
    assert "StateMachineDoesNotExist" in json.loads(body)["error"]
