"""Lambda entry point of the Update state (Workflow 2)."""

import boto3
import swl_log
from update import table_from_env, update

TABLE = table_from_env()
DYNAMODB = swl_log.watch_calls(boto3.client("dynamodb"))


@swl_log.reports_calls
def handler(event, context):
    result = update(event, DYNAMODB, TABLE)
    swl_log.log("update", image_id=result["image_id"], status=result["status"], consensus=result["consensus"])
    return result
