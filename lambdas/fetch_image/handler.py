"""Lambda entry point of the FetchImage state (Workflow 2)."""

import boto3
import swl_log
import swl_step
from fetch_image import fetch_image

S3 = swl_log.watch_calls(boto3.client("s3"))


@swl_log.reports_calls
def handler(event, context):
    result = fetch_image(event, S3)
    return swl_step.log_result("fetch_image", result, context)
