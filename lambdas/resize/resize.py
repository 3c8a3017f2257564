"""Resize: to the models' input size, from the execution input or RESIZE_WIDTH / RESIZE_HEIGHT."""

from __future__ import annotations

from typing import Any, Mapping

import swl_env
from PIL import Image
from swl_errors import InvalidInput
from swl_event import options_of
from swl_step import run_step

MAX_SIDE = 4096


def default_size(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    return (swl_env.get_int("RESIZE_WIDTH", 224, env, minimum=1), swl_env.get_int("RESIZE_HEIGHT", 224, env, minimum=1))


def resize(event: Mapping[str, Any], s3: Any, default: tuple[int, int] = (224, 224)) -> dict[str, Any]:
    options = options_of(event)
    size = (options.get("resize_width", default[0]), options.get("resize_height", default[1]))
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE for v in size):
        raise InvalidInput(f"resize_width/resize_height must be integers in [1, {MAX_SIDE}], got {size!r}")

    def transform(image: Image.Image) -> tuple[Image.Image, dict[str, Any]]:
        return image.resize(size, resample=Image.Resampling.BILINEAR), {"size": list(size)}

    return run_step(event, s3, "resize", transform)
