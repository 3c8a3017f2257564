"""Image classification for the AlexNet, ResNet and MobileNet functions (one module, three handlers).

A model is loaded once per execution environment, at init: the handlers call
:func:`preload` at module scope (as AWS recommends), so torch and the model are
loaded in the init phase and the cold cost is in the REPORT line's Init Duration,
not in the first invocation's Duration. A load that fails at init is retried by
the first invocation, which raises it as before; results say ``"cold": true`` on
an environment's first invocation either way. The runtime is a small interface
(:class:`Classifier`): ``torch`` (:class:`TorchClassifier`) and ``onnx``
(:class:`OnnxClassifier`, ONNX Runtime on the model exported by the prepare-models
step; the ``*_onnx`` functions); the handlers are the same for both.

Weights, in this order: ``MODEL_WEIGHTS_PATH`` (a state_dict file),
``MODEL_WEIGHTS_BUCKET`` + ``MODEL_WEIGHTS_KEY`` (an S3 object written by the
"prepare models" step, downloaded once per execution environment into its own temporary directory:
``tempfile.gettempdir()``, which is /tmp on AWS and the environment's private ``TMPDIR`` on the local
cloud; a fixed ``/tmp/swlab-models`` was shared by every environment on the host, so only the
first cold start ever downloaded, and a later stack could load another stack's model of that name), torchvision's own cache file
under ``TORCH_HOME``; all of these are pretrained ImageNet weights
(``"weights": "imagenet"``). If none exists the model is built with
``torch.manual_seed(MODEL_SEED)`` and every result says ``"weights": "untrained"``.
An explicitly configured source that is missing is an error, not a fallback.

``FAIL_MODEL=1`` makes the function raise ModelFailure on every invocation: a
documented test hook (set in the function's configuration) for the Parallel
state's error records.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import swl_env
import swl_log
from swl_errors import ModelFailure
from swl_event import image_id_of
from swl_image import to_rgb
from swl_s3 import pointer, read_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the lab's name (function name suffix)
    arch: str  # torchvision builder
    weights_enum: str  # torchvision weights class (categories and the cache file name)


MODELS = {
    "alexnet": ModelSpec("alexnet", "alexnet", "AlexNet_Weights"),
    "resnet": ModelSpec("resnet", "resnet18", "ResNet18_Weights"),
    "mobilenet": ModelSpec("mobilenet", "mobilenet_v3_small", "MobileNet_V3_Small_Weights"),
}


@dataclass(frozen=True)
class InferenceConfig:
    runtime: str = "torch"
    weights_path: str = ""
    weights_bucket: str = ""
    weights_key: str = ""
    seed: int = 0
    threads: int = 0  # 0 = the runtime's default
    top_k: int = 5
    fail: bool = False
    cache_dir: str = field(default_factory=lambda: os.path.join(tempfile.gettempdir(), "swlab-models"))


def config_from_env(env: Mapping[str, str] | None = None) -> InferenceConfig:
    return InferenceConfig(
        runtime=swl_env.get_str("INFERENCE_RUNTIME", "torch", env),
        weights_path=swl_env.get_str("MODEL_WEIGHTS_PATH", "", env),
        weights_bucket=swl_env.get_str("MODEL_WEIGHTS_BUCKET", "", env),
        weights_key=swl_env.get_str("MODEL_WEIGHTS_KEY", "", env),
        seed=swl_env.get_int("MODEL_SEED", 0, env),
        threads=swl_env.get_int(
            "INFERENCE_THREADS", swl_env.get_int("TORCH_NUM_THREADS", 0, env, minimum=0), env, minimum=0
        ),
        top_k=swl_env.get_int("TOP_K", 5, env, minimum=1),
        fail=swl_env.get_bool("FAIL_MODEL", False, env),
    )


class Classifier(Protocol):
    spec: ModelSpec
    weights: str  # "imagenet" or "untrained"
    categories: Sequence[str]
    load_ms: float

    def probabilities(self, batch: Any) -> list[float]:
        """Softmax over the classes for one preprocessed image (float32 array, 1x3x224x224)."""
        ...


def preprocess(image: Any) -> Any:
    """PIL image -> float32 array 1x3x224x224, ImageNet-normalised (shared by every runtime)."""
    import numpy as np
    from PIL import Image

    rgb = to_rgb(image)  # 16-bit scaled, alpha on white (swl_image)
    if rgb.size != (INPUT_SIZE, INPUT_SIZE):
        rgb = rgb.resize((INPUT_SIZE, INPUT_SIZE), resample=Image.Resampling.BILINEAR)
    array = (np.asarray(rgb, dtype=np.float32) / 255.0 - np.array(IMAGENET_MEAN, np.float32)) / np.array(
        IMAGENET_STD, np.float32
    )
    return array.transpose(2, 0, 1)[None, ...].copy()


# Model downloads in fewer, larger ranges than boto3's default (8 MB parts, 10 threads): AlexNet's 244 MB
# ONNX model is 4 ranged GETs instead of 31, the others one GET. The local cloud (moto) reads the whole
# object for every ranged GET: measured 6.5-7.2 s for that model in 8 MB parts, 2.7-2.8 s in 64 MB parts
# (load average 37-75). On AWS four parallel streams still fetch it at once.
DOWNLOAD_PART_BYTES = 64 * 1024 * 1024


def download_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=DOWNLOAD_PART_BYTES, multipart_chunksize=DOWNLOAD_PART_BYTES, max_concurrency=4
    )


def _weights_file(
    spec: ModelSpec, cfg: InferenceConfig, s3: Any, default_file: Callable[[], Path | None]
) -> Path | None:
    """The pretrained weights file to load, or None for seeded weights."""
    if cfg.weights_path:
        path = Path(cfg.weights_path)
        if not path.is_file():
            raise ModelFailure(f"MODEL_WEIGHTS_PATH={cfg.weights_path} does not exist")
        return path
    if cfg.weights_key:
        if not cfg.weights_bucket or s3 is None:
            raise ModelFailure("MODEL_WEIGHTS_KEY is set but MODEL_WEIGHTS_BUCKET (or an S3 client) is not")
        path = Path(cfg.cache_dir) / Path(cfg.weights_key).name
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                s3.download_file(cfg.weights_bucket, cfg.weights_key, str(path), Config=download_config())
            except Exception as exc:  # noqa: BLE001 - any failure to fetch configured weights is fatal here
                raise ModelFailure(f"cannot download s3://{cfg.weights_bucket}/{cfg.weights_key}: {exc}") from None
        return path
    return default_file()


class TorchClassifier:
    """A torchvision model in eval mode on the CPU."""

    def __init__(self, spec: ModelSpec, cfg: InferenceConfig, s3: Any = None) -> None:
        import torch
        import torchvision.models as tvm

        started = time.perf_counter()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        weights_enum = getattr(tvm, spec.weights_enum).DEFAULT
        self.spec, self.categories = spec, list(weights_enum.meta["categories"])
        path = _weights_file(spec, cfg, s3, lambda: _torch_cache_file(weights_enum.url))
        torch.manual_seed(cfg.seed)  # deterministic "untrained" weights; harmless when a file is loaded
        model = getattr(tvm, spec.arch)(weights=None)
        if path is not None:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.weights = "imagenet" if path is not None else "untrained"
        self._model, self._torch = model.eval(), torch
        self.load_ms = round((time.perf_counter() - started) * 1000.0, 3)

    def probabilities(self, batch: Any) -> list[float]:
        torch = self._torch
        with torch.inference_mode():
            return torch.softmax(self._model(torch.from_numpy(batch)), dim=1)[0].tolist()


class OnnxClassifier:
    """The same torchvision model exported to ONNX at the "prepare models" step, run by ONNX Runtime on the CPU.

    The model file comes from MODEL_WEIGHTS_PATH or MODEL_WEIGHTS_BUCKET + MODEL_WEIGHTS_KEY (as the torch
    weights do); its metadata carries the categories and whether its weights were pretrained, so the
    function needs neither torch nor torchvision. There is no seeded fallback: without a prepared model
    the function fails with ModelFailure and says so.
    """

    def __init__(self, spec: ModelSpec, cfg: InferenceConfig, s3: Any = None) -> None:
        import json

        import onnxruntime as ort

        started = time.perf_counter()
        path = _weights_file(spec, cfg, s3, lambda: None)
        if path is None:
            raise ModelFailure(
                f"{spec.name}: INFERENCE_RUNTIME=onnx needs the exported model (MODEL_WEIGHTS_KEY of models/"
                f"{spec.name}.onnx, written by the prepare-models step); none is configured"
            )
        options = ort.SessionOptions()
        if cfg.threads:
            options.intra_op_num_threads, options.inter_op_num_threads = cfg.threads, 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self._session.get_modelmeta().custom_metadata_map
        if meta.get("swlab_model") != spec.name:
            raise ModelFailure(f"{path} is the ONNX model of {meta.get('swlab_model')!r}, not of {spec.name!r}")
        self.spec, self.categories = spec, list(json.loads(meta["categories"]))
        self.weights = meta.get("weights", "untrained")
        self._input = self._session.get_inputs()[0].name
        self.load_ms = round((time.perf_counter() - started) * 1000.0, 3)

    def probabilities(self, batch: Any) -> list[float]:
        import numpy as np

        logits = np.asarray(self._session.run(None, {self._input: batch})[0][0], dtype=np.float64)
        exp = np.exp(logits - logits.max())
        return (exp / exp.sum()).tolist()


def _torch_cache_file(url: str) -> Path | None:
    import torch.hub

    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    return path if path.is_file() else None


RUNTIMES: dict[str, Callable[[ModelSpec, InferenceConfig, Any], Classifier]] = {
    "torch": TorchClassifier,
    "onnx": OnnxClassifier,
}
_LOADED: dict[tuple[str, str], Classifier] = {}
_SERVED: set[tuple[str, str]] = set()  # models an invocation has used already (later ones are warm)


def preload(name: str, cfg: InferenceConfig, s3: Any = None) -> None:
    """Load the model during init (call at module scope); a failure is left to the first invocation."""
    if cfg.fail:
        return
    try:
        _load(name, cfg, s3)
    except Exception as exc:  # noqa: BLE001 - the first invocation loads again and reports the error
        print(f"swl_infer: loading {name} at init failed ({exc}); the first invocation tries again", flush=True)


def get_classifier(name: str, cfg: InferenceConfig, s3: Any = None) -> tuple[Classifier, bool]:
    """The loaded model for ``name`` and whether this is the environment's first use of it (a cold start)."""
    key = (name, cfg.runtime)
    classifier = _load(name, cfg, s3)
    cold = key not in _SERVED
    _SERVED.add(key)
    return classifier, cold


def _load(name: str, cfg: InferenceConfig, s3: Any) -> Classifier:
    key = (name, cfg.runtime)
    if key in _LOADED:
        return _LOADED[key]
    _SERVED.discard(key)
    if name not in MODELS:
        raise ModelFailure(f"unknown model {name!r}; known: {sorted(MODELS)}")
    if cfg.runtime not in RUNTIMES:
        raise ModelFailure(f"INFERENCE_RUNTIME={cfg.runtime!r} is not available; known: {sorted(RUNTIMES)}")
    _LOADED[key] = RUNTIMES[cfg.runtime](MODELS[name], cfg, s3)
    return _LOADED[key]


def top_k(probabilities: Sequence[float], categories: Sequence[str], k: int) -> list[dict[str, Any]]:
    ranked = sorted(range(len(probabilities)), key=lambda i: (-probabilities[i], i))[:k]
    return [{"label": categories[i], "index": i, "probability": float(f"{probabilities[i]:.6g}")} for i in ranked]


def classify(event: Mapping[str, Any], name: str, cfg: InferenceConfig, s3: Any) -> dict[str, Any]:
    """Event ``{"image_id", "image": {"bucket", "key"}}`` -> the model's top-k labels and timings."""
    image_id = image_id_of(event)
    if cfg.fail:
        raise ModelFailure(f"{name}: forced failure (FAIL_MODEL=1 in the function's configuration)")
    classifier, cold = get_classifier(name, cfg, s3)
    image = read_image(s3, pointer(event.get("image")))
    started = time.perf_counter()
    probabilities = classifier.probabilities(preprocess(image))
    inference_ms = round((time.perf_counter() - started) * 1000.0, 3)
    return {
        "image_id": image_id,
        "model": name,
        "arch": classifier.spec.arch,
        "ok": True,
        "runtime": cfg.runtime,
        "weights": classifier.weights,
        "top5": top_k(probabilities, classifier.categories, cfg.top_k),
        "inference_ms": inference_ms,
        "cold": cold,
        "load_ms": classifier.load_ms if cold else 0.0,
    }


def log_result(model: str, result: Mapping[str, Any]) -> Mapping[str, Any]:
    """One structured log line per inference (what every model function's handler logs); returns ``result``."""
    swl_log.log(
        model,
        image_id=result["image_id"],
        weights=result["weights"],
        top1=result["top5"][0],
        inference_ms=result["inference_ms"],
        cold=result["cold"],
        load_ms=result["load_ms"],
    )
    return result
