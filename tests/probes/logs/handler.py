"""Log as functions do: a logger.exception traceback (one multi-line record) and output without a newline."""

import logging
import sys

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("logs probe caught %s", context.aws_request_id)
    sys.stdout.write(f"no newline from {context.aws_request_id}")
    return {"ok": True}
