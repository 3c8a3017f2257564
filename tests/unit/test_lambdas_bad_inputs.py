"""A corpus of bad inputs to the functions: each gets its expected answer and leaves S3 and DynamoDB as they were.

Ingest answers an HTTP status and an ``error`` reason (API Gateway passes both
through); the Workflow 2 functions raise an error whose class name is what
Step Functions records (``InvalidInput``, ``InvalidImage``, ...). For every
case the bucket's keys and the table's items are compared before and after.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Any, Callable

import boto3
import pytest
from lambda_modules import REGION, FakeClassifier, add_paths, make_stack
from moto import mock_aws
from test_lambdas_images import png16_keyed

from swlab.samples import ImageServer, list_samples, png_bomb

add_paths(
    "ingest", "fetch_image", "grayscale", "flip", "rotate", "resize", "aggregate", "update", "mark_failed", "alexnet"
)
import ingest  # noqa: E402
import swl_infer  # noqa: E402
from aggregate import aggregate  # noqa: E402
from fetch_image import fetch_image  # noqa: E402
from flip import flip  # noqa: E402
from grayscale import grayscale  # noqa: E402
from mark_failed import mark_failed  # noqa: E402
from resize import resize  # noqa: E402
from rotate import rotate  # noqa: E402
from update import update  # noqa: E402
from urlguard import fetch  # noqa: E402

pytestmark = pytest.mark.unit
BUCKET, TABLE, HOST = "swlab-test-bucket", "swlab-test-images", "images.example"
SAMPLE = next(s for s in list_samples() if s.name == "chelsea")
JPEG = SAMPLE.path.read_bytes()
# Objects and items present before every case (inputs for the Workflow 2 functions).
SEEDED = {
    "raw/ok.jpg": JPEG,
    "raw/not-image.jpg": b"<html>not an image</html>",
    "raw/truncated.jpg": JPEG[: len(JPEG) // 2],
    "raw/bomb.png": png_bomb(),
    "raw/keyed16.png": png16_keyed(),
    "processed/known/original.png": JPEG,
}


def resolve(host, port):
    try:  # IP literals resolve to themselves, as with getaddrinfo
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    if host != HOST:
        raise socket.gaierror(f"unknown host {host}")
    return ["127.0.0.1"]


@pytest.fixture(scope="module")
def server():
    with ImageServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def stack(server):
    """One moto bucket and table for the module (each case compares them before and after itself)."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        s3, ddb = boto3.client("s3", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        make_stack(s3, ddb, BUCKET, TABLE)
        for key, body in SEEDED.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        ddb.put_item(TableName=TABLE, Item={"image_id": {"S": "known"}, "status": {"S": "INGESTED"}})
        yield Lab(s3, ddb, server)


@pytest.fixture
def lab(monkeypatch, stack):
    monkeypatch.setitem(swl_infer.RUNTIMES, "fake", FakeClassifier)
    monkeypatch.setattr(swl_infer, "_LOADED", {})
    return stack


@dataclass
class Lab:
    s3: Any
    ddb: Any
    server: ImageServer

    def url(self, path: str, host: str = HOST) -> str:
        return f"http://{host}:{self.server.port}/{path.lstrip('/')}"

    def stored(self) -> tuple[set, list]:
        keys = {o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
        return keys, sorted(json.dumps(i, sort_keys=True) for i in self.ddb.scan(TableName=TABLE)["Items"])


# --- ingest (POST /ingest, API Gateway proxy events) --------------------------


def post(body: str | bytes | None, base64_encoded: bool = False) -> dict:
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode()
    return {"httpMethod": "POST", "resource": "/ingest", "body": body, "isBase64Encoded": base64_encoded}


def image_url(url: str | Callable[[Lab], str]) -> Callable[[Lab], dict]:
    return lambda lab: post(json.dumps({"image_url": url(lab) if callable(url) else url}))


def redirect_to(target: Callable[[Lab], str]) -> Callable[[Lab], dict]:
    return image_url(lambda lab: lab.url(f"/redirect?to={target(lab)}"))


def run_ingest(lab: Lab, event: dict) -> tuple[int, str]:
    cfg = ingest.config_from_env({"BUCKET": BUCKET, "TABLE": TABLE, "ALLOWED_HOSTS": f"{HOST}:{lab.server.port}"})
    result = ingest.handle(event, cfg, lab.s3, lab.ddb, fetcher=lambda u, lim: fetch(u, lim, resolve))
    body = json.loads(result["body"])
    assert body.get("message"), body  # every refusal says why
    text = json.dumps(body)
    assert "s3cr3t" not in text  # a password in the URL is never echoed
    return result["statusCode"], body.get("error")


INGEST = {
    # body handling
    "malformed-json": (lambda lab: post("{not json"), 400, "bad_json"),
    "empty-body": (lambda lab: post(""), 400, "bad_json"),
    "no-body": (lambda lab: post(None), 400, "bad_json"),
    "json-array": (lambda lab: post('["http://images.example/x.jpg"]'), 400, "bad_request"),
    "json-string": (lambda lab: post('"http://images.example/x.jpg"'), 400, "bad_request"),
    "json-null": (lambda lab: post("null"), 400, "bad_request"),
    "deeply-nested-json": (lambda lab: post("[" * 5000 + "]" * 5000), 400, "bad_json"),
    "bad-base64": (lambda lab: post("%%% not base64 %%%", base64_encoded=True), 400, "bad_json"),
    "body-over-limit": (
        lambda lab: post(json.dumps({"image_url": "http://images.example/x", "pad": "x" * 7_000_000})),
        413,
        "body_too_large",
    ),
    "base64-body-over-limit": (
        lambda lab: post(json.dumps({"pad": "x" * 100_000}).encode(), base64_encoded=True),
        413,
        "body_too_large",
    ),
    "missing-image-url": (lambda lab: post("{}"), 400, "missing_image_url"),
    "image-url-not-a-string": (lambda lab: post('{"image_url": 42}'), 400, "missing_image_url"),
    # URLs
    "scheme-ftp": (image_url("ftp://images.example/x.jpg"), 400, "bad_scheme"),
    "scheme-file": (image_url("file:///etc/passwd"), 400, "bad_scheme"),
    "no-host": (image_url("http:///x.jpg"), 400, "bad_url"),
    "bad-port": (image_url("http://images.example:99999/x.jpg"), 400, "bad_url"),
    "malformed-ipv6": (image_url("http://[::1/x.jpg"), 400, "bad_url"),
    "control-character": (image_url(lambda lab: lab.url("/samples/chelsea.jpg\r\nX-Injected: 1")), 400, "bad_url"),
    "user-and-password": (
        image_url(lambda lab: lab.url("/samples/chelsea.jpg", f"user:s3cr3t@{HOST}")),
        400,
        "credentials_in_url",
    ),
    "user-only": (image_url(lambda lab: lab.url("/samples/chelsea.jpg", f"s3cr3t@{HOST}")), 400, "credentials_in_url"),
    "redirect-to-credentials": (
        redirect_to(lambda lab: lab.url("/samples/chelsea.jpg", f"u:s3cr3t@{HOST}")),
        400,
        "credentials_in_url",
    ),
    "loopback": (image_url(lambda lab: lab.url("/samples/chelsea.jpg", "127.0.0.1")), 400, "forbidden_address"),
    "ipv6-loopback": (image_url("http://[::1]/x.jpg"), 400, "forbidden_address"),
    "metadata-address": (image_url("http://169.254.169.254/latest/meta-data/"), 400, "forbidden_address"),
    "private-address": (image_url("http://10.0.0.1/x.jpg"), 400, "forbidden_address"),
    "redirect-to-metadata": (image_url(lambda lab: lab.url("/redirect/private")), 400, "forbidden_address"),
    "redirect-to-file": (redirect_to(lambda lab: "file:///etc/passwd"), 400, "bad_scheme"),
    # bodies the image server returns
    "not-an-image": (image_url(lambda lab: lab.url("/bad/not-image")), 400, "not_an_image"),
    "truncated-image": (image_url(lambda lab: lab.url("/bad/truncated")), 400, "truncated_image"),
    "png-bomb": (image_url(lambda lab: lab.url("/bad/bomb")), 400, "too_many_pixels"),
    "oversized": (image_url(lambda lab: lab.url("/bad/oversized?bytes=30000000")), 400, "too_large"),
    # upstream failures (not the client's fault: 502, still nothing stored)
    "upstream-404": (image_url(lambda lab: lab.url("/status/404")), 502, "upstream_status"),
    "redirect-loop": (image_url(lambda lab: lab.url("/redirect/loop")), 502, "too_many_redirects"),
    "unknown-host": (image_url("http://nowhere.example/x.jpg"), 502, "unreachable"),
}


@pytest.mark.parametrize("case", list(INGEST))
def test_ingest_refuses_bad_input_and_stores_nothing(lab, case):
    make_event, status, error = INGEST[case]
    before = lab.stored()
    assert run_ingest(lab, make_event(lab)) == (status, error)
    assert lab.stored() == before


def test_unconvertible_image_is_refused_by_ingest(lab, monkeypatch):
    from urlguard import Fetched

    before = lab.stored()
    cfg = ingest.config_from_env({"BUCKET": BUCKET, "TABLE": TABLE})
    result = ingest.handle(
        post(json.dumps({"image_url": "http://images.example/16bit.png"})),
        cfg,
        lab.s3,
        lab.ddb,
        fetcher=lambda u, lim: Fetched(u, png16_keyed(), "image/png", 0),
    )
    assert (result["statusCode"], json.loads(result["body"])["error"]) == (400, "unsupported_image")
    assert lab.stored() == before


# --- Workflow 2 functions (errors the state machine records) -------------------


def source(key: str, image_id: str = "img1", **extra) -> dict:
    return {"image_id": image_id, "source": {"bucket": BUCKET, "key": key}, **extra}


def step_event(key: str = "processed/known/original.png", image_id: str = "known", **options) -> dict:
    return {"image_id": image_id, "image": {"bucket": BUCKET, "key": key}, **({"options": options} if options else {})}


WORKFLOW = {
    "fetch-unknown-image": (lambda lab: fetch_image(source("raw/no-such-image.jpg"), lab.s3), "ImageObjectMissing"),
    "fetch-no-bucket": (
        lambda lab: fetch_image(
            {**source("raw/ok.jpg"), "source": {"bucket": "nope-bucket", "key": "raw/ok.jpg"}}, lab.s3
        ),
        "ImageObjectMissing",
    ),
    "fetch-checksum-mismatch": (
        lambda lab: fetch_image(source("raw/ok.jpg", sha256=hashlib.sha256(b"x").hexdigest()), lab.s3),
        "InvalidImage",
    ),
    "fetch-not-an-image": (lambda lab: fetch_image(source("raw/not-image.jpg"), lab.s3), "InvalidImage"),
    "fetch-truncated": (lambda lab: fetch_image(source("raw/truncated.jpg"), lab.s3), "InvalidImage"),
    "fetch-png-bomb": (lambda lab: fetch_image(source("raw/bomb.png"), lab.s3), "InvalidImage"),
    "fetch-unconvertible": (lambda lab: fetch_image(source("raw/keyed16.png"), lab.s3), "InvalidImage"),
    "fetch-path-in-image-id": (
        lambda lab: fetch_image(source("raw/ok.jpg", image_id="../../etc"), lab.s3),
        "InvalidInput",
    ),
    "fetch-no-image-id": (
        lambda lab: fetch_image({"source": {"bucket": BUCKET, "key": "raw/ok.jpg"}}, lab.s3),
        "InvalidInput",
    ),
    "fetch-bad-pointer": (
        lambda lab: fetch_image({"image_id": "img1", "source": {"bucket": BUCKET}}, lab.s3),
        "InvalidInput",
    ),
    "fetch-not-an-object": (lambda lab: fetch_image(["raw/ok.jpg"], lab.s3), "InvalidInput"),
    "grayscale-missing-input": (
        lambda lab: grayscale(step_event("processed/gone/original.png"), lab.s3),
        "ImageObjectMissing",
    ),
    "grayscale-unconvertible": (lambda lab: grayscale(step_event("raw/keyed16.png"), lab.s3), "InvalidImage"),
    "flip-unknown-direction": (lambda lab: flip(step_event(flip="diagonal"), lab.s3), "InvalidInput"),
    "flip-options-not-an-object": (lambda lab: flip({**step_event(), "options": [1]}, lab.s3), "InvalidInput"),
    "rotate-out-of-range": (lambda lab: rotate(step_event(rotate_degrees=1000), lab.s3), "InvalidInput"),
    "rotate-string": (lambda lab: rotate(step_event(rotate_degrees="90"), lab.s3), "InvalidInput"),
    "resize-zero": (lambda lab: resize(step_event(resize_width=0), lab.s3), "InvalidInput"),
    "resize-huge": (lambda lab: resize(step_event(resize_height=100_000), lab.s3), "InvalidInput"),
    "classify-not-an-image": (
        lambda lab: swl_infer.classify(
            step_event("raw/not-image.jpg"), "alexnet", swl_infer.InferenceConfig(runtime="fake"), lab.s3
        ),
        "InvalidImage",
    ),
    "aggregate-no-models": (lambda lab: aggregate({"image_id": "known", "models": []}), "InvalidInput"),
    "aggregate-all-failed": (
        lambda lab: aggregate(
            {
                "image_id": "known",
                "models": [{"model": "alexnet", "ok": False, "error": "ModelFailure", "cause": "boom"}],
            }
        ),
        "NoModelSucceeded",
    ),
    "update-not-aggregate-output": (
        lambda lab: update({"image_id": "known", "result": {}}, lab.ddb, TABLE),
        "InvalidInput",
    ),
    "update-unknown-image": (
        lambda lab: update(
            {
                "image_id": "unknown",
                "result": {"consensus": {}, "labels": {}, "contributing": [], "failed": [], "weights": "untrained"},
            },
            lab.ddb,
            TABLE,
        ),
        "ConditionalCheckFailedException",
    ),
    "mark-failed-unknown-image": (
        lambda lab: mark_failed({"image_id": "unknown", "error": {"Error": "X"}}, lab.ddb, TABLE),
        "ConditionalCheckFailedException",
    ),
}


@pytest.mark.parametrize("case", list(WORKFLOW))
def test_workflow_functions_refuse_bad_input_and_store_nothing(lab, case):
    call, error = WORKFLOW[case]
    before = lab.stored()
    with pytest.raises(Exception) as info:
        call(lab)
    assert type(info.value).__name__ == error and str(info.value)
    assert lab.stored() == before


def test_the_corpus_is_large_enough():
    assert len(INGEST) + len(WORKFLOW) >= 30
