"""Every sample event in ``lambdas/<function>/events/*.json`` runs through its function's domain code.

The events are what the README and a developer use to invoke a function by
hand; this keeps them in step with the code. S3 and DynamoDB are moto's
in-process fakes (as in the other lambdas tests), the models run on the fake
classifier runtime (no torch), and ingest downloads through a fake fetcher.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import boto3
import pytest
from lambda_modules import LAMBDAS, REGION, FakeClassifier, add_paths, make_stack
from moto import mock_aws
from PIL import Image

from swlab.samples import list_samples

FUNCTIONS = sorted(p.name for p in LAMBDAS.iterdir() if (p / "handler.py").is_file())
add_paths(*FUNCTIONS)
import ingest  # noqa: E402
import swl_infer  # noqa: E402
from aggregate import aggregate  # noqa: E402
from classifications import Config, handle  # noqa: E402
from fetch_image import fetch_image  # noqa: E402
from flip import flip  # noqa: E402
from grayscale import grayscale  # noqa: E402
from mark_failed import mark_failed  # noqa: E402
from preprocess import preprocess  # noqa: E402
from resize import resize  # noqa: E402
from rotate import rotate  # noqa: E402
from update import update  # noqa: E402
from urlguard import Fetched, fetch  # noqa: E402

pytestmark = pytest.mark.unit
BUCKET, TABLE = "swlab-123456789012-us-east-1", "swlab-test-images"  # the bucket the sample events name
EVENTS = sorted(LAMBDAS.glob("*/events/*.json"))


def event_id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.name}"


class Env:
    """moto's S3 and DynamoDB with the bucket and table the events refer to."""

    def __init__(self, s3: Any, ddb: Any) -> None:
        self.s3, self.ddb = s3, ddb

    def put_image(self, pointer: dict, data: bytes | None = None) -> None:
        if data is None:
            buf = io.BytesIO()
            Image.new("RGB", (64, 48), (120, 90, 60)).save(buf, "PNG")
            data = buf.getvalue()
        self.s3.put_object(Bucket=pointer["bucket"], Key=pointer["key"], Body=data)

    def put_item(self, image_id: str) -> None:
        self.ddb.put_item(TableName=TABLE, Item={"image_id": {"S": image_id}, "status": {"S": "INGESTED"}})

    def item(self, image_id: str) -> dict:
        return self.ddb.get_item(TableName=TABLE, Key={"image_id": {"S": image_id}})["Item"]


def run_ingest(env: Env, event: dict) -> Any:
    sample = next(s for s in list_samples() if s.name == "chelsea")

    def fetcher(url: str, limits: Any) -> Fetched:  # the lab's image server at 127.0.0.1:8765; anything else is real
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc, parts.path) != ("http", "127.0.0.1:8765", "/samples/chelsea.jpg"):
            return fetch(url, limits)
        return Fetched(url, sample.path.read_bytes(), "image/jpeg", 0)

    cfg = ingest.config_from_env({"BUCKET": BUCKET, "TABLE": TABLE, "ALLOWED_HOSTS": "127.0.0.1:8765"})
    result = ingest.handle(event, cfg, env.s3, env.ddb, fetcher=fetcher)
    body = json.loads(result["body"])
    if "file://" in event["body"]:
        assert (result["statusCode"], body["error"]) == (400, "bad_scheme")
    else:
        assert result["statusCode"] == 201 and body["sha256"] == sample.sha256
        assert env.item(body["image_id"])["status"] == {"S": "INGESTED"}
    return body


def run_fetch_image(env: Env, event: dict) -> Any:
    sample = next(s for s in list_samples() if s.sha256 == event["sha256"])
    env.put_image(event["source"], sample.path.read_bytes())
    out = fetch_image(event, env.s3)
    assert (out["width"], out["height"], out["mode"]) == (sample.width, sample.height, "RGB")
    return out


def run_step(step: Callable) -> Callable[[Env, dict], Any]:
    def run(env: Env, event: dict) -> Any:
        env.put_image(event["image"])
        out = step(event, env.s3)
        assert out["image"]["key"].startswith(f"processed/{event['image_id']}/")
        return out

    return run


def run_model(name: str) -> Callable[[Env, dict], Any]:
    def run(env: Env, event: dict) -> Any:
        env.put_image(event["image"])
        out = swl_infer.classify(event, name, swl_infer.InferenceConfig(runtime="fake"), env.s3)
        assert out["model"] == name and out["ok"] and len(out["top5"]) == 5
        return out

    return run


def run_aggregate(env: Env, event: dict) -> Any:
    out = aggregate(event)
    assert out["contributing"] and out["consensus"]["label"]
    return out


def run_update(env: Env, event: dict) -> Any:
    env.put_item(event["image_id"])
    out = update(event, env.ddb, TABLE)
    assert env.item(event["image_id"])["status"] == {"S": "CLASSIFIED"} and out["status"] == "CLASSIFIED"
    return out


def run_mark_failed(env: Env, event: dict) -> Any:
    env.put_item(event["image_id"])
    out = mark_failed(event, env.ddb, TABLE)
    item = env.item(event["image_id"])
    assert item["status"] == {"S": "FAILED"} and item["error"] == {"S": event["error"]["Error"]}
    return out


class StubStates:
    """Step Functions' StartExecution, recorded."""

    def __init__(self) -> None:
        self.started: list[dict] = []

    def start_execution(self, **kwargs: Any) -> dict:
        self.started.append(kwargs)
        return {"executionArn": f"arn:aws:states:us-east-1:123456789012:execution:swlab-classify:{kwargs['name']}"}


def run_classifications(env: Env, event: dict) -> Any:
    image_id = "0f8e4c2a9b7d4e6f8a1b2c3d4e5f6a7b"
    env.put_item(image_id)
    states = StubStates()
    out = handle(
        event, Config(TABLE, "arn:aws:states:us-east-1:123456789012:stateMachine:swlab-classify"), env.ddb, states
    )
    body = json.loads(out["body"])
    if event["httpMethod"] == "POST":
        assert out["statusCode"] == 202 and body["status_url"] == f"images/{image_id}" == out["headers"]["Location"]
        assert (
            env.item(image_id)["status"] == {"S": "CLASSIFYING"} and states.started[0]["name"] == body["execution_name"]
        )
    else:
        assert out["statusCode"] == 200 and body["status"] == "INGESTED" and body["terminal"] is False
    return body


RUNNERS: dict[str, Callable[[Env, dict], Any]] = {
    "classifications": run_classifications,
    "ingest": run_ingest,
    "fetch_image": run_fetch_image,
    "grayscale": run_step(grayscale),
    "flip": run_step(flip),
    "rotate": run_step(rotate),
    "resize": run_step(resize),
    "preprocess": run_step(preprocess),
    "alexnet": run_model("alexnet"),
    "resnet": run_model("resnet"),
    "mobilenet": run_model("mobilenet"),
    "alexnet_onnx": run_model("alexnet"),  # the same domain code; the ONNX runtime itself: test_models_onnx
    "resnet_onnx": run_model("resnet"),
    "mobilenet_onnx": run_model("mobilenet"),
    "aggregate": run_aggregate,
    "update": run_update,
    "mark_failed": run_mark_failed,
}


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setitem(swl_infer.RUNTIMES, "fake", FakeClassifier)
    monkeypatch.setattr(swl_infer, "_LOADED", {})
    with mock_aws():
        s3, ddb = boto3.client("s3", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        make_stack(s3, ddb, BUCKET, TABLE)
        yield Env(s3, ddb)


def test_every_function_has_sample_events_and_a_runner():
    with_events = {p.parent.parent.name for p in EVENTS}
    assert with_events == set(FUNCTIONS) == set(RUNNERS)


@pytest.mark.parametrize("path", EVENTS, ids=event_id)
def test_sample_event_runs_through_its_function(env, path):
    event = json.loads(path.read_text())
    out = RUNNERS[path.parent.parent.name](env, event)
    json.dumps(out)  # a Lambda result must serialise
    if "image_id" in event and isinstance(out, dict) and "image_id" in out:
        assert out["image_id"] == event["image_id"]
