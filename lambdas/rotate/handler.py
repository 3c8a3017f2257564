"""Lambda entry point of the Rotate state (Workflow 2)."""

import boto3

import swl_step
from rotate import rotate, default_degrees

S3 = boto3.client("s3")
DEFAULT_DEGREES = default_degrees()


def handler(event, context):
    result = rotate(event, S3, DEFAULT_DEGREES)
    return swl_step.log_result("rotate", result, context)
