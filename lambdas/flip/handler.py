"""Lambda entry point of the Flip state (Workflow 2)."""

import boto3
import swl_log
import swl_step
from flip import default_direction, flip

S3 = swl_log.watch_calls(boto3.client("s3"))
DEFAULT_DIRECTION = default_direction()


@swl_log.reports_calls
def handler(event, context):
    result = flip(event, S3, DEFAULT_DIRECTION)
    return swl_step.log_result("flip", result, context)
