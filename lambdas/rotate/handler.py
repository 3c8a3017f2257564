"""Lambda entry point of the Rotate state (Workflow 2)."""

import boto3

import swl_log
from rotate import rotate, default_degrees

S3 = boto3.client("s3")
DEFAULT_DEGREES = default_degrees()


def handler(event, context):
    result = rotate(event, S3, DEFAULT_DEGREES)
    swl_log.log("rotate", image_id=result["image_id"], key=result["image"]["key"], ms=result["ms"],
                request_id=getattr(context, "aws_request_id", None))
    return result
