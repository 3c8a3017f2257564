"""Both workflows end to end on the local cloud: drive the lab's real functions (the session's
deployed stack, tests/e2e/conftest.py) over HTTP with the API key, check DynamoDB and S3, tear
down, find nothing left.

Bad inputs are checked for a clear error and a consistent record. Addresses the
ingest function must refuse are loopback ones outside its allow-list (127.0.0.2,
other ports of 127.0.0.1): the guard is exercised without any traffic leaving
the machine, whatever it does.
"""

from __future__ import annotations

import json

import pytest
from e2e_helpers import item, keys, post

from swlab.provision import deploy as deploy_mod
from swlab.provision.context import Clients
from swlab.provision.naming import Names
from swlab.provision.teardown import remaining, teardown

pytestmark = [pytest.mark.e2e, pytest.mark.models]


def test_ingest_stores_each_image_and_its_metadata(aws, stack, ingested):
    assert len(set(ingested.values())) == 5
    for image_id in ingested.values():
        record = item(aws, stack, image_id)
        # INGESTED, or CLASSIFIED where another e2e module of the session classified it already
        assert record["status"]["S"] in ("INGESTED", "CLASSIFIED"), record
        assert record["key"]["S"] in keys(aws, stack, "raw/") and record["sha256"]["S"] and record["width"]["N"]


def test_classify_records_labels_and_writes_processed_images(aws, stack, ingested, warm):
    for image_id in ingested.values():
        status, body = post(stack.api["endpoints"]["classify"], {"image_id": image_id}, stack.api["api_key"])
        # /classify answers the execution's output object itself (a failure would be a non-2xx with the error)
        assert status == 200 and body["status"] == "CLASSIFIED" and body["image_id"] == image_id, body
        record = item(aws, stack, image_id)
        assert record["status"]["S"] == "CLASSIFIED", record
        assert record["consensus"] and record["labels"]
    processed = keys(aws, stack, "processed/")
    assert all(any(image_id in k for k in processed) for image_id in ingested.values()), processed


def aws_calls_of(aws, function_name: str) -> list[dict]:
    """The ``aws_calls`` records (swl_log) in a function's log group: what the cost model counts."""
    pages = (
        aws("logs")
        .get_paginator("filter_log_events")
        .paginate(logGroupName=f"/aws/lambda/{function_name}", filterPattern='"aws_calls"')
    )
    records = [json.loads(e["message"]) for page in pages for e in page["events"] if e["message"].startswith("{")]
    return [r for r in records if r.get("message") == "aws_calls"]


def test_each_function_logs_the_aws_calls_it_made(aws, stack, ingested, warm):
    fn = {name: f["function_name"] for name, f in stack.functions.items()}
    ingest = aws_calls_of(aws, fn["ingest"])
    assert len(ingest) >= len(ingested)
    for record in ingest:  # one object and one item (< 1 KB: one write unit) per accepted image
        assert record["calls"] == {"s3:PutObject": 1, "dynamodb:PutItem": 1}, record
        assert record["capacity_units"] == {"dynamodb:PutItem": 1.0}, record
    for step in ("fetch_image", "grayscale", "flip", "rotate", "resize"):
        assert {"s3:GetObject": 1, "s3:PutObject": 1} in [r["calls"] for r in aws_calls_of(aws, fn[step])], step
    for model in ("alexnet", "resnet", "mobilenet"):
        assert all(r["calls"].get("s3:GetObject", 0) >= 1 for r in aws_calls_of(aws, fn[model])), model
    updates = aws_calls_of(aws, fn["update"])
    assert updates and all(r["calls"] == {"dynamodb:UpdateItem": 1} for r in updates), updates
    assert all(r["capacity_units"]["dynamodb:UpdateItem"] >= 1.0 for r in updates), updates  # AWS's minimum
    assert aws_calls_of(aws, fn["aggregate"]) == []  # it calls nothing


@pytest.mark.parametrize(
    "url_of, reason",
    [
        (lambda srv: "file:///etc/passwd", "bad_scheme"),
        (lambda srv: "ftp://127.0.0.1/x.jpg", "bad_scheme"),
        (lambda srv: "http://127.0.0.2:9/x.jpg", "forbidden_address"),
        (lambda srv: f"http://127.0.0.1:{srv.port + 1}/x.jpg", "forbidden_address"),
        (lambda srv: srv.url("/redirect?to=http://127.0.0.2:9/x.jpg"), "forbidden_address"),
        (lambda srv: srv.url("/bad/not-image"), "not_an_image"),
        (lambda srv: srv.url("/bad/oversized?bytes=20000000"), "too_large"),
        (lambda srv: srv.url("/bad/oversized?bytes=20000000&declare=0"), "too_large"),
        (lambda srv: srv.url("/bad/bomb"), "too_many_pixels"),
        (lambda srv: srv.url("/status/503"), "upstream_status"),
    ],
    ids=[
        "file",
        "ftp",
        "loopback-other-host",
        "loopback-other-port",
        "redirect-to-refused",
        "not-image",
        "oversized",
        "oversized-chunked",
        "bomb",
        "upstream-503",
    ],
)
def test_bad_inputs_get_a_clear_error_and_write_nothing(aws, stack, images, url_of, reason):
    before = (aws("dynamodb").scan(TableName=stack.table, Select="COUNT")["Count"], len(keys(aws, stack, "raw/")))
    status, body = post(stack.api["endpoints"]["ingest"], {"image_url": url_of(images)}, stack.api["api_key"])
    assert 400 <= status < 600 and body["error"] == reason, (status, body)
    after = (aws("dynamodb").scan(TableName=stack.table, Select="COUNT")["Count"], len(keys(aws, stack, "raw/")))
    assert after == before


def test_truncated_jpeg_is_refused(stack, images):
    status, body = post(
        stack.api["endpoints"]["ingest"], {"image_url": images.url("/bad/truncated")}, stack.api["api_key"]
    )
    assert status == 400 and body["error"], body


def test_requests_without_the_key_are_forbidden(stack, images):
    assert post(stack.api["endpoints"]["ingest"], {"image_url": images.sample_urls()[0]}, None)[0] == 403
    assert post(stack.api["endpoints"]["classify"], {"image_id": "x"}, None)[0] == 403


def test_unknown_image_id_fails_clearly(stack):
    unknown = "0" * 32  # well formed (a malformed id is refused with 400: tests/functional/test_http_bad_inputs.py)
    status, body = post(stack.api["endpoints"]["classify"], {"image_id": unknown}, stack.api["api_key"])
    assert status == 404 and body["status"] == "FAILED" and body.get("error") == "ImageNotFound", body


def test_a_failing_model_leaves_the_image_classified_by_the_other_two(aws, settings, options, stack, ingested, warm):
    changed = deploy_mod.deploy(
        settings, options, progress=lambda line: None, extra_environment={"alexnet": {"FAIL_MODEL": "1"}}
    )
    try:
        assert [c.name for c in changed.report.changes if c.action != "unchanged"] == [f"{stack.stack}-alexnet"]
        image_id = next(iter(ingested.values()))
        status, body = post(stack.api["endpoints"]["classify"], {"image_id": image_id}, stack.api["api_key"])
        assert status == 200 and body["status"] == "CLASSIFIED", body
        record = item(aws, stack, image_id)
        assert record["status"]["S"] == "CLASSIFIED"
        assert "alexnet" in json.dumps(record["models_failed"]) and "resnet" in json.dumps(
            record["models_contributing"]
        )
    finally:  # the stack is shared by the e2e session: put alexnet back
        deploy_mod.deploy(settings, options, progress=lambda line: None)


def test_teardown_leaves_nothing(aws, settings, stack):
    report = teardown(settings, progress=lambda line: None)
    assert report.clean and report.deleted
    names = Names(stack.stack, stack.account_id, settings.region)
    assert remaining(Clients(settings, aws), names, settings) == []
