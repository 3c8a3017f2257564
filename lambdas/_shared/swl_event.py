"""Fields every Workflow 2 event carries (no third-party imports: bundled into every zip)."""

from __future__ import annotations

import re
from typing import Any, Mapping

from swl_errors import InvalidInput

_IMAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def image_id_of(event: Any) -> str:
    image_id = event.get("image_id") if isinstance(event, Mapping) else None
    if not isinstance(image_id, str) or not _IMAGE_ID.match(image_id):
        raise InvalidInput(f"image_id must be 1-128 characters of [A-Za-z0-9_-], got {image_id!r}")
    return image_id


def options_of(event: Mapping[str, Any]) -> Mapping[str, Any]:
    options = event.get("options") or {}
    if not isinstance(options, Mapping):
        raise InvalidInput(f"options must be an object, got {type(options).__name__}")
    return options
