"""The asynchronous classification API's function: POST /classifications and GET /images/{image_id}."""

from __future__ import annotations

import json

import boto3
import pytest
from lambda_modules import REGION, add_paths, make_stack
from moto import mock_aws

add_paths("classifications")
from classifications import Config, handle  # noqa: E402

pytestmark = pytest.mark.unit
BUCKET, TABLE = "swlab-test-bucket", "swlab-test-images"
CFG = Config(TABLE, f"arn:aws:states:{REGION}:123456789012:stateMachine:swlab-classify")


class States:
    def __init__(self, fail: bool = False) -> None:
        self.fail, self.started = fail, []

    def start_execution(self, **kwargs):
        if self.fail:
            raise RuntimeError("throttled")
        self.started.append(kwargs)
        return {"executionArn": f"{CFG.state_machine_arn.replace('stateMachine', 'execution')}:{kwargs['name']}"}


@pytest.fixture
def ddb(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3, client = boto3.client("s3", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        make_stack(s3, client, BUCKET, TABLE)
        client.put_item(TableName=TABLE, Item={"image_id": {"S": "img"}, "status": {"S": "CLASSIFIED"}})
        yield client


def post(body, states, ddb):
    event = {"httpMethod": "POST", "resource": "/classifications", "body": json.dumps(body)}
    out = handle(event, CFG, ddb, states)
    return out["statusCode"], json.loads(out["body"])


def get(image_id, ddb):
    event = {"httpMethod": "GET", "resource": "/images/{image_id}", "pathParameters": {"image_id": image_id}}
    out = handle(event, CFG, ddb, None)
    return out["statusCode"], json.loads(out["body"])


def test_submit_marks_the_item_starts_the_execution_and_answers_202(ddb):
    states = States()
    status, body = post({"image_id": "img", "options": {"flip": "vertical"}, "extra": 1}, states, ddb)
    assert status == 202 and body["status"] == "CLASSIFYING" and body["status_url"] == "images/img"
    (started,) = states.started
    assert started["name"] == body["execution_name"] and body["execution_arn"].endswith(started["name"])
    assert json.loads(started["input"]) == {"image_id": "img", "options": {"flip": "vertical"}}
    status, item = get("img", ddb)  # a previous CLASSIFIED no longer shows: this execution's status does
    assert status == 200 and (item["status"], item["execution_name"], item["terminal"]) == (
        "CLASSIFYING",
        started["name"],
        False,
    )


def test_unknown_images_and_bad_bodies_are_refused_without_starting(ddb):
    states = States()
    assert post({"image_id": "nope"}, states, ddb) == (
        404,
        {"error": "not_found", "message": "no image 'nope': ingest it first (POST /ingest)"},
    )
    for body, error in (([1], "bad_request"), ({}, "missing_image_id"), ({"image_id": 3}, "missing_image_id")):
        assert post(body, states, ddb)[1]["error"] == error
    assert (
        handle({"httpMethod": "POST", "resource": "/classifications", "body": "{"}, CFG, ddb, states)["statusCode"]
        == 400
    )
    assert get("nope", ddb)[0] == 404 and not states.started
    assert handle({"httpMethod": "DELETE", "resource": "/images/{image_id}"}, CFG, ddb, states)["statusCode"] == 405


def test_a_start_that_fails_restores_the_status_and_answers_500(ddb):
    status, body = post({"image_id": "img"}, States(fail=True), ddb)
    assert (status, body["error"]) == (500, "start_failed") and get("img", ddb)[1]["status"] == "CLASSIFIED"
