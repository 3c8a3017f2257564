"""Rotate: counter-clockwise by an angle from the execution input or ROTATE_DEGREES (canvas expanded)."""

from __future__ import annotations

from typing import Any, Mapping

import swl_env
from swl_event import options_of
from swl_step import run_step
from swl_transforms import rotate_transform


def default_degrees(env: Mapping[str, str] | None = None) -> float:
    return swl_env.get_float("ROTATE_DEGREES", 90.0, env)


def rotate(event: Mapping[str, Any], s3: Any, default: float = 90.0) -> dict[str, Any]:
    return run_step(event, s3, "rotate", rotate_transform(options_of(event), default))
