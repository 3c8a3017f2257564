"""Lambda entry point of the Grayscale state (Workflow 2)."""

import boto3

import swl_log
from grayscale import grayscale

S3 = boto3.client("s3")


def handler(event, context):
    result = grayscale(event, S3)
    swl_log.log("grayscale", image_id=result["image_id"], key=result["image"]["key"], ms=result["ms"],
                request_id=getattr(context, "aws_request_id", None))
    return result
