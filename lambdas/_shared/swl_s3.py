"""Images in S3 passed by pointer ``{"bucket": ..., "key": ...}`` between steps."""

from __future__ import annotations

import io
from typing import Any, Mapping

from PIL import Image
from swl_errors import ImageObjectMissing, InvalidImage, InvalidInput

# Formats the workflow accepts (ingest checks the same list).
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
MAX_PIXELS = 50_000_000
# The PNGs the steps write under processed/ are transient (each is read once, by the next step):
# zlib level 1 encodes a 512x512 RGB image in about a third of the time of Pillow's default (6)
# for ~8 % more bytes. Lossless either way: the pixels the next step reads are the same.
PNG_COMPRESS_LEVEL = 1


def pointer(value: Any, what: str = "image") -> dict[str, str]:
    """Validate and normalise a pointer; raise InvalidInput on a bad shape."""
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what} must be an object with bucket and key, got {type(value).__name__}")
    bucket, key = value.get("bucket"), value.get("key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise InvalidInput(f"{what} must have non-empty string bucket and key, got {dict(value)!r}")
    return {"bucket": bucket, "key": key}


def processed_key(image_id: str, step: str) -> str:
    return f"processed/{image_id}/{step}.png"


def read_bytes(s3: Any, ptr: Mapping[str, str]) -> bytes:
    try:
        return s3.get_object(Bucket=ptr["bucket"], Key=ptr["key"])["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise ImageObjectMissing(f"s3://{ptr['bucket']}/{ptr['key']} does not exist") from None
    except s3.exceptions.NoSuchBucket:
        raise ImageObjectMissing(f"bucket {ptr['bucket']} does not exist") from None


def decode(data: bytes, where: str = "image") -> Image.Image:
    """Decode fully (so a truncated file fails here, not later)."""
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        if image.width * image.height > MAX_PIXELS:
            raise InvalidImage(f"{where} has {image.width}x{image.height} pixels, more than {MAX_PIXELS}")
        image.load()
        return image
    except InvalidImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"{where} is not a decodable image: {exc}") from None


def read_image(s3: Any, ptr: Mapping[str, str]) -> Image.Image:
    ptr = pointer(ptr)
    return decode(read_bytes(s3, ptr), f"s3://{ptr['bucket']}/{ptr['key']}")


def write_png(s3: Any, image: Image.Image, bucket: str, key: str) -> dict[str, str]:
    """Store ``image`` as a PNG at the fast compression level (``PNG_COMPRESS_LEVEL``); returns its pointer."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue(), ContentType="image/png")
    return {"bucket": bucket, "key": key}
