"""The shared inference module (swl_infer) without torch: preprocessing, ranking, weights, caching, failure hook."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from lambda_modules import REGION, FakeClassifier, add_paths
from moto import mock_aws
from PIL import Image

from swlab.samples import list_samples

add_paths("alexnet", "resnet", "mobilenet")
import swl_errors  # noqa: E402
import swl_infer  # noqa: E402

pytestmark = pytest.mark.unit
BUCKET = "swlab-test-bucket"


def test_preprocess_normalises_like_imagenet():
    image = Image.new("RGB", (300, 200), (124, 116, 104))  # ~ the ImageNet mean colour
    batch = swl_infer.preprocess(image)
    assert batch.shape == (1, 3, 224, 224) and batch.dtype == np.float32
    assert np.abs(batch).max() < 0.01
    white = swl_infer.preprocess(Image.new("L", (224, 224), 255))  # grayscale input becomes 3 channels
    expected = [(1 - m) / s for m, s in zip(swl_infer.IMAGENET_MEAN, swl_infer.IMAGENET_STD)]
    assert white[0, :, 0, 0] == pytest.approx(expected, rel=1e-5)


def test_top_k_is_sorted_and_labelled():
    probabilities = [0.05, 0.4, 0.05, 0.3, 0.2]
    ranked = swl_infer.top_k(probabilities, ["a", "b", "c", "d", "e"], 3)
    assert [r["label"] for r in ranked] == ["b", "d", "e"] and [r["index"] for r in ranked] == [1, 3, 4]
    assert [r["label"] for r in swl_infer.top_k([0.5, 0.5], ["x", "y"], 2)] == ["x", "y"]  # ties: lower index first


def test_config_from_env():
    cfg = swl_infer.config_from_env({"FAIL_MODEL": "1", "MODEL_SEED": "7", "MODEL_WEIGHTS_KEY": "models/resnet.pth"})
    assert (cfg.fail, cfg.seed, cfg.weights_key, cfg.runtime, cfg.top_k) == (True, 7, "models/resnet.pth", "torch", 5)
    assert swl_infer.config_from_env({}).fail is False


def test_every_model_names_a_torchvision_architecture_and_weights_class():
    assert set(swl_infer.MODELS) == {"alexnet", "resnet", "mobilenet"}
    assert {s.arch for s in swl_infer.MODELS.values()} == {"alexnet", "resnet18", "mobilenet_v3_small"}


@pytest.fixture
def fake_runtime(monkeypatch):
    monkeypatch.setitem(swl_infer.RUNTIMES, "fake", FakeClassifier)
    monkeypatch.setattr(swl_infer, "_LOADED", {})
    FakeClassifier.loads = 0
    return swl_infer.InferenceConfig(runtime="fake")


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="processed/img1/resize.png", Body=list_samples()[0].path.read_bytes())
        yield client


EVENT = {"image_id": "img1", "image": {"bucket": BUCKET, "key": "processed/img1/resize.png"}}


def test_model_is_loaded_once_per_environment(fake_runtime, s3):
    first = swl_infer.classify(EVENT, "resnet", fake_runtime, s3)
    second = swl_infer.classify(EVENT, "resnet", fake_runtime, s3)
    assert FakeClassifier.loads == 1 and (first["cold"], second["cold"]) == (True, False)
    assert (first["load_ms"], second["load_ms"]) == (1.0, 0.0)
    assert [r["label"] for r in first["top5"]] == ["class9", "class8", "class7", "class6", "class5"]
    assert first["ok"] is True and first["model"] == "resnet" and first["weights"] == "untrained"
    assert first["runtime"] == "fake" and first["inference_ms"] >= 0


def test_forced_failure_and_unknown_names(fake_runtime, s3):
    from dataclasses import replace

    with pytest.raises(swl_errors.ModelFailure, match="FAIL_MODEL"):
        swl_infer.classify(EVENT, "alexnet", replace(fake_runtime, fail=True), s3)
    with pytest.raises(swl_errors.ModelFailure, match="unknown model"):
        swl_infer.classify(EVENT, "vgg", fake_runtime, s3)
    with pytest.raises(swl_errors.ModelFailure, match="onnx"):
        swl_infer.classify(EVENT, "alexnet", replace(fake_runtime, runtime="onnx"), s3)
    with pytest.raises(swl_errors.ImageObjectMissing):
        swl_infer.classify({**EVENT, "image": {"bucket": BUCKET, "key": "nope.png"}}, "alexnet", fake_runtime, s3)


def test_weights_file_resolution(tmp_path, s3):
    spec = swl_infer.MODELS["resnet"]
    none = lambda: None  # noqa: E731 - no torchvision cache file
    base = swl_infer.InferenceConfig(cache_dir=str(tmp_path / "cache"))
    from dataclasses import replace

    assert swl_infer._weights_file(spec, base, s3, none) is None
    cached = tmp_path / "resnet18-f37072fd.pth"
    cached.write_bytes(b"weights")
    assert swl_infer._weights_file(spec, base, s3, lambda: cached) == cached
    assert swl_infer._weights_file(spec, replace(base, weights_path=str(cached)), s3, none) == cached
    with pytest.raises(swl_errors.ModelFailure, match="does not exist"):
        swl_infer._weights_file(spec, replace(base, weights_path=str(tmp_path / "missing.pth")), s3, none)
    s3.put_object(Bucket=BUCKET, Key="models/resnet.pth", Body=b"from-s3")
    from_s3 = replace(base, weights_bucket=BUCKET, weights_key="models/resnet.pth")
    path = swl_infer._weights_file(spec, from_s3, s3, none)
    assert path.read_bytes() == b"from-s3" and path.parent == tmp_path / "cache"
    with pytest.raises(swl_errors.ModelFailure, match="cannot download"):
        swl_infer._weights_file(spec, replace(from_s3, weights_key="models/absent.pth"), s3, none)


def test_model_downloads_use_few_large_ranges(tmp_path):
    """64 MB parts, 4 at a time: each ranged GET costs the local cloud a read of the whole object."""
    calls = []

    class RecordingS3:
        def download_file(self, bucket, key, filename, Config=None):  # noqa: N803 - boto3's name
            calls.append(Config)
            with open(filename, "wb") as fh:
                fh.write(b"model")

    cfg = swl_infer.InferenceConfig(cache_dir=str(tmp_path), weights_bucket=BUCKET, weights_key="models/alexnet.onnx")
    path = swl_infer._weights_file(swl_infer.MODELS["alexnet"], cfg, RecordingS3(), lambda: None)
    assert path.read_bytes() == b"model" and len(calls) == 1
    config = calls[0]
    assert config.multipart_chunksize == config.multipart_threshold == 64 * 1024 * 1024
    assert config.max_concurrency == 4


def test_downloaded_models_go_to_the_environments_own_temporary_directory(tmp_path, monkeypatch):
    """On AWS /tmp is per execution environment, so each cold start downloads its model; the local cloud
    gives each environment its own TMPDIR. A fixed /tmp/swlab-models was shared by every environment on
    the host: only the first cold start ever downloaded, and another stack's model.onnx was reused."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "env-tmp"))
    assert swl_infer.InferenceConfig().cache_dir == str(tmp_path / "env-tmp" / "swlab-models")
    assert swl_infer.config_from_env({}).cache_dir == str(tmp_path / "env-tmp" / "swlab-models")
