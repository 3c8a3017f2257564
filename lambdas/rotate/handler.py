"""Lambda entry point of the Rotate state (Workflow 2)."""

import boto3
import swl_log
import swl_step
from rotate import default_degrees, rotate

S3 = swl_log.watch_calls(boto3.client("s3"))
DEFAULT_DEGREES = default_degrees()


@swl_log.reports_calls
def handler(event, context):
    result = rotate(event, S3, DEFAULT_DEGREES)
    return swl_step.log_result("rotate", result, context)
