"""Preprocess (the fused variant): grayscale -> flip -> rotate -> resize in memory, one S3 read and one write.

The same transforms as the four step functions (``swl_transforms``), with the
same options and defaults (FLIP_DIRECTION, ROTATE_DEGREES, RESIZE_WIDTH,
RESIZE_HEIGHT); its output is ``processed/<id>/preprocess.png``, pixel-equal
to the step chain's ``resize.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import swl_env
from swl_event import options_of
from swl_step import run_step
from swl_transforms import chain, flip_transform, grayscale_transform, resize_transform, rotate_transform


@dataclass(frozen=True)
class Defaults:
    flip: str = "horizontal"
    rotate_degrees: float = 90.0
    size: tuple[int, int] = (224, 224)


def defaults_from_env(env: Mapping[str, str] | None = None) -> Defaults:
    return Defaults(
        flip=swl_env.get_str("FLIP_DIRECTION", "horizontal", env),
        rotate_degrees=swl_env.get_float("ROTATE_DEGREES", 90.0, env),
        size=(
            swl_env.get_int("RESIZE_WIDTH", 224, env, minimum=1),
            swl_env.get_int("RESIZE_HEIGHT", 224, env, minimum=1),
        ),
    )


def preprocess(event: Mapping[str, Any], s3: Any, defaults: Defaults = Defaults()) -> dict[str, Any]:
    options = options_of(event)
    transform = chain(
        grayscale_transform(),
        flip_transform(options, defaults.flip),
        rotate_transform(options, defaults.rotate_degrees),
        resize_transform(options, defaults.size),
    )
    return run_step(event, s3, "preprocess", transform)
