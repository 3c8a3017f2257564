"""Flip: mirror the image; direction from the execution input or FLIP_DIRECTION."""

from __future__ import annotations

from typing import Any, Mapping

import swl_env
from swl_event import options_of
from swl_step import run_step
from swl_transforms import DIRECTIONS, flip_transform

__all__ = ["DIRECTIONS", "default_direction", "flip"]


def default_direction(env: Mapping[str, str] | None = None) -> str:
    return swl_env.get_str("FLIP_DIRECTION", "horizontal", env)


def flip(event: Mapping[str, Any], s3: Any, default: str = "horizontal") -> dict[str, Any]:
    return run_step(event, s3, "flip", flip_transform(options_of(event), default))
