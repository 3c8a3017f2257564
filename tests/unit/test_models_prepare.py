"""swlab.provision.model_weights: the prepare-models step (cache -> S3), the cold-start probe (needs torchvision)."""

from __future__ import annotations

import boto3
import pytest
from lambda_modules import REGION, add_paths
from moto import mock_aws

from swlab.provision import model_weights
from swlab.samples import list_samples

pytestmark = [pytest.mark.unit, pytest.mark.models]
pytest.importorskip("torchvision")
add_paths()
import swl_infer  # noqa: E402


def test_model_table_agrees_with_the_functions():
    assert {n: (s.arch, s.weights_enum) for n, s in swl_infer.MODELS.items()} == model_weights.MODELS


def test_prepare_uploads_cached_weights_only(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / model_weights.checkpoint_name("resnet")).write_bytes(b"pretend-resnet18-weights")
    assert model_weights.checkpoint_name("resnet").startswith("resnet18-")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="swlab-test-bucket")
        nowhere = "http://127.0.0.1:9"  # nothing listens: the download fails at once, without the internet
        prepared = model_weights.prepare_models(s3, "swlab-test-bucket", tmp_path, base_url=nowhere, progress=None)
        assert prepared["resnet"]["weights"] == "imagenet" and prepared["resnet"]["key"] == "models/resnet.pth"
        assert prepared["resnet"]["how"].startswith("cache (")
        alexnet = prepared["alexnet"]
        assert (alexnet["weights"], alexnet["key"], alexnet["source"]) == ("untrained", "", "")
        assert alexnet["how"].startswith(f"seeded: cannot download {nowhere}/alexnet-")
        body = s3.get_object(Bucket="swlab-test-bucket", Key="models/resnet.pth")["Body"].read()
        assert body == b"pretend-resnet18-weights"
        again = model_weights.prepare_models(s3, "swlab-test-bucket", tmp_path, base_url=nowhere, progress=None)
        assert again == prepared  # idempotent
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="swlab-test-bucket")["Contents"]] == ["models/resnet.pth"]
    assert model_weights.weights_substitutions(prepared) == {
        "AlexnetWeightsKey": "",
        "ResnetWeightsKey": "models/resnet.pth",
        "MobilenetWeightsKey": "",
    }


def test_cold_start_probe_measures_a_fresh_interpreter(tmp_path):
    result = model_weights.measure_cold_start("mobilenet", list_samples()[0].path, env={"TORCH_HOME": str(tmp_path)})
    assert (
        result["model"] == "mobilenet" and result["arch"] == "mobilenet_v3_small" and result["weights"] == "untrained"
    )
    assert result["import_ms"] > 0 and result["load_ms"] > 0 and result["rss_mb"] > 100
    assert result["cold_total_ms"] >= result["import_ms"] + result["load_ms"]
