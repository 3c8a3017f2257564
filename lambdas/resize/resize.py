"""Resize: to the models' input size, from the execution input or RESIZE_WIDTH / RESIZE_HEIGHT."""

from __future__ import annotations

from typing import Any, Mapping

import swl_env
from swl_event import options_of
from swl_step import run_step
from swl_transforms import MAX_SIDE, resize_transform

__all__ = ["MAX_SIDE", "default_size", "resize"]


def default_size(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    return (swl_env.get_int("RESIZE_WIDTH", 224, env, minimum=1), swl_env.get_int("RESIZE_HEIGHT", 224, env, minimum=1))


def resize(event: Mapping[str, Any], s3: Any, default: tuple[int, int] = (224, 224)) -> dict[str, Any]:
    return run_step(event, s3, "resize", resize_transform(options_of(event), default))
