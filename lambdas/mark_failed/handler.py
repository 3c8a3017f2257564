"""Lambda entry point of the MarkFailed state (Workflow 2 failure path)."""

import boto3
import swl_log
from mark_failed import mark_failed, table_from_env

TABLE = table_from_env()
DYNAMODB = swl_log.watch_calls(boto3.client("dynamodb"))


@swl_log.reports_calls
def handler(event, context):
    result = mark_failed(event, DYNAMODB, TABLE)
    swl_log.log("mark_failed", level="WARNING", **result)
    return result
