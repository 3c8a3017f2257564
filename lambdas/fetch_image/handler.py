"""Lambda entry point of the FetchImage state (Workflow 2)."""

import boto3

import swl_step
from fetch_image import fetch_image

S3 = boto3.client("s3")


def handler(event, context):
    result = fetch_image(event, S3)
    return swl_step.log_result("fetch_image", result, context)
