"""The four preprocessing transforms of Workflow 2, shared by the step functions and the fused ``preprocess``.

Each ``*_transform(options, default)`` checks its option (``InvalidInput`` on a
bad value) and returns a :data:`swl_step.Transform`: image -> (image, the step's
parameters). ``grayscale``, ``flip``, ``rotate`` and ``resize`` run one each
(one S3 read and one write per step); ``preprocess`` runs :func:`chain` of the
four in memory (one read, one write), so both variants compute the same pixels.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from PIL import Image, ImageOps
from swl_errors import InvalidInput

Transform = Callable[[Image.Image], tuple[Image.Image, dict[str, Any]]]
DIRECTIONS = {"horizontal": ImageOps.mirror, "vertical": ImageOps.flip}
MAX_SIDE = 4096


def grayscale_transform(options: Mapping[str, Any] | None = None, default: Any = None) -> Transform:
    """One luminance channel (ITU-R 601-2, Pillow's "L" conversion)."""
    return lambda image: (ImageOps.grayscale(image), {})


def flip_transform(options: Mapping[str, Any], default: str = "horizontal") -> Transform:
    direction = options.get("flip", default)
    if direction not in DIRECTIONS:
        raise InvalidInput(f"flip must be one of {sorted(DIRECTIONS)}, got {direction!r}")
    return lambda image: (DIRECTIONS[direction](image), {"direction": direction})


def rotate_transform(options: Mapping[str, Any], default: float = 90.0) -> Transform:
    degrees = options.get("rotate_degrees", default)
    if isinstance(degrees, bool) or not isinstance(degrees, (int, float)) or not -360 <= degrees <= 360:
        raise InvalidInput(f"rotate_degrees must be a number in [-360, 360], got {degrees!r}")
    return lambda image: (
        image.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=True),
        {"degrees": degrees},
    )


def resize_transform(options: Mapping[str, Any], default: tuple[int, int] = (224, 224)) -> Transform:
    size = (options.get("resize_width", default[0]), options.get("resize_height", default[1]))
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE for v in size):
        raise InvalidInput(f"resize_width/resize_height must be integers in [1, {MAX_SIDE}], got {size!r}")
    return lambda image: (image.resize(size, resample=Image.Resampling.BILINEAR), {"size": list(size)})


def chain(*transforms: Transform) -> Transform:
    """The transforms one after the other, in memory; their parameters merged."""

    def run(image: Image.Image) -> tuple[Image.Image, dict[str, Any]]:
        params: dict[str, Any] = {}
        for transform in transforms:
            image, more = transform(image)
            params.update(more)
        return image, params

    return run
