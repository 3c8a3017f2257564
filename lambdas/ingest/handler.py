"""Lambda entry point of Workflow 1 (POST /ingest behind API Gateway, proxy integration)."""

import boto3
import swl_log
from ingest import config_from_env, handle

CONFIG = config_from_env()
S3 = swl_log.watch_calls(boto3.client("s3"))
DYNAMODB = swl_log.watch_calls(boto3.client("dynamodb"))


@swl_log.reports_calls
def handler(event, context):
    result = handle(event, CONFIG, S3, DYNAMODB)
    swl_log.log(
        "ingest", status=result["statusCode"], body=result["body"], request_id=getattr(context, "aws_request_id", None)
    )
    return result
