"""Lambda entry point of the Preprocess state (Workflow 2, fused preprocessing variant)."""

import boto3
import swl_log
import swl_step
from preprocess import defaults_from_env, preprocess

S3 = swl_log.watch_calls(boto3.client("s3"))
DEFAULTS = defaults_from_env()


@swl_log.reports_calls
def handler(event, context):
    result = preprocess(event, S3, DEFAULTS)
    return swl_step.log_result("preprocess", result, context)
