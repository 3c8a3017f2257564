"""The common shape of the Workflow 2 image steps (fetch_image, grayscale, flip, rotate, resize).

Event in: ``{"image_id": str, "image": {"bucket", "key"}, "options": {...}?}``.
Result out (small, pointers only): ``{"image_id", "image": {"bucket", "key"},
"width", "height", "mode", "ms", ...step parameters}``; the output object is
``processed/<image_id>/<step>.png`` in the input's bucket.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import swl_log
from PIL import Image
from swl_event import image_id_of
from swl_image import to_8bit
from swl_log import Timer
from swl_s3 import pointer, processed_key, read_image, write_png

Transform = Callable[[Image.Image], tuple[Image.Image, dict[str, Any]]]


def run_step(event: Mapping[str, Any], s3: Any, step: str, transform: Transform) -> dict[str, Any]:
    """Read the input image (as 8-bit L or RGB, swl_image), transform it, write ``processed/<id>/<step>.png``."""
    image_id = image_id_of(event)
    source = pointer(event.get("image"))
    with Timer() as timer:
        image, params = transform(to_8bit(read_image(s3, source), f"s3://{source['bucket']}/{source['key']}"))
        out = write_png(s3, image, source["bucket"], processed_key(image_id, step))
    return {
        "image_id": image_id,
        "image": out,
        "width": image.width,
        "height": image.height,
        "mode": image.mode,
        "ms": timer.ms,
        **params,
    }


def log_result(step: str, result: Mapping[str, Any], context: Any) -> Mapping[str, Any]:
    """One structured log line per step invocation (what every image step's handler logs); returns ``result``."""
    swl_log.log(
        step,
        image_id=result["image_id"],
        key=result["image"]["key"],
        ms=result["ms"],
        request_id=getattr(context, "aws_request_id", None),
    )
    return result
