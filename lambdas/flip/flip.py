"""Flip: mirror the image; direction from the execution input or FLIP_DIRECTION."""

from __future__ import annotations

from typing import Any, Mapping

import swl_env
from PIL import Image, ImageOps
from swl_errors import InvalidInput
from swl_event import options_of
from swl_step import run_step

DIRECTIONS = {"horizontal": ImageOps.mirror, "vertical": ImageOps.flip}


def default_direction(env: Mapping[str, str] | None = None) -> str:
    return swl_env.get_str("FLIP_DIRECTION", "horizontal", env)


def flip(event: Mapping[str, Any], s3: Any, default: str = "horizontal") -> dict[str, Any]:
    direction = options_of(event).get("flip", default)
    if direction not in DIRECTIONS:
        raise InvalidInput(f"flip must be one of {sorted(DIRECTIONS)}, got {direction!r}")

    def transform(image: Image.Image) -> tuple[Image.Image, dict[str, Any]]:
        return DIRECTIONS[direction](image), {"direction": direction}

    return run_step(event, s3, "flip", transform)
