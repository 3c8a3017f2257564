"""Rotate: counter-clockwise by an angle from the execution input or ROTATE_DEGREES (canvas expanded)."""

from __future__ import annotations

from typing import Any, Mapping

import swl_env
from PIL import Image
from swl_errors import InvalidInput
from swl_event import options_of
from swl_step import run_step


def default_degrees(env: Mapping[str, str] | None = None) -> float:
    return swl_env.get_float("ROTATE_DEGREES", 90.0, env)


def rotate(event: Mapping[str, Any], s3: Any, default: float = 90.0) -> dict[str, Any]:
    degrees = options_of(event).get("rotate_degrees", default)
    if isinstance(degrees, bool) or not isinstance(degrees, (int, float)) or not -360 <= degrees <= 360:
        raise InvalidInput(f"rotate_degrees must be a number in [-360, 360], got {degrees!r}")

    def transform(image: Image.Image) -> tuple[Image.Image, dict[str, Any]]:
        return image.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=True), {"degrees": degrees}

    return run_step(event, s3, "rotate", transform)
