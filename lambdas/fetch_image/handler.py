"""Lambda entry point of the FetchImage state (Workflow 2)."""

import boto3

import swl_log
from fetch_image import fetch_image

S3 = boto3.client("s3")


def handler(event, context):
    result = fetch_image(event, S3)
    swl_log.log("fetch_image", image_id=result["image_id"], key=result["image"]["key"], ms=result["ms"],
                request_id=getattr(context, "aws_request_id", None))
    return result
