"""Pure parts of the API Gateway data plane: mapping-template subset, JSONPath,
route matching and the usage-plan limiter (fake clock)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from swlab.localcloud.apigw_request import RouteTable
from swlab.localcloud.apigw_usage import UsageLimiter
from swlab.localcloud.apigw_vtl import TemplateError, TemplateInput, escape_javascript, json_path, render
from swlab.provision.api import SYNC_RESPONSE_TEMPLATE

pytestmark = pytest.mark.unit

SFN_TEMPLATE = '{"input": "$util.escapeJavaScript($input.json(\'$\'))", "stateMachineArn": "arn:sm"}'


def test_step_functions_template_renders_valid_json_input():
    body = json.dumps({"image_id": 'a"b', "n": [1, 2], "s": "line\nbreak"})
    rendered = json.loads(render(SFN_TEMPLATE, TemplateInput(body=body)))
    assert rendered["stateMachineArn"] == "arn:sm"
    assert json.loads(rendered["input"]) == json.loads(body)


def test_escape_javascript_escapes_single_quotes_like_aws():
    assert escape_javascript('it\'s "x"\n') == 'it\\\'s \\"x\\"\\n'


@pytest.mark.parametrize(
    "path,expected",
    [
        ("$", {"a": {"b": [10, 20]}}),
        ("$.a.b", [10, 20]),
        ("$.a.b[1]", 20),
        ("$['a']['b'][0]", 10),
        ("$.missing", None),
        ("$.a.b[5]", None),
    ],
)
def test_json_path_subset(path, expected):
    assert json_path({"a": {"b": [10, 20]}}, path) == expected


def test_input_path_params_context_and_stage_variables():
    data = TemplateInput(
        body='{"id": "i-1", "n": 3}',
        path_params={"p": "pv"},
        query_params={"q": "qv"},
        headers={"X-Head": "hv"},
        context={"requestId": "r-1", "identity": {"sourceIp": "1.2.3.4"}},
        stage_variables={"color": "blue"},
    )
    template = (
        "$input.path('$.id') $input.path('$.n') $input.json('$.id') $input.params('p') "
        "$input.params('q') $input.params('x-head') $context.requestId $context.identity.sourceIp "
        "$stageVariables.color $input.body costs $5"
    )
    assert render(template, data) == ('i-1 3 "i-1" pv qv hv r-1 1.2.3.4 blue {"id": "i-1", "n": 3} costs $5')


@pytest.mark.parametrize(
    "template",
    [
        "#set($a = 1)\n{}",
        "#if($x)\n#end",
        "${context.requestId}",
        "$util.urlEncode('x')",
        "$context.nothing",
        "$foo.bar",
    ],
)
def test_unsupported_constructs_raise(template):
    with pytest.raises(TemplateError):
        render(template, TemplateInput(body="{}", context={"requestId": "r"}))


def test_route_table_prefers_literals_then_variables_then_greedy():
    table = RouteTable(
        [
            ("/", "root"),
            ("/items", "items"),
            ("/items/{id}", "item"),
            ("/items/special", "special"),
            ("/{proxy+}", "proxy"),
        ]
    )
    assert table.find("/") == ("root", {})
    assert table.find("/items") == ("items", {})
    assert table.find("/items/special") == ("special", {})
    assert table.find("/items/42") == ("item", {"id": "42"})
    assert table.find("/a/b/c") == ("proxy", {"proxy": "a/b/c"})
    assert RouteTable([("/items", "items")]).find("/other") is None


def test_token_bucket_allows_burst_then_refills_at_rate():
    now = [100.0]
    limiter = UsageLimiter(clock=lambda: now[0])
    throttle = {"rateLimit": 2.0, "burstLimit": 3}
    assert [limiter.admit("p", "k", throttle, {}) for _ in range(4)] == [None, None, None, "Too Many Requests"]
    now[0] += 0.5  # one token at 2/s
    assert limiter.admit("p", "k", throttle, {}) is None
    assert limiter.admit("p", "k", throttle, {}) == "Too Many Requests"
    assert limiter.admit("p", "other-key", throttle, {}) is None  # buckets are per key


def test_quota_per_period():
    day = [datetime(2026, 1, 1, 23, 0, tzinfo=timezone.utc)]
    limiter = UsageLimiter(now=lambda: day[0])
    quota = {"limit": 2, "period": "DAY"}
    assert [limiter.admit("p", "k", {}, quota) for _ in range(3)] == [None, None, "Limit Exceeded"]
    day[0] = datetime(2026, 1, 2, 0, 1, tzinfo=timezone.utc)
    assert limiter.admit("p", "k", {}, quota) is None


def test_request_validation_errors_read_like_aws_and_never_echo_a_huge_value():
    from swlab.localcloud.apigw_gateway import schema_errors
    from swlab.provision.api_models import CLASSIFY_SCHEMA

    assert schema_errors(CLASSIFY_SCHEMA, {"image_id": "0" * 32, "options": {"flip": "vertical"}}) is None
    assert "allowed: [object]" in schema_errors(CLASSIFY_SCHEMA, [1])
    assert "missing required properties ([image_id])" in schema_errors(CLASSIFY_SCHEMA, {})
    huge = schema_errors(CLASSIFY_SCHEMA, {"image_id": "x" * 7_000_000})
    assert huge.startswith("[/image_id: ECMA 262 regex") and len(huge) < 200 and '"' not in huge


def test_gateway_responses_use_the_apis_template_or_aws_default():
    from types import SimpleNamespace

    from swlab.localcloud.apigw_gateway import gateway_response

    bare = SimpleNamespace(gateway_responses={})
    assert gateway_response(bare, "REQUEST_TOO_LARGE", {}) == (413, b'{"message":"Request Too Long"}')
    template = '{"message": $context.error.messageString, "reason": "$context.error.validationErrorString"}'
    custom = SimpleNamespace(
        gateway_responses={
            "BAD_REQUEST_BODY": SimpleNamespace(status_code="400", response_templates={"application/json": template})
        }
    )
    status, body = gateway_response(custom, "BAD_REQUEST_BODY", {}, "[bad]")
    assert status == 400 and json.loads(body) == {"message": "Invalid request body", "reason": "[bad]"}


@pytest.mark.parametrize(
    "execution, status, body",
    [
        ({"status": "SUCCEEDED", "output": '{"status": "CLASSIFIED"}'}, None, {"status": "CLASSIFIED"}),
        ({"status": "FAILED", "error": "ImageNotFound", "cause": "it's gone"}, 404, {"error": "ImageNotFound"}),
        ({"status": "FAILED", "error": "InvalidInput", "cause": "bad"}, 400, {"error": "InvalidInput"}),
        ({"status": "FAILED", "error": "NoModelSucceeded", "cause": "x"}, 500, {"error": "NoModelSucceeded"}),
        ({"status": "TIMED_OUT"}, 500, {"error": None}),
    ],
)
def test_the_sync_classify_response_template_maps_a_failed_execution_to_an_error_status(execution, status, body):
    data = TemplateInput(body=json.dumps({"executionArn": "arn:x", **execution}))
    out = json.loads(render(SYNC_RESPONSE_TEMPLATE, data))  # valid JSON in every branch
    assert data.response_override.get("status") == status
    assert {k: out.get(k) for k in body} == body


def test_vtl_directives_outside_the_subset_are_refused():
    for template in ("#set($x = 1)", "#if($input.path('$.a') == \"b\")x", "#end", "#foreach($a in $b)#end"):
        with pytest.raises(TemplateError):
            render(template, TemplateInput(body="{}"))
    assert render("#if($input.path('$.a'))yes#{else}no#end", TemplateInput(body='{"a": "1"}')) == "yes"
