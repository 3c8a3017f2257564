"""Lambda entry point of the Resize state (Workflow 2)."""

import boto3
import swl_log
import swl_step
from resize import default_size, resize

S3 = swl_log.watch_calls(boto3.client("s3"))
DEFAULT_SIZE = default_size()


@swl_log.reports_calls
def handler(event, context):
    result = resize(event, S3, DEFAULT_SIZE)
    return swl_step.log_result("resize", result, context)
