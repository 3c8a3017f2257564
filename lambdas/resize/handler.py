"""Lambda entry point of the Resize state (Workflow 2)."""

import boto3

import swl_log
from resize import resize, default_size

S3 = boto3.client("s3")
DEFAULT_SIZE = default_size()


def handler(event, context):
    result = resize(event, S3, DEFAULT_SIZE)
    swl_log.log("resize", image_id=result["image_id"], key=result["image"]["key"], ms=result["ms"],
                request_id=getattr(context, "aws_request_id", None))
    return result
