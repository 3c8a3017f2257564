"""The ONNX variant gives torch's answers: top-1 equal on every sample image, top-5 probabilities within 1e-4.

The models are exported by the prepare-models code (:func:`model_weights.export_onnx`, seeded weights when the
torchvision cache has none, as the torch functions then use) and run by the ONNX functions' classifier.
"""

from __future__ import annotations

import pytest
from lambda_modules import add_paths
from PIL import Image

from swlab.provision import model_weights
from swlab.samples import list_samples

add_paths("alexnet")
import swl_infer  # noqa: E402

pytestmark = pytest.mark.unit
TIE = 1e-7  # torch's own probabilities of two classes this close: a tie
TOLERANCE = 1e-4  # absolute, on each of the top-5 probabilities (float32 kernels differ between the runtimes)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cache = tmp_path_factory.mktemp("onnx")
    return {
        name: model_weights.export_onnx(name, model_weights.cached_weights(name), cache) for name in swl_infer.MODELS
    }


@pytest.mark.parametrize("name", sorted(swl_infer.MODELS))
def test_onnx_answers_as_torch_on_every_sample(name, exported):
    path = exported[name]["path"]
    torch_model = swl_infer.TorchClassifier(swl_infer.MODELS[name], swl_infer.InferenceConfig(seed=0))
    onnx_model = swl_infer.OnnxClassifier(
        swl_infer.MODELS[name], swl_infer.InferenceConfig(runtime="onnx", weights_path=path)
    )
    assert onnx_model.weights == torch_model.weights and onnx_model.categories == torch_model.categories
    for sample in list_samples():
        batch = swl_infer.preprocess(Image.open(sample.path))
        want = swl_infer.top_k(torch_model.probabilities(batch), torch_model.categories, 5)
        got = swl_infer.top_k(onnx_model.probabilities(batch), onnx_model.categories, 5)
        theirs, full = torch_model.probabilities(batch), onnx_model.probabilities(batch)
        # top-1 equal; with seeded (untrained) weights two classes can tie in torch itself (their
        # probabilities equal within TIE), and then either is torch's answer
        tied = abs(theirs[got[0]["index"]] - theirs[want[0]["index"]]) <= TIE
        assert got[0]["index"] == want[0]["index"] or tied, (sample.name, got[0], want[0])
        for r in want:
            assert abs(full[r["index"]] - r["probability"]) <= TOLERANCE, (sample.name, r, got)


def test_the_export_is_cached_and_checksummed(exported, tmp_path):
    first = exported["mobilenet"]
    again = model_weights.export_onnx(
        "mobilenet", model_weights.cached_weights("mobilenet"), first["path"].rsplit("/", 1)[0]
    )
    assert again == first
    with open(first["path"], "ab") as f:  # a damaged cache file is exported again
        f.write(b"x")
    repaired = model_weights.export_onnx(
        "mobilenet", model_weights.cached_weights("mobilenet"), first["path"].rsplit("/", 1)[0]
    )
    assert repaired["sha256"] == first["sha256"]


def test_a_model_file_of_another_model_is_refused(exported):
    with pytest.raises(swl_infer.ModelFailure, match="not of 'resnet'"):
        swl_infer.OnnxClassifier(
            swl_infer.MODELS["resnet"],
            swl_infer.InferenceConfig(runtime="onnx", weights_path=exported["mobilenet"]["path"]),
        )
