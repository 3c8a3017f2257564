"""Errors the Workflow 2 functions raise on purpose.

Step Functions names a Lambda error by its ``errorType``, i.e. the class name,
so these names appear as-is in the execution history, in ``Catch`` blocks and
in the ``error`` attribute that ``mark_failed`` writes.
"""


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
