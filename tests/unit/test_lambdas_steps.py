"""Workflow 2 image steps: fetch_image, grayscale, flip, rotate, resize (S3 by pointer, moto in-process)."""

from __future__ import annotations

import hashlib
import io

import boto3
import pytest
from lambda_modules import REGION, add_paths, aws_calls_lines, load_handler
from moto import mock_aws
from PIL import Image

from swlab.samples import list_samples

add_paths("fetch_image", "grayscale", "flip", "rotate", "resize", "preprocess")
import swl_errors  # noqa: E402
from fetch_image import fetch_image  # noqa: E402
from flip import default_direction, flip  # noqa: E402
from grayscale import grayscale  # noqa: E402
from preprocess import Defaults, defaults_from_env, preprocess  # noqa: E402
from resize import default_size, resize  # noqa: E402
from rotate import default_degrees, rotate  # noqa: E402

pytestmark = pytest.mark.unit
BUCKET = "swlab-test-bucket"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


def put_sample(s3, name="chelsea", key=None):
    sample = next(s for s in list_samples() if s.name == name)
    key = key or f"raw/{name}.jpg"
    s3.put_object(Bucket=BUCKET, Key=key, Body=sample.path.read_bytes())
    return sample, {"image_id": f"id-{name}", "source": {"bucket": BUCKET, "key": key}, "sha256": sample.sha256}


def load(s3, ptr) -> Image.Image:
    image = Image.open(io.BytesIO(s3.get_object(Bucket=ptr["bucket"], Key=ptr["key"])["Body"].read()))
    image.load()
    return image


def test_fetch_image_normalises_to_rgb_png(s3):
    sample, event = put_sample(s3, "camera")  # a single-channel JPEG
    out = fetch_image(event, s3)
    assert out["image"] == {"bucket": BUCKET, "key": "processed/id-camera/original.png"}
    image = load(s3, out["image"])
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (sample.width, sample.height))
    assert (out["width"], out["height"], out["source_bytes"]) == (sample.width, sample.height, sample.bytes)
    assert out["ms"] >= 0


@pytest.mark.parametrize(
    "problem, error",
    [
        ("missing", swl_errors.ImageObjectMissing),
        ("no-bucket", swl_errors.ImageObjectMissing),
        ("checksum", swl_errors.InvalidImage),
        ("not-image", swl_errors.InvalidImage),
        ("truncated", swl_errors.InvalidImage),
        ("bad-id", swl_errors.InvalidInput),
        ("bad-pointer", swl_errors.InvalidInput),
    ],
)
def test_fetch_image_refuses_what_it_cannot_use(s3, problem, error):
    sample, event = put_sample(s3)
    data = sample.path.read_bytes()
    if problem == "missing":
        event["source"]["key"] = "raw/nothing.jpg"
    elif problem == "no-bucket":
        event["source"]["bucket"] = "no-such-bucket-here"
    elif problem == "checksum":
        event["sha256"] = hashlib.sha256(b"other").hexdigest()
    elif problem in ("not-image", "truncated"):
        body = b"<html/>" if problem == "not-image" else data[: len(data) // 2]
        s3.put_object(Bucket=BUCKET, Key=event["source"]["key"], Body=body)
        event.pop("sha256")
    elif problem == "bad-id":
        event["image_id"] = "../../etc"
    else:
        event["source"] = {"bucket": BUCKET}
    with pytest.raises(error):
        fetch_image(event, s3)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="processed/").get("Contents", [])]
    assert keys == []


def zlib_level_class(png: bytes) -> int:
    """FLEVEL of the first IDAT's zlib header: 0 = fastest (level 0-1), 1 = fast, 2 = default (6), 3 = best."""
    idat = png.index(b"IDAT") + 4
    return png[idat + 1] >> 6


def test_intermediate_pngs_are_written_at_the_fast_level_and_lossless(s3):
    sample, event = put_sample(s3, "coffee")
    out = fetch_image(event, s3)
    png = s3.get_object(Bucket=BUCKET, Key=out["image"]["key"])["Body"].read()
    assert zlib_level_class(png) == 0
    decoded = Image.open(io.BytesIO(png))
    source = Image.open(sample.path).convert("RGB")
    assert decoded.tobytes() == source.tobytes()


@pytest.fixture
def original(s3):
    _, event = put_sample(s3, "coffee")
    return fetch_image(event, s3)


def step_event(previous, **options):
    return {"image_id": previous["image_id"], "image": previous["image"], **({"options": options} if options else {})}


def test_grayscale_writes_one_channel(s3, original):
    out = grayscale(step_event(original), s3)
    assert out["image"]["key"] == "processed/id-coffee/grayscale.png" and out["mode"] == "L"
    before, after = load(s3, original["image"]), load(s3, out["image"])
    assert after.mode == "L" and after.size == before.size
    r, g, b = before.getpixel((10, 10))
    assert abs(after.getpixel((10, 10)) - (r * 299 + g * 587 + b * 114) / 1000) <= 1


@pytest.mark.parametrize("direction", ["horizontal", "vertical"])
def test_flip_mirrors_pixels(s3, original, direction):
    out = flip(step_event(original, flip=direction), s3)
    before, after = load(s3, original["image"]), load(s3, out["image"])
    w, h = before.size
    mirrored = (w - 1 - 5, 7) if direction == "horizontal" else (5, h - 1 - 7)
    assert after.getpixel(mirrored) == before.getpixel((5, 7)) and out["direction"] == direction


def test_flip_uses_the_configured_default_and_refuses_unknown_directions(s3, original):
    assert flip(step_event(original), s3, default="vertical")["direction"] == "vertical"
    assert default_direction({}) == "horizontal" and default_direction({"FLIP_DIRECTION": "vertical"}) == "vertical"
    with pytest.raises(swl_errors.InvalidInput):
        flip(step_event(original, flip="diagonal"), s3)


def test_rotate_by_input_or_default(s3, original):
    w, h = original["width"], original["height"]
    out = rotate(step_event(original), s3, default=90)
    assert (out["width"], out["height"], out["degrees"]) == (h, w, 90)
    assert load(s3, out["image"]).size == (h, w)
    out = rotate(step_event(original, rotate_degrees=180), s3, default=90)
    assert (out["width"], out["height"], out["degrees"]) == (w, h, 180)
    assert default_degrees({"ROTATE_DEGREES": "45"}) == 45.0
    for bad in ("90", 1000, True):
        with pytest.raises(swl_errors.InvalidInput):
            rotate(step_event(original, rotate_degrees=bad), s3)


def test_resize_by_input_or_default(s3, original):
    out = resize(step_event(original), s3, default=(224, 224))
    assert load(s3, out["image"]).size == (224, 224) and out["size"] == [224, 224]
    out = resize(step_event(original, resize_width=64, resize_height=32), s3)
    assert load(s3, out["image"]).size == (64, 32)
    assert default_size({"RESIZE_WIDTH": "100", "RESIZE_HEIGHT": "50"}) == (100, 50)
    for bad in ({"resize_width": 0}, {"resize_height": 10_000}, {"resize_width": "64"}):
        with pytest.raises(swl_errors.InvalidInput):
            resize(step_event(original, **bad), s3)


def test_steps_refuse_missing_input_objects(s3):
    event = {"image_id": "gone", "image": {"bucket": BUCKET, "key": "processed/gone/original.png"}}
    for step in (grayscale, flip, rotate, resize):
        with pytest.raises(swl_errors.ImageObjectMissing):
            step(event, s3)


def test_the_chain_through_the_handlers(s3, monkeypatch, capsys):
    """The five handlers as Step Functions calls them: each result's pointer feeds the next."""
    monkeypatch.setenv("ROTATE_DEGREES", "270")
    _, event = put_sample(s3, "rocket")
    capsys.readouterr()
    state = load_handler("fetch_image").handler(event, None)
    keys, calls = [state["image"]["key"]], aws_calls_lines(capsys.readouterr().out)
    for name in ("grayscale", "flip", "rotate", "resize"):
        state = load_handler(name).handler({"image_id": "id-rocket", "image": state["image"]}, None)
        keys.append(state["image"]["key"])
        calls += aws_calls_lines(capsys.readouterr().out)
    # each step reads its input and writes its output once: the S3 requests the cost model counts
    assert calls == [{"calls": {"s3:GetObject": 1, "s3:PutObject": 1}, "capacity_units": {}}] * 5, calls
    assert keys == [f"processed/id-rocket/{s}.png" for s in ("original", "grayscale", "flip", "rotate", "resize")]
    assert state["size"] == [224, 224] and load(s3, state["image"]).mode == "L"
    assert set(state) >= {"image_id", "image", "width", "height", "mode", "ms"}


@pytest.mark.parametrize(
    "sample, options",
    [("rocket", {}), ("chelsea", {"flip": "vertical", "rotate_degrees": 33.5}), ("coffee", {"resize_width": 97})],
)
def test_fused_preprocess_is_pixel_equal_to_the_four_steps(s3, capsys, sample, options):
    """The fused variant reads once and writes once, and its image is the step chain's, pixel for pixel."""
    _, event = put_sample(s3, sample)
    original = fetch_image(event, s3)
    state = original
    for step in (grayscale, flip, rotate, resize):
        state = step(step_event(state, **options), s3)
    capsys.readouterr()
    fused = load_handler("preprocess").handler(step_event(original, **options), None)
    calls = aws_calls_lines(capsys.readouterr().out)
    assert calls == [{"calls": {"s3:GetObject": 1, "s3:PutObject": 1}, "capacity_units": {}}]
    assert fused["image"]["key"] == f"processed/id-{sample}/preprocess.png"
    chained, together = load(s3, state["image"]), load(s3, fused["image"])
    assert (together.mode, together.size) == (chained.mode, chained.size)
    assert together.tobytes() == chained.tobytes()
    assert {k: fused[k] for k in ("width", "height", "mode")} == {k: state[k] for k in ("width", "height", "mode")}


def test_fused_preprocess_checks_options_and_reads_its_defaults(s3, original):
    assert defaults_from_env({"FLIP_DIRECTION": "vertical", "ROTATE_DEGREES": "45", "RESIZE_WIDTH": "64"}) == Defaults(
        "vertical", 45.0, (64, 224)
    )
    out = preprocess(step_event(original), s3, Defaults(rotate_degrees=0, size=(32, 16)))
    assert (out["width"], out["height"], out["direction"], out["degrees"]) == (32, 16, "horizontal", 0)
    for bad in ({"flip": "diagonal"}, {"rotate_degrees": "90"}, {"resize_width": 0}):
        with pytest.raises(swl_errors.InvalidInput):
            preprocess(step_event(original, **bad), s3)
