"""Lambda entry point of the Flip state (Workflow 2)."""

import boto3

import swl_log
from flip import flip, default_direction

S3 = boto3.client("s3")
DEFAULT_DIRECTION = default_direction()


def handler(event, context):
    result = flip(event, S3, DEFAULT_DIRECTION)
    swl_log.log("flip", image_id=result["image_id"], key=result["image"]["key"], ms=result["ms"],
                request_id=getattr(context, "aws_request_id", None))
    return result
