"""Lambda entry point of the resnet branch (ONNX Runtime variant) of the Parallel state (Workflow 2)."""

import boto3
import swl_infer
import swl_log
from resnet_onnx import MODEL, classify

CONFIG = swl_infer.config_from_env()
S3 = swl_log.watch_calls(boto3.client("s3"))
swl_infer.preload(MODEL, CONFIG, S3)  # ONNX Runtime and the model load at init: the cold cost is in Init Duration


@swl_log.reports_calls
def handler(event, context):
    return swl_infer.log_result(MODEL, classify(event, CONFIG, S3))
