"""FetchImage: check the ingested object exists, is what the metadata says, and normalise it to RGB PNG (swl_image)."""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

from swl_errors import InvalidImage
from swl_event import image_id_of
from swl_image import to_rgb
from swl_log import Timer
from swl_s3 import decode, pointer, processed_key, read_bytes, write_png


def fetch_image(event: Mapping[str, Any], s3: Any) -> dict[str, Any]:
    """Event: ``{"image_id", "source": {"bucket", "key"}, "sha256"?}`` (the metadata's S3 location)."""
    image_id = image_id_of(event)
    source = pointer(event.get("source"), "source")
    with Timer() as timer:
        data = read_bytes(s3, source)
        expected = event.get("sha256")
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise InvalidImage(f"s3://{source['bucket']}/{source['key']} does not match the sha256 in its metadata")
        where = f"s3://{source['bucket']}/{source['key']}"
        image = to_rgb(decode(data, where), where)
        out = write_png(s3, image, source["bucket"], processed_key(image_id, "original"))
    return {
        "image_id": image_id,
        "image": out,
        "width": image.width,
        "height": image.height,
        "mode": image.mode,
        "source_bytes": len(data),
        "ms": timer.ms,
    }
