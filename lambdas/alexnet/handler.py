"""Lambda entry point of the alexnet branch of the Parallel state (Workflow 2)."""

import boto3

import swl_infer
from alexnet import MODEL, classify

CONFIG = swl_infer.config_from_env()
S3 = boto3.client("s3")


def handler(event, context):
    return swl_infer.log_result(MODEL, classify(event, CONFIG, S3))
