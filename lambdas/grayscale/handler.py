"""Lambda entry point of the Grayscale state (Workflow 2)."""

import boto3
import swl_log
import swl_step
from grayscale import grayscale

S3 = swl_log.watch_calls(boto3.client("s3"))


@swl_log.reports_calls
def handler(event, context):
    result = grayscale(event, S3)
    return swl_step.log_result("grayscale", result, context)
