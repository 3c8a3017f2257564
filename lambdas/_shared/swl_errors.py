"""Errors the Workflow 2 functions raise on purpose.

Step Functions names a Lambda error by its ``errorType``, i.e. the class name,
so these names appear as-is in the execution history, in ``Catch`` blocks and
in the ``error`` attribute that ``mark_failed`` writes.

Standard library only (``aggregate`` imports it and nothing that loads boto3: its cold start at
256 MB, 0.14 of a core, would pay ~0.2 s of CPU for an import it does not use).
"""

from __future__ import annotations

import json
from typing import Any, Mapping


class WorkflowError(Exception):
    """Base class: an unrecoverable problem with this image (retrying will not help)."""


class InvalidInput(WorkflowError):
    """The event does not have the shape the function expects."""


class ImageObjectMissing(WorkflowError):
    """The S3 object named by the metadata does not exist or cannot be read."""


class InvalidImage(WorkflowError):
    """The S3 object is not an image Pillow can decode."""


class ModelFailure(WorkflowError):
    """A model could not be loaded or could not classify the image."""


class NoModelSucceeded(WorkflowError):
    """Every model branch failed, so there is no label to record."""


class ImageNotFound(WorkflowError):
    """No metadata item exists for the image_id."""


def error_message(cause: Any, limit: int = 1000) -> str:
    """The readable part of a Step Functions error cause (a Lambda error payload is JSON)."""
    text = cause if isinstance(cause, str) else json.dumps(cause, default=str)
    try:
        parsed = json.loads(text)
    except (TypeError, ValueError):
        parsed = None
    if isinstance(parsed, Mapping) and "errorMessage" in parsed:
        text = str(parsed["errorMessage"])
    return text[:limit]
