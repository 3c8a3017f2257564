"""Grayscale: one luminance channel (ITU-R 601-2, Pillow's "L" conversion)."""

from __future__ import annotations

from typing import Any, Mapping

from PIL import Image
from swl_step import run_step
from swl_transforms import grayscale_transform


def to_grayscale(image: Image.Image) -> tuple[Image.Image, dict[str, Any]]:
    return grayscale_transform()(image)


def grayscale(event: Mapping[str, Any], s3: Any) -> dict[str, Any]:
    return run_step(event, s3, "grayscale", to_grayscale)
