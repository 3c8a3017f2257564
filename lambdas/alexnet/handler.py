"""Lambda entry point of the alexnet branch of the Parallel state (Workflow 2)."""

import boto3

import swl_infer
import swl_log
from alexnet import MODEL, classify

CONFIG = swl_infer.config_from_env()
S3 = boto3.client("s3")


def handler(event, context):
    result = classify(event, CONFIG, S3)
    swl_log.log(MODEL, image_id=result["image_id"], weights=result["weights"], top1=result["top5"][0],
                inference_ms=result["inference_ms"], cold=result["cold"], load_ms=result["load_ms"])
    return result
