"""One image through every Workflow 2 variant: preprocessing (steps, fused) x inference (torch, onnx).

One stack of its own, redeployed per combination (the deploy prunes the other variant's functions);
the order keeps the torch environments warm across the preprocessing switch. The last combination
also answers over HTTP: /classify's object body and error status, and the asynchronous API.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest
from e2e_helpers import keys, post

from swlab.provision import deploy as deploy_mod
from swlab.provision.teardown import teardown
from swlab.samples import list_samples

pytestmark = pytest.mark.e2e
COMBINATIONS = [("fused", "onnx"), ("steps", "onnx"), ("steps", "torch"), ("fused", "torch")]
MODELS = ("alexnet", "resnet", "mobilenet")


@pytest.fixture(scope="module")
def variant_stack(lab_settings, images, tmp_path_factory):
    settings = lab_settings.with_(stack="e2evar", runs_dir=tmp_path_factory.mktemp("runs"))
    options = deploy_mod.DeployOptions(
        placeholders={"AllowedHosts": images.allowed_host}, **deploy_mod.LOCAL_CLOUD_OPTIONS
    )
    yield settings, options
    assert teardown(settings, progress=lambda line: None).clean


def get(url: str, key: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"x-api-key": key})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_one_image_through_every_variant(variant_stack, images, aws):
    settings, options = variant_stack
    sample = next(s for s in list_samples() if s.name == "chelsea")
    labels, image_id, outputs = {}, None, None
    for preprocessing, inference in COMBINATIONS:
        result = deploy_mod.deploy(
            settings, options, progress=lambda line: None, preprocessing=preprocessing, inference=inference
        )
        outputs = result.outputs
        deployed = set(outputs.functions)
        assert ("preprocess" in deployed) == (preprocessing == "fused") and ("grayscale" in deployed) != (
            preprocessing == "fused"
        )
        assert all(
            (f"{m}_onnx" in deployed) == (inference == "onnx") and (m in deployed) != (inference == "onnx")
            for m in MODELS
        )
        if image_id is None:
            status, body = post(
                outputs.api["endpoints"]["ingest"],
                {"image_url": images.url(f"/samples/{sample.file}")},
                outputs.api["api_key"],
            )
            assert status == 201, body
            image_id = body["image_id"]
        sfn = aws("stepfunctions", read_timeout=300)
        run = sfn.start_sync_execution(
            stateMachineArn=outputs.state_machine["arn"], input=json.dumps({"image_id": image_id})
        )
        assert run["status"] == "SUCCEEDED", (preprocessing, inference, run.get("error"), run.get("cause"))
        out = json.loads(run["output"])
        assert out["status"] == "CLASSIFIED" and out["models_failed"] == [] and len(out["models_contributing"]) == 3
        assert set(out["timings_ms"]) >= ({"preprocess"} if preprocessing == "fused" else {"grayscale", "resize"})
        labels[(preprocessing, inference)] = out["labels"]
    stored = set(keys(aws, outputs, f"processed/{image_id}/"))
    assert {f"processed/{image_id}/preprocess.png", f"processed/{image_id}/resize.png"} <= stored
    s3 = aws("s3")
    fused, steps = (
        s3.get_object(Bucket=outputs.bucket, Key=f"processed/{image_id}/{k}.png")["Body"].read()
        for k in ("preprocess", "resize")
    )
    assert fused == steps  # the same pixels, hence the same deterministic PNG
    for inference in ("torch", "onnx"):  # the preprocessing variant does not change the answers
        assert labels[("steps", inference)] == labels[("fused", inference)]

    api = outputs.api
    status, body = post(api["endpoints"]["classify"], {"image_id": image_id}, api["api_key"])
    assert status == 200 and body["status"] == "CLASSIFIED" and body["image_id"] == image_id
    status, body = post(api["endpoints"]["classify"], {"image_id": "0" * 32}, api["api_key"])  # well formed, unknown
    assert status == 404 and body["error"] == "ImageNotFound" and body["status"] == "FAILED"
    status, submitted = post(api["endpoints"]["classifications"], {"image_id": image_id}, api["api_key"])
    assert status == 202 and submitted["status"] == "CLASSIFYING", submitted
    url = urllib.parse.urljoin(api["endpoints"]["classifications"], submitted["status_url"])
    deadline, record = time.monotonic() + 120, {}
    while time.monotonic() < deadline:
        status, record = get(url, api["api_key"])
        assert status == 200, record
        if record["terminal"] and record["execution_name"] == submitted["execution_name"]:
            break
        time.sleep(0.5)
    assert record["status"] == "CLASSIFIED" and record["labels"], record
    assert get(urllib.parse.urljoin(url, "no-such-image"), api["api_key"])[0] == 404
