"""Workflow 2 aggregate, update and mark_failed (DynamoDB through moto in-process)."""

from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest
from lambda_modules import REGION, add_paths, aws_calls_lines, load_handler, make_stack
from moto import mock_aws

add_paths("aggregate", "update", "mark_failed")
import swl_errors  # noqa: E402
from aggregate import aggregate, consensus  # noqa: E402
from mark_failed import mark_failed  # noqa: E402
from swl_errors import error_message  # noqa: E402
from update import update  # noqa: E402

pytestmark = pytest.mark.unit
TABLE = "swlab-test-images"


def model(name, labels, weights="untrained", ms=10.0):
    top5 = [{"label": label, "index": i, "probability": p} for i, (label, p) in enumerate(labels)]
    return {"image_id": "img1", "model": name, "ok": True, "weights": weights, "top5": top5, "inference_ms": ms}


def failure(name, error="ModelFailure", message="boom"):
    cause = json.dumps({"errorMessage": message, "errorType": error, "stackTrace": []})
    return {"model": name, "ok": False, "error": error, "cause": cause}


A = model("alexnet", [("tabby", 0.5), ("tiger cat", 0.3), ("lynx", 0.1)])
R = model("resnet", [("tiger cat", 0.45), ("tabby", 0.35), ("Egyptian cat", 0.1)])
M = model("mobilenet", [("tabby", 0.2), ("lynx", 0.19), ("tiger cat", 0.18)])


def test_consensus_is_highest_summed_probability():
    c = consensus([A, R, M])
    assert c["label"] == "tabby" and c["votes"] == 2 and c["score"] == pytest.approx((0.5 + 0.35 + 0.2) / 3, abs=1e-6)
    # One top-1 vote each; the summed probability decides: tabby 0.75, tiger cat 0.4.
    assert (
        consensus([model("a", [("tiger cat", 0.4), ("tabby", 0.35)]), model("b", [("tabby", 0.4)])])["label"] == "tabby"
    )


def test_consensus_ties_go_to_votes_then_name():
    tie = [model("a", [("b-label", 0.5), ("a-label", 0.5)]), model("b", [("c-label", 0.5), ("a-label", 0.5)])]
    assert consensus(tie)["label"] == "a-label"  # a-label sums 1.0, the others 0.5


def test_aggregate_lists_contributing_and_failed_models():
    out = aggregate({"image_id": "img1", "models": [A, failure("resnet", message="forced failure"), M]})
    assert out["contributing"] == ["alexnet", "mobilenet"]
    assert out["failed"] == [{"model": "resnet", "error": "ModelFailure", "message": "forced failure"}]
    assert set(out["labels"]) == {"alexnet", "mobilenet"} and out["weights"] == "untrained"
    assert out["consensus"]["label"] == "tabby" and out["inference_ms"] == {"alexnet": 10.0, "mobilenet": 10.0}


def test_aggregate_weights_flag_reports_mixed_sources():
    assert (
        aggregate({"image_id": "img1", "models": [A, model("resnet", [("x", 1.0)], weights="imagenet")]})["weights"]
        == "mixed"
    )


def test_aggregate_fails_when_no_model_answered():
    with pytest.raises(swl_errors.NoModelSucceeded, match="alexnet: ModelFailure"):
        aggregate({"image_id": "img1", "models": [failure("alexnet"), failure("resnet", "States.Timeout")]})
    with pytest.raises(swl_errors.InvalidInput):
        aggregate({"image_id": "img1", "models": []})


def test_error_message_reads_lambda_payloads_and_plain_text():
    assert error_message(json.dumps({"errorMessage": "bad", "errorType": "X"})) == "bad"
    assert error_message("Task timed out") == "Task timed out"
    assert len(error_message("x" * 5000)) == 1000


@pytest.fixture
def ddb(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3, client = boto3.client("s3", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        make_stack(s3, client, table=TABLE)
        client.put_item(
            TableName=TABLE, Item={"image_id": {"S": "img1"}, "status": {"S": "INGESTED"}, "width": {"N": "10"}}
        )
        yield client


def item(ddb, image_id="img1"):
    from boto3.dynamodb.types import TypeDeserializer

    raw = ddb.get_item(TableName=TABLE, Key={"image_id": {"S": image_id}}).get("Item")
    return None if raw is None else {k: TypeDeserializer().deserialize(v) for k, v in raw.items()}


def test_update_records_classification(ddb):
    result = aggregate({"image_id": "img1", "models": [A, R, failure("mobilenet")]})
    out = update(
        {"image_id": "img1", "result": result, "timings_ms": {"fetch_image": 12.5, "resize": 3.25}}, ddb, TABLE
    )
    stored = item(ddb)
    assert stored["status"] == "CLASSIFIED" and out["status"] == "CLASSIFIED"
    assert stored["consensus"]["label"] == out["consensus"]["label"] == "tabby"
    assert stored["models_contributing"] == ["alexnet", "resnet"] and stored["models_failed"][0]["model"] == "mobilenet"
    assert stored["labels"]["resnet"][0] == {"label": "tiger cat", "index": 0, "probability": Decimal("0.45")}
    assert stored["timings_ms"] == {
        "fetch_image": Decimal("12.5"),
        "resize": Decimal("3.25"),
        "inference_alexnet": Decimal("10"),
        "inference_resnet": Decimal("10"),
    }
    assert stored["width"] == 10 and stored["weights"] == "untrained" and stored["classified_at"].endswith("Z")


def test_update_needs_an_existing_item_and_a_result(ddb):
    result = aggregate({"image_id": "img1", "models": [A]})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        update({"image_id": "ghost", "result": result}, ddb, TABLE)
    assert item(ddb, "ghost") is None
    with pytest.raises(swl_errors.InvalidInput):
        update({"image_id": "img1", "result": {}}, ddb, TABLE)


def test_mark_failed_records_error_and_cause(ddb):
    caught = {
        "Error": "ImageObjectMissing",
        "Cause": json.dumps({"errorMessage": "s3://b/k does not exist", "errorType": "ImageObjectMissing"}),
    }
    out = mark_failed({"image_id": "img1", "error": caught}, ddb, TABLE)
    stored = item(ddb)
    assert (stored["status"], stored["error"], stored["error_cause"]) == (
        "FAILED",
        "ImageObjectMissing",
        "s3://b/k does not exist",
    )
    assert out == {
        "image_id": "img1",
        "status": "FAILED",
        "error": "ImageObjectMissing",
        "cause": "s3://b/k does not exist",
    }
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        mark_failed({"image_id": "ghost", "error": caught}, ddb, TABLE)


def test_handlers_read_the_table_from_env(ddb, monkeypatch, capsys):
    monkeypatch.setenv("TABLE", TABLE)
    result = load_handler("aggregate").handler({"image_id": "img1", "models": [A, R, M]}, None)
    load_handler("update").handler({"image_id": "img1", "result": result, "timings_ms": {}}, None)
    assert item(ddb)["status"] == "CLASSIFIED"
    load_handler("mark_failed").handler({"image_id": "img1", "error": {"Error": "States.Timeout", "Cause": ""}}, None)
    assert item(ddb)["status"] == "FAILED" and item(ddb)["error"] == "States.Timeout"
    lines = aws_calls_lines(capsys.readouterr().out)  # aggregate calls nothing: two lines, update and mark_failed
    assert [line["calls"] for line in lines] == [{"dynamodb:UpdateItem": 1}] * 2
    # the units DynamoDB reported (asked for with ReturnConsumedCapacity; their size rules: test_moto_patches)
    assert all(list(line["capacity_units"]) == ["dynamodb:UpdateItem"] for line in lines), lines
    assert all(line["capacity_units"]["dynamodb:UpdateItem"] > 0 for line in lines), lines


def test_a_failed_call_is_counted_too(ddb, monkeypatch, capsys):
    """DynamoDB bills a failed conditional write, so the call is reported even though the handler raised."""
    monkeypatch.setenv("TABLE", TABLE)
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        load_handler("mark_failed").handler({"image_id": "ghost", "error": {"Error": "States.Timeout"}}, None)
    (line,) = aws_calls_lines(capsys.readouterr().out)
    assert line["calls"] == {"dynamodb:UpdateItem": 1}
