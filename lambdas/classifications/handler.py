"""Lambda entry point of the asynchronous classification API (POST /classifications, GET /images/{image_id})."""

import boto3
import swl_log
from classifications import config_from_env, handle

CONFIG = config_from_env()
DYNAMODB = swl_log.watch_calls(boto3.client("dynamodb"))
STATES = boto3.client("stepfunctions")


@swl_log.reports_calls
def handler(event, context):
    result = handle(event, CONFIG, DYNAMODB, STATES)
    swl_log.log(
        "classifications",
        route=f"{event.get('httpMethod')} {event.get('resource')}",
        status=result["statusCode"],
        request_id=getattr(context, "aws_request_id", None),
    )
    return result
