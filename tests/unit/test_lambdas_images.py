"""Image conversion in the functions (swl_image): 16-bit, palette, alpha, CMYK, animated -> 8-bit, or a clear refusal.

The same conversion runs in ingest (a check: 400 ``unsupported_image``),
fetch_image (to RGB), the image steps (to L or RGB) and the models'
preprocessing; these tests go through each of them with moto's S3.
"""

from __future__ import annotations

import io
import json

import boto3
import pytest
from lambda_modules import REGION, add_paths, make_stack
from moto import mock_aws
from PIL import Image

add_paths("ingest", "fetch_image", "grayscale", "flip", "alexnet")
import ingest  # noqa: E402
import swl_errors  # noqa: E402
import swl_infer  # noqa: E402
from fetch_image import fetch_image  # noqa: E402
from flip import flip  # noqa: E402
from grayscale import grayscale  # noqa: E402
from urlguard import Fetched  # noqa: E402

pytestmark = pytest.mark.unit
BUCKET, TABLE = "swlab-test-bucket", "swlab-test-images"
WHITE = (255, 255, 255)


# --- image builders (bytes as a client would upload them) ------------------


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def gray16(width: int = 256, height: int = 64) -> Image.Image:
    """A 16-bit grayscale ramp over the whole 0..65535 range (Pillow mode I;16)."""
    image = Image.new("I;16", (width, height))
    image.putdata([round(x * 65535 / (width - 1)) for _ in range(height) for x in range(width)])
    return image


def png16(**params) -> bytes:
    return encode(gray16(), "PNG", **params)


def png16_keyed() -> bytes:
    """16-bit grayscale with a tRNS colour key: a transparency this conversion does not handle."""
    return encode(gray16(), "PNG", transparency=257)


def palette(transparent: bool) -> bytes:
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 2)
    return encode(image, "PNG", **({"transparency": 0} if transparent else {}))


def rgba() -> bytes:
    image = Image.new("RGBA", (4, 4), (0, 0, 255, 255))
    image.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent (its colour is hidden)
    image.putpixel((1, 0), (255, 0, 0, 128))  # half transparent red
    return encode(image)


def la() -> bytes:
    image = Image.new("LA", (4, 4), (0, 255))
    image.putpixel((0, 0), (0, 0))
    return encode(image)


def cmyk() -> bytes:
    return encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=100)


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))]
    extra = {"lossless": True} if fmt == "WEBP" else {}
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **extra)


def bilevel() -> bytes:
    image = Image.new("1", (4, 4), 1)
    image.putpixel((0, 0), 0)
    return encode(image)


# --- helpers ---------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3, ddb = boto3.client("s3", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        make_stack(s3, ddb, BUCKET, TABLE)
        yield s3, ddb


def load(s3, ptr) -> Image.Image:
    image = Image.open(io.BytesIO(s3.get_object(Bucket=ptr["bucket"], Key=ptr["key"])["Body"].read()))
    image.load()
    return image


def fetched(s3, data: bytes) -> Image.Image:
    """``data`` through fetch_image: the normalised original it writes."""
    s3.put_object(Bucket=BUCKET, Key="raw/img.bin", Body=data)
    out = fetch_image({"image_id": "img", "source": {"bucket": BUCKET, "key": "raw/img.bin"}}, s3)
    return load(s3, out["image"])


def pixels(image: Image.Image) -> list:
    return [image.getpixel((x, y)) for y in range(image.height) for x in range(image.width)]


def ramp_expected(x: int, width: int = 256) -> int:
    return round(round(x * 65535 / (width - 1)) * 255 / 65535)


# --- 16-bit ----------------------------------------------------------------


def test_16bit_grayscale_is_scaled_not_clipped_by_fetch_image(aws):
    s3, _ = aws
    image = fetched(s3, png16())
    assert image.mode == "RGB" and image.size == (256, 64)
    values = [image.getpixel((x, 0))[0] for x in range(256)]
    assert all(abs(v - ramp_expected(x)) <= 1 for x, v in enumerate(values)), values[:8]
    white = sum(1 for p in pixels(image) if p == WHITE) / (256 * 64)
    assert white < 0.01  # clipping made 99.6 % of this ramp white


def test_16bit_grayscale_is_scaled_by_the_steps(aws):
    s3, _ = aws
    s3.put_object(Bucket=BUCKET, Key="processed/img/original.png", Body=png16())
    out = grayscale({"image_id": "img", "image": {"bucket": BUCKET, "key": "processed/img/original.png"}}, s3)
    image = load(s3, out["image"])
    assert image.mode == "L"
    assert all(abs(image.getpixel((x, 5)) - ramp_expected(x)) <= 1 for x in range(256))
    out = flip({"image_id": "img", "image": {"bucket": BUCKET, "key": "processed/img/original.png"}}, s3)
    image = load(s3, out["image"])  # mirrored, scaled
    assert image.mode == "L" and abs(image.getpixel((255, 0)) - 0) <= 1 and abs(image.getpixel((127, 0)) - 128) <= 1


def test_16bit_grayscale_is_scaled_for_the_models():
    image = Image.open(io.BytesIO(png16()))
    batch = swl_infer.preprocess(image)
    mid = batch[0, 0, 100, 112] * swl_infer.IMAGENET_STD[0] + swl_infer.IMAGENET_MEAN[0]
    assert mid == pytest.approx(0.5, abs=0.03)  # the middle of the ramp is mid-gray, not white


# --- palette, alpha, CMYK, 1-bit, animated ----------------------------------


def test_palette_without_transparency_keeps_its_colours(aws):
    image = fetched(aws[0], palette(transparent=False))
    assert (image.mode, image.getpixel((0, 0)), image.getpixel((1, 0)), image.getpixel((3, 3))) == (
        "RGB",
        (0, 0, 0),
        (0, 0, 255),
        (255, 0, 0),
    )


def test_palette_transparency_becomes_white_not_its_hidden_colour(aws):
    image = fetched(aws[0], palette(transparent=True))
    assert (image.getpixel((0, 0)), image.getpixel((1, 0)), image.getpixel((3, 3))) == (WHITE, (0, 0, 255), (255, 0, 0))


def test_alpha_is_composited_on_white(aws):
    image = fetched(aws[0], rgba())
    assert image.mode == "RGB" and image.getpixel((0, 0)) == WHITE and image.getpixel((3, 3)) == (0, 0, 255)
    r, g, b = image.getpixel((1, 0))
    assert r == 255 and abs(g - 127) <= 1 and abs(b - 127) <= 1


def test_gray_alpha_is_composited_on_white(aws):
    image = fetched(aws[0], la())
    assert image.getpixel((0, 0)) == WHITE and image.getpixel((2, 2)) == (0, 0, 0)


def test_cmyk_becomes_rgb(aws):
    r, g, b = fetched(aws[0], cmyk()).getpixel((4, 4))
    assert r > 240 and g < 15 and b < 15


def test_bilevel_becomes_black_and_white(aws):
    image = fetched(aws[0], bilevel())
    assert image.getpixel((0, 0)) == (0, 0, 0) and image.getpixel((1, 1)) == WHITE


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_give_their_first_frame(aws, fmt):
    image = fetched(aws[0], animated(fmt))
    r, g, b = image.getpixel((4, 4))
    assert r > 240 and b < 15


def test_the_models_see_alpha_composited_on_white():
    image = Image.open(io.BytesIO(rgba()))
    batch = swl_infer.preprocess(image.resize((224, 224), Image.Resampling.NEAREST))
    stats = zip(swl_infer.IMAGENET_MEAN, swl_infer.IMAGENET_STD)
    top_left = [batch[0, c, 0, 0] * s + m for c, (m, s) in enumerate(stats)]
    assert top_left == pytest.approx([1.0, 1.0, 1.0], abs=1e-3)


# --- refusals ----------------------------------------------------------------


def test_what_cannot_be_converted_is_refused_with_a_reason(aws):
    s3, _ = aws
    with pytest.raises(swl_errors.InvalidImage, match="transparen"):
        fetched(s3, png16_keyed())
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="processed/").get("KeyCount") == 0


@pytest.mark.parametrize("mode, value", [("F", 0.5), ("I", -1), ("I", 70_000), ("HSV", (0, 0, 0))])
def test_modes_without_a_correct_8bit_form_are_refused(mode, value):
    import swl_image

    with pytest.raises(swl_errors.InvalidImage, match=mode):
        swl_image.to_8bit(Image.new(mode, (2, 2), value))


def test_32bit_integer_images_within_16_bits_are_scaled():
    import swl_image

    image = Image.new("I", (2, 1), 65535)
    image.putpixel((0, 0), 32768)
    out = swl_image.to_8bit(image)
    assert out.mode == "L" and (out.getpixel((0, 0)), out.getpixel((1, 0))) == (128, 255)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_8bit_l_and_rgb_pass_unchanged(mode):
    import swl_image

    image = Image.new(mode, (2, 2))
    assert swl_image.to_8bit(image) is image


# --- ingest: accepts what converts, refuses what does not ---------------------


@pytest.mark.parametrize(
    "name, data",
    [
        ("png16", png16()),
        ("palette", palette(True)),
        ("rgba", rgba()),
        ("la", la()),
        ("cmyk", cmyk()),
        ("gif", animated("GIF")),
        ("webp", animated("WEBP")),
        ("apng", animated("PNG")),
    ],
)
def test_ingest_accepts_images_it_can_convert(aws, name, data):
    s3, ddb = aws
    result = ingest.handle(
        {"body": json.dumps({"image_url": "http://images.example/x"})},
        ingest.config_from_env({"BUCKET": BUCKET, "TABLE": TABLE}),
        s3,
        ddb,
        fetcher=lambda u, lim: Fetched(u, data, "image/png", 0),
    )
    assert result["statusCode"] == 201, result


def test_ingest_refuses_an_image_it_cannot_convert(aws):
    s3, ddb = aws
    result = ingest.handle(
        {"body": json.dumps({"image_url": "http://images.example/x"})},
        ingest.config_from_env({"BUCKET": BUCKET, "TABLE": TABLE}),
        s3,
        ddb,
        fetcher=lambda u, lim: Fetched(u, png16_keyed(), "image/png", 0),
    )
    body = json.loads(result["body"])
    assert (result["statusCode"], body["error"]) == (400, "unsupported_image") and "transparen" in body["message"]
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0 and ddb.scan(TableName=TABLE)["Items"] == []
