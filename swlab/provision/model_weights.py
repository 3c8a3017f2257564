"""The "prepare models" step and cold-start measurement of the inference functions.

The inference functions (``lambdas/{alexnet,resnet,mobilenet}``) load pretrained
ImageNet weights when a file is available and otherwise build deterministic
seeded weights and say ``"weights": "untrained"`` (see ``lambdas/_shared/swl_infer.py``).
:func:`prepare_models` finds pretrained weights in the local torchvision cache
(``$TORCH_HOME/hub/checkpoints``, where torchvision saves its downloads) and
uploads each to ``s3://<bucket>/models/<name>.pth``; :func:`weights_substitutions`
turns the result into the ``${AlexnetWeightsKey}``-style values the functions'
``function.json`` environment uses (an empty value means seeded weights).
Where the cache has none, :func:`resolve_weights` downloads torchvision's file (progress
bar, checksum verified) unless ``weights="untrained"``; ``weights="pretrained"`` fails
with one line when neither works, ``auto`` falls back to seeded weights and says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Mapping

from swlab.samples import list_samples

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
# name -> (torchvision builder, weights class); must agree with swl_infer.MODELS (a unit test checks).
MODELS = {
    "alexnet": ("alexnet", "AlexNet_Weights"),
    "resnet": ("resnet18", "ResNet18_Weights"),
    "mobilenet": ("mobilenet_v3_small", "MobileNet_V3_Small_Weights"),
}


def weights_key(name: str) -> str:
    return f"models/{name}.pth"


def checkpoint_name(name: str) -> str:
    """The file name torchvision gives the model's pretrained weights (from its weights metadata)."""
    import torchvision.models as tvm

    return os.path.basename(getattr(tvm, MODELS[name][1]).DEFAULT.url)


def cached_weights(name: str, torch_home: Path | str | None = None) -> Path | None:
    """The pretrained weights file in the torchvision cache, if present."""
    home = Path(torch_home) if torch_home else Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    path = home / "hub" / "checkpoints" / checkpoint_name(name)
    return path if path.is_file() else None


class WeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for (``weights="pretrained"``) and cannot be had; one line says why."""


def weights_url(name: str) -> str:
    """torchvision's download URL of the model's pretrained weights."""
    import torchvision.models as tvm

    return getattr(tvm, MODELS[name][1]).DEFAULT.url


def download_weights(url: str, dest_dir: Path | str, progress: Any = sys.stderr, timeout_s: float = 30.0) -> Path:
    """Download ``url`` into ``dest_dir`` with a progress bar on ``progress``; verify its checksum; return the file.

    torchvision names its weight files ``<name>-<first hex digits of the SHA-256>.pth``: the file's
    SHA-256 must start with those digits (as ``torch.hub`` checks), else it is deleted and refused.
    Written to ``<file>.part`` first, so an interrupted download never looks cached. Raises
    :class:`WeightsUnavailable` (network error, HTTP error, checksum mismatch).
    """
    name = os.path.basename(urllib.parse.urlsplit(url).path)
    match = re.search(r"-([0-9a-f]{8,})\.", name)
    dest = Path(dest_dir) / name
    part = dest.with_name(name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, done = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress is not None:
                    shown = (
                        f"{done / 2**20:.1f}/{total / 2**20:.1f} MiB {100 * done // total}%"
                        if total
                        else f"{done / 2**20:.1f} MiB"
                    )
                    print(f"\r{name}: {shown}", end="", file=progress, flush=True)
    except (OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        raise WeightsUnavailable(f"cannot download {url}: {exc}") from None
    if progress is not None:
        print(file=progress, flush=True)
    if match and not digest.hexdigest().startswith(match.group(1)):
        part.unlink(missing_ok=True)
        raise WeightsUnavailable(
            f"{url}: checksum mismatch (SHA-256 {digest.hexdigest()[:12]}..., expected {match.group(1)}...)"
        )
    part.replace(dest)
    return dest


def resolve_weights(
    name: str,
    weights: str = "auto",
    torch_home: Path | str | None = None,
    base_url: str | None = None,
    progress: Any = sys.stderr,
) -> tuple[Path | None, str]:
    """(the pretrained weights file or None for seeded weights, how: ``cache``, ``downloaded from <url>``,
    ``seeded: <why>``) for the ``weights`` policy ``auto`` | ``pretrained`` | ``untrained``.

    ``base_url`` replaces the folder of torchvision's URL (a mirror; the tests' local server)."""
    if weights == "untrained":
        return None, "seeded: weights=untrained"
    cached = cached_weights(name, torch_home)
    if cached is not None:
        return cached, f"cache ({cached})"
    url = weights_url(name)
    if base_url:
        url = f"{base_url.rstrip('/')}/{os.path.basename(url)}"
    home = Path(torch_home) if torch_home else Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    try:
        return download_weights(url, home / "hub" / "checkpoints", progress), f"downloaded from {url}"
    except WeightsUnavailable as exc:
        if weights == "pretrained":
            raise WeightsUnavailable(f"weights=pretrained: {name}: {exc}") from None
        return None, f"seeded: {exc}"


def prepare_models(
    s3: Any,
    bucket: str,
    torch_home: Path | str | None = None,
    weights: str = "auto",
    base_url: str | None = None,
    progress: Any = sys.stderr,
) -> dict[str, dict[str, str]]:
    """Upload each model's pretrained weights (:func:`resolve_weights`: cache, else download) to S3, or record
    seeded weights and why (``how``); idempotent (same size already there = skipped)."""
    prepared = {}
    for name in MODELS:
        path, how = resolve_weights(name, weights, torch_home, base_url, progress)
        if path is None:
            prepared[name] = {"weights": "untrained", "key": "", "source": "", "how": how}
            continue
        key = weights_key(name)
        try:
            same = s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == path.stat().st_size
        except s3.exceptions.ClientError:
            same = False
        if not same:
            s3.upload_file(str(path), bucket, key)
        prepared[name] = {"weights": "imagenet", "key": key, "source": str(path), "how": how}
    return prepared


def onnx_key(name: str) -> str:
    return f"models/{name}.onnx"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_onnx(name: str, weights_file: Path | None, cache_dir: Path, seed: int = 0) -> dict[str, str]:
    """Export ``name``'s torchvision model (``weights_file``, else seeded as the torch function seeds it) to ONNX.

    Cached in ``cache_dir`` by model, weights file checksum (or seed) and torch version, with a ``.sha256``
    beside it; a cached file whose checksum no longer matches is exported again. Opset 17 and IR version
    8 (the legacy exporter): what the functions' ONNX Runtime 1.16.3 reads. The model's metadata holds
    the categories and ``weights`` (``imagenet``/``untrained``), so the function needs no torchvision.
    """
    import onnx
    import torch
    import torchvision.models as tvm

    builder, weights_class = MODELS[name]
    source = _sha256(weights_file)[:16] if weights_file else f"seed{seed}"
    path = Path(cache_dir) / f"{name}-{source}-torch{torch.__version__.split('+')[0]}.onnx"
    check = path.with_suffix(".onnx.sha256")
    if path.is_file() and check.is_file() and check.read_text().strip() == _sha256(path):
        return {"path": str(path), "sha256": check.read_text().strip(), "weights": _onnx_weights(path)}
    torch.manual_seed(seed)
    model = getattr(tvm, builder)(weights=None)
    if weights_file is not None:
        model.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (torch.zeros(1, 3, 224, 224),),
            str(tmp),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
        )
    proto = onnx.load(str(tmp))
    categories = list(getattr(tvm, weights_class).DEFAULT.meta["categories"])
    weights = "imagenet" if weights_file else "untrained"
    for key, value in (("swlab_model", name), ("weights", weights), ("categories", json.dumps(categories))):
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    check.write_text(_sha256(path) + "\n")
    return {"path": str(path), "sha256": check.read_text().strip(), "weights": weights}


def _onnx_weights(path: Path) -> str:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return meta.get("weights", "untrained")


def prepare_onnx(
    s3: Any, bucket: str, prepared: Mapping[str, Mapping[str, str]], cache_dir: Path | str | None = None
) -> dict[str, dict[str, str]]:
    """Export each model with the weights ``prepare_models`` chose and upload it to ``models/<name>.onnx``.

    Idempotent: an object whose ``sha256`` metadata matches is not uploaded again.
    """
    cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "swlab" / "onnx"
    out = {}
    for name in MODELS:
        source = (prepared.get(name) or {}).get("source") or ""
        exported = export_onnx(name, Path(source) if source else None, cache)
        key = onnx_key(name)
        try:
            same = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get("sha256") == exported["sha256"]
        except s3.exceptions.ClientError:
            same = False
        if not same:
            s3.upload_file(exported["path"], bucket, key, ExtraArgs={"Metadata": {"sha256": exported["sha256"]}})
        out[name] = {"key": key, "sha256": exported["sha256"], "weights": exported["weights"]}
    return out


def onnx_substitutions(prepared_onnx: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """``{"AlexnetOnnxKey": "models/alexnet.onnx", ...}`` for the ONNX functions' environment placeholders."""
    return {f"{name.capitalize()}OnnxKey": prepared_onnx.get(name, {}).get("key", "") for name in MODELS}


def weights_substitutions(prepared: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """``{"AlexnetWeightsKey": "models/alexnet.pth" or "", ...}`` for the functions' environment placeholders."""
    return {f"{name.capitalize()}WeightsKey": prepared.get(name, {}).get("key", "") for name in MODELS}


_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path[:0] = [sys.argv[2], sys.argv[3]]
import psutil, swl_infer
from PIL import Image
if swl_infer.config_from_env().runtime == "torch":
    import torch, torchvision  # noqa: F401
else:
    import onnxruntime  # noqa: F401
imported = time.perf_counter()
classifier, _ = swl_infer.get_classifier(sys.argv[1], swl_infer.config_from_env())
loaded = time.perf_counter()
batch = swl_infer.preprocess(Image.open(sys.argv[4]))
classifier.probabilities(batch)
first = time.perf_counter()
warm = []
for _ in range(5):
    t = time.perf_counter(); classifier.probabilities(batch); warm.append(time.perf_counter() - t)
print(json.dumps({"model": sys.argv[1], "arch": classifier.spec.arch, "weights": classifier.weights,
                  "import_ms": round((imported - t0) * 1000), "load_ms": round((loaded - imported) * 1000),
                  "cold_total_ms": round((first - t0) * 1000), "first_inference_ms": round((first - loaded) * 1000),
                  "warm_inference_p50_ms": round(sorted(warm)[2] * 1000, 1),
                  "rss_mb": round(psutil.Process().memory_info().rss / 2**20)}))
"""


def measure_cold_start(name: str, image: Path | str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Cold start of one inference function's code in a fresh interpreter: import, load, first inference, RSS."""
    env = {**os.environ, **(env or {})}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, name, str(LAMBDAS_DIR / "_shared"), str(LAMBDAS_DIR / name), str(image)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # python -m swlab.provision.model_weights: one line per model, e.g. for the README
    for model in MODELS:
        print(json.dumps(measure_cold_start(model, list_samples()[0].path)))
