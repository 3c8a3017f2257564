"""Bad input at the HTTP layer, on the lab's real stack: a clear 4xx with a reason, nothing stored, nothing started.

The lab's real functions are deployed once (stack ``fxhttp``) on the local cloud. Each case posts a raw
body to ``/ingest`` or ``/classify`` and checks its status, the reason in the answer, and that no S3
object, no DynamoDB item and no Step Functions execution appeared. The function-level corpus (URLs,
images) is tests/unit/test_lambdas_bad_inputs.py; this is the API Gateway layer in front of it: the
classify request model and validator, the 10 MB limit, Lambda's 6 MB payload limit.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from swlab.provision import deploy as deploy_mod
from swlab.provision.teardown import teardown
from swlab.samples import ImageServer

pytestmark = pytest.mark.functional

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
STACK = "fxhttp"
MB = 1024 * 1024
GOOD_ID = uuid.uuid4().hex  # well formed, never ingested


@pytest.fixture(scope="module")
def images():
    with ImageServer() as server:
        yield server


@pytest.fixture(scope="module")
def stack(lab_settings, images, tmp_path_factory):
    settings = lab_settings.with_(stack=STACK, runs_dir=tmp_path_factory.mktemp("runs"))
    options = deploy_mod.DeployOptions(
        lambdas_dir=LAMBDAS, placeholders={"AllowedHosts": images.allowed_host}, **deploy_mod.LOCAL_CLOUD_OPTIONS
    )
    outputs = deploy_mod.deploy(settings, options, progress=lambda line: None).outputs
    yield outputs
    teardown(settings, progress=lambda line: None)


def post_raw(url: str, body: bytes, key: str, content_type: str = "application/json") -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type, "x-api-key": key}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw or b"{}")
        except ValueError:
            return err.code, {"raw": raw.decode("utf-8", "replace")}


def footprint(aws, stack) -> tuple[int, int, int]:
    """(S3 objects, DynamoDB items, executions) of the stack."""
    objects = sum(
        len(page.get("Contents", []))
        for page in aws("s3").get_paginator("list_objects_v2").paginate(Bucket=stack.bucket)
    )
    items = aws("dynamodb").scan(TableName=stack.table, Select="COUNT")["Count"]
    executions = len(aws("stepfunctions").list_executions(stateMachineArn=stack.state_machine["arn"])["executions"])
    return objects, items, executions


CLASSIFY_CASES = [
    ("malformed JSON", b'{"image_id": ', 400, "Invalid JSON"),
    ("JSON array", json.dumps([{"image_id": GOOD_ID}]).encode(), 400, "array"),
    ("JSON string", b'"' + GOOD_ID.encode() + b'"', 400, "string"),
    ("JSON null", b"null", 400, "null"),
    ("empty body", b"", 400, ""),
    ("no image_id", b"{}", 400, "image_id"),
    ("image_id a number", b'{"image_id": 5}', 400, "image_id"),
    ("image_id not an id", b'{"image_id": "no-such-image"}', 400, "image_id"),
    ("image_id path traversal", b'{"image_id": "../../raw/x"}', 400, "image_id"),
    ("image_id upper case", json.dumps({"image_id": GOOD_ID.upper()}).encode(), 400, "image_id"),
    ("image_id too long", json.dumps({"image_id": GOOD_ID * 2}).encode(), 400, "image_id"),
    ("unknown field", json.dumps({"image_id": GOOD_ID, "admin": True}).encode(), 400, "admin"),
    ("options not an object", json.dumps({"image_id": GOOD_ID, "options": [1]}).encode(), 400, "options"),
    ("unknown flip", json.dumps({"image_id": GOOD_ID, "options": {"flip": "diagonal"}}).encode(), 400, "flip"),
    ("huge resize", json.dumps({"image_id": GOOD_ID, "options": {"resize_width": 10**6}}).encode(), 400, "resize"),
    ("7 MB body", json.dumps({"image_id": GOOD_ID, "pad": "x" * (7 * MB)}).encode(), 400, "pad"),
    ("7 MB image_id", json.dumps({"image_id": "a" * (7 * MB)}).encode(), 400, "image_id"),
    ("11 MB body", json.dumps({"image_id": GOOD_ID, "pad": "x" * (11 * MB)}).encode(), 413, "larger"),
]

INGEST_CASES = [
    ("malformed JSON", b'{"image_url": ', 400, "bad_json"),
    ("JSON array", b'["http://127.0.0.1/a.jpg"]', 400, ""),
    ("JSON null", b"null", 400, ""),
    ("empty body", b"", 400, ""),
    ("image_url a number", b'{"image_url": 5}', 400, ""),
    ("20 KB body", json.dumps({"image_url": "http://x/" + "a" * 20_000}).encode(), 413, "body_too_large"),
    ("7 MB body (over Lambda's 6 MB)", json.dumps({"image_url": "a" * (7 * MB)}).encode(), 413, "body_too_large"),
    (
        "11 MB body (over API Gateway's 10 MB)",
        json.dumps({"image_url": "a" * (11 * MB)}).encode(),
        413,
        "body_too_large",
    ),
]


@pytest.mark.parametrize("case,body,status,reason", CLASSIFY_CASES, ids=[c[0] for c in CLASSIFY_CASES])
def test_classify_refuses_bad_bodies_before_any_execution(aws, stack, case, body, status, reason):
    before = footprint(aws, stack)
    got, answer = post_raw(stack.api["endpoints"]["classify"], body, stack.api["api_key"])
    assert got == status, (case, got, answer)
    assert answer.get("error") in ("invalid_request_body", "body_too_large") and answer.get("message"), answer
    assert reason.lower() in json.dumps(answer).lower(), answer
    assert "Traceback" not in json.dumps(answer)
    assert footprint(aws, stack) == before


@pytest.mark.parametrize("case,body,status,error", INGEST_CASES, ids=[c[0] for c in INGEST_CASES])
def test_ingest_refuses_bad_bodies_and_stores_nothing(aws, stack, case, body, status, error):
    before = footprint(aws, stack)
    got, answer = post_raw(stack.api["endpoints"]["ingest"], body, stack.api["api_key"])
    assert got == status, (case, got, answer)
    assert answer.get("error") and answer.get("message"), answer
    assert not error or answer["error"] == error, answer
    assert "Traceback" not in json.dumps(answer)
    assert footprint(aws, stack) == before


def test_a_well_formed_unknown_id_still_reaches_the_workflow_and_fails_clearly(aws, stack):
    got, answer = post_raw(
        stack.api["endpoints"]["classify"], json.dumps({"image_id": GOOD_ID}).encode(), stack.api["api_key"]
    )
    # a failed classification is a non-2xx answer with the error (the sync API's contract, issue 12)
    assert got == 404 and answer["status"] == "FAILED" and answer.get("error") == "ImageNotFound", answer


def test_the_api_declares_its_validation_as_on_aws(aws, stack):
    apigw, api_id = aws("apigateway"), stack.api["id"]
    resource = next(r for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/classify")
    method = apigw.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod="POST")
    validator = apigw.get_request_validator(restApiId=api_id, requestValidatorId=method["requestValidatorId"])
    assert validator["validateRequestBody"] is True
    assert method["requestModels"] == {"application/json": "ClassifyRequest"}
    assert json.loads(apigw.get_model(restApiId=api_id, modelName="ClassifyRequest")["schema"])["required"] == [
        "image_id"
    ]


def test_the_reconciliation_accounts_for_a_real_ingest_and_finds_a_deleted_object(aws, stack, images):
    """What the collect stage does, on the real functions: items and raw objects agree; a loss is named."""
    import pandas as pd

    from swlab.analysis.inventory import collect_inventory
    from swlab.analysis.reconcile import reconcile

    body = json.dumps({"image_url": images.sample_urls()[0]}).encode()
    got, answer = post_raw(stack.api["endpoints"]["ingest"], body, stack.api["api_key"])
    assert got == 201, answer
    jtl = pd.DataFrame(
        [[stack.api["endpoints"]["ingest"], "ingest", "201", answer["image_id"], ""]],
        columns=["URL", "label", "responseCode", "sample_id", "row_value"],
    )
    listed = pd.DataFrame({"key": [answer["key"]]})
    items, raw = collect_inventory(aws("dynamodb"), aws("s3"), stack.table, stack.bucket, jtl, listed)
    assert raw.loc[0, "sha256"] == items.loc[0, "sha256"] == answer["sha256"]
    result = reconcile(jtl, items, raw, pd.DataFrame(columns=["execution_arn", "status", "image_id", "error"]))
    assert result.lost == 0 and result.lines()[0] == "Workflow 1 (ingest): 1 of 1 accounted for"
    aws("s3").delete_object(Bucket=stack.bucket, Key=answer["key"])
    items, raw = collect_inventory(aws("dynamodb"), aws("s3"), stack.table, stack.bucket, jtl, listed.iloc[:0])
    lost = reconcile(jtl, items, raw, pd.DataFrame(columns=["execution_arn", "status", "image_id", "error"]))
    assert lost.lost == 1 and "no object" in lost.exceptions.loc[0, "problem"]
    aws("dynamodb").delete_item(TableName=stack.table, Key={"image_id": {"S": answer["image_id"]}})
