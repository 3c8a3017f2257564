"""The three model functions with real torch/torchvision (marked ``models``: needs torch, ~10 s)."""

from __future__ import annotations

from dataclasses import replace

import boto3
import pytest
from lambda_modules import REGION, add_paths, load_handler
from moto import mock_aws

from swlab.samples import list_samples

pytestmark = [pytest.mark.unit, pytest.mark.models]
torch = pytest.importorskip("torch")
add_paths("alexnet", "resnet", "mobilenet")
import swl_infer  # noqa: E402

BUCKET = "swlab-test-bucket"
KEY = "processed/img1/resize.png"


@pytest.fixture(scope="module")
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        chelsea = next(s for s in list_samples() if s.name == "chelsea")
        client.put_object(Bucket=BUCKET, Key=KEY, Body=chelsea.path.read_bytes())
        yield client


EVENT = {"image_id": "img1", "image": {"bucket": BUCKET, "key": KEY}}


@pytest.fixture(autouse=True)
def fresh_models(monkeypatch, tmp_path):
    monkeypatch.setattr(swl_infer, "_LOADED", {})
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no pretrained cache here: seeded weights


@pytest.mark.parametrize("name", ["alexnet", "resnet", "mobilenet"])
def test_each_model_classifies_a_sample(s3, name):
    result = swl_infer.classify(EVENT, name, swl_infer.InferenceConfig(), s3)
    probabilities = [r["probability"] for r in result["top5"]]
    assert len(result["top5"]) == 5 and probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-6 and all(0 <= p <= 1 for p in probabilities)
    assert result["weights"] == "untrained" and result["cold"] is True and result["load_ms"] > 0
    categories = swl_infer.get_classifier(name, swl_infer.InferenceConfig())[0].categories
    assert len(categories) == 1000 and all(r["label"] == categories[r["index"]] for r in result["top5"])
    again = swl_infer.classify(EVENT, name, swl_infer.InferenceConfig(), s3)
    assert again["cold"] is False and again["top5"] == result["top5"]


def test_seeded_weights_are_deterministic_and_a_weights_file_is_loaded(s3, tmp_path):
    cfg = swl_infer.InferenceConfig()
    first = swl_infer.classify(EVENT, "resnet", cfg, s3)["top5"]
    seeded = swl_infer._LOADED[("resnet", "torch")]
    swl_infer._LOADED.clear()
    assert swl_infer.classify(EVENT, "resnet", cfg, s3)["top5"] == first
    swl_infer._LOADED.clear()
    other_seed = swl_infer.classify(EVENT, "resnet", replace(cfg, seed=1), s3)["top5"]
    assert [r["index"] for r in other_seed] != [r["index"] for r in first]
    # A state_dict file (what "prepare models" ships) is loaded and reported as pretrained.
    path = tmp_path / "resnet.pth"
    torch.save(seeded._model.state_dict(), path)
    swl_infer._LOADED.clear()
    from_file = swl_infer.classify(EVENT, "resnet", replace(cfg, weights_path=str(path), seed=1), s3)
    assert from_file["weights"] == "imagenet" and from_file["top5"] == first


def test_handler_module_uses_env_config(s3, monkeypatch):
    monkeypatch.setenv("FAIL_MODEL", "1")
    handler = load_handler("resnet")
    with pytest.raises(Exception) as info:
        handler.handler(EVENT, None)
    assert type(info.value).__name__ == "ModelFailure"
    monkeypatch.setenv("FAIL_MODEL", "0")
    result = load_handler("resnet").handler(EVENT, None)
    assert result["model"] == "resnet" and result["arch"] == "resnet18" and result["ok"] is True


def test_the_model_loads_at_init_so_its_cold_cost_is_in_init_duration(s3, monkeypatch):
    monkeypatch.setenv("FAIL_MODEL", "0")
    handler = load_handler("mobilenet")  # what the runtime does in the init phase
    assert ("mobilenet", "torch") in swl_infer._LOADED  # loaded by the import, before any invocation
    first = handler.handler(EVENT, None)
    assert first["cold"] is True and first["load_ms"] > 0  # the environment's first invocation still says so
    assert handler.handler(EVENT, None)["cold"] is False


def test_a_model_that_fails_to_load_at_init_fails_the_first_invocation(s3, monkeypatch):
    monkeypatch.setenv("FAIL_MODEL", "0")
    monkeypatch.setenv("MODEL_WEIGHTS_PATH", "/nonexistent/weights.pth")
    handler = load_handler("mobilenet")  # init survives: the error belongs to the invocation, as before
    with pytest.raises(Exception) as info:
        handler.handler(EVENT, None)
    assert type(info.value).__name__ == "ModelFailure" and "does not exist" in str(info.value)
