"""Helpers of the e2e tier (imported by its test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from swlab.provision.outputs import DeployOutputs


def post(url: str, body: object, key: str | None, timeout_s: float = 120) -> tuple[int, dict]:
    """POST ``body`` as JSON with the API key (if any); (status, JSON answer) also for 4xx/5xx."""
    headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {})}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def item(aws: Any, stack: DeployOutputs, image_id: str) -> dict:
    """The image's DynamoDB item (attribute-value form), {} if there is none."""
    return (
        aws("dynamodb")
        .get_item(TableName=stack.table, Key={"image_id": {"S": image_id}}, ConsistentRead=True)
        .get("Item", {})
    )


def keys(aws: Any, stack: DeployOutputs, prefix: str) -> list[str]:
    pages = aws("s3").get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def environments(endpoint_url: str) -> list[dict]:
    """The local cloud's Lambda execution environments (GET /_localcloud/lambda)."""
    with urllib.request.urlopen(endpoint_url + "/_localcloud/lambda", timeout=10) as resp:
        return json.loads(resp.read())["environments"]
