"""The asynchronous classification API (API Gateway proxy integration, payload format 1.0).

* ``POST /classifications {"image_id"}``: marks the item ``CLASSIFYING`` with the
  execution's name (only if the item exists: else 404), starts Workflow 2 with
  ``StartExecution`` and answers ``202 {"image_id", "execution_name",
  "execution_arn", "status", "status_url"}`` (and a ``Location`` header; both relative to
  the request's URL) at once, whatever the workflow takes.
* ``GET /images/{image_id}``: the item's ``status`` (``INGESTED``, ``CLASSIFYING``,
  ``CLASSIFIED``, ``FAILED``), the ``execution_name`` that last changed it,
  ``consensus``/``labels`` once classified, ``error``/``error_cause`` once failed; 404
  if there is no such item. A client polls until ``status`` is terminal and
  ``execution_name`` is its own (the workflow's Update and MarkFailed record it).

Errors: 400 ``bad_json``/``bad_request``/``missing_image_id``, 404 ``not_found``,
405 ``method_not_allowed``, 500 ``start_failed`` (the item is set back to its
previous status).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping
from urllib.parse import quote

import swl_env
from boto3.dynamodb.types import TypeDeserializer
from swl_ddb import now_iso

TERMINAL = ("CLASSIFIED", "FAILED")
SHOWN = ("status", "execution_name", "consensus", "labels", "weights", "error", "error_cause", "updated_at")
_DESERIALIZER = TypeDeserializer()


@dataclass(frozen=True)
class Config:
    table: str
    state_machine_arn: str


def config_from_env(env: Mapping[str, str] | None = None) -> Config:
    return Config(swl_env.get_str("TABLE", env=env), swl_env.get_str("STATE_MACHINE_ARN", env=env))


def _reply(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body, default=_plain, sort_keys=True),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value).__name__)


def _error(status: int, error: str, message: str) -> dict[str, Any]:
    return _reply(status, {"error": error, "message": message})


def status_url(image_id: str) -> str:
    """The status resource as a relative reference (RFC 3986): resolved against the request's URL
    (``.../<stage>/classifications``) it is ``.../<stage>/images/<id>`` on AWS and on the local cloud alike,
    whose URLs differ before the stage."""
    return f"images/{quote(image_id, safe='')}"


def submit(event: Mapping[str, Any], cfg: Config, ddb: Any, sfn: Any) -> dict[str, Any]:
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        return _error(400, "bad_json", 'the body must be JSON: {"image_id": "..."}')
    if not isinstance(body, dict):
        return _error(400, "bad_request", 'the body must be a JSON object: {"image_id": "..."}')
    image_id = body.get("image_id")
    if not isinstance(image_id, str) or not image_id:
        return _error(400, "missing_image_id", "the body needs a non-empty string image_id")
    name = uuid.uuid4().hex
    key = {"image_id": {"S": image_id}}
    try:
        before = ddb.update_item(
            TableName=cfg.table,
            Key=key,
            UpdateExpression="SET #s = :s, execution_name = :e, updated_at = :t",
            ConditionExpression="attribute_exists(image_id)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "CLASSIFYING"}, ":e": {"S": name}, ":t": {"S": now_iso()}},
            ReturnValues="UPDATED_OLD",
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return _error(404, "not_found", f"no image {image_id!r}: ingest it first (POST /ingest)")
    payload = {k: v for k, v in body.items() if k in ("image_id", "options")}
    try:
        started = sfn.start_execution(stateMachineArn=cfg.state_machine_arn, name=name, input=json.dumps(payload))
    except Exception as exc:  # noqa: BLE001 - any failure to start: restore the status, answer 500
        old = (before.get("Attributes") or {}).get("status", {"S": "INGESTED"})
        ddb.update_item(
            TableName=cfg.table,
            Key=key,
            UpdateExpression="SET #s = :s",
            ConditionExpression="execution_name = :e",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": old, ":e": {"S": name}},
        )
        return _error(500, "start_failed", f"the classification could not be started: {exc}")
    return _reply(
        202,
        {
            "image_id": image_id,
            "execution_name": name,
            "execution_arn": started["executionArn"],
            "status": "CLASSIFYING",
            "status_url": status_url(image_id),
        },
        {"Location": status_url(image_id)},
    )


def image_status(event: Mapping[str, Any], cfg: Config, ddb: Any) -> dict[str, Any]:
    image_id = (event.get("pathParameters") or {}).get("image_id") or ""
    item = ddb.get_item(TableName=cfg.table, Key={"image_id": {"S": image_id}}, ConsistentRead=True).get("Item")
    if not item:
        return _error(404, "not_found", f"no image {image_id!r}")
    record = {k: _DESERIALIZER.deserialize(v) for k, v in item.items() if k in SHOWN}
    return _reply(200, {"image_id": image_id, **record, "terminal": record.get("status") in TERMINAL})


def handle(event: Mapping[str, Any], cfg: Config, ddb: Any, sfn: Any) -> dict[str, Any]:
    route = (event.get("httpMethod"), event.get("resource"))
    if route == ("POST", "/classifications"):
        return submit(event, cfg, ddb, sfn)
    if route == ("GET", "/images/{image_id}"):
        return image_status(event, cfg, ddb)
    return _error(405, "method_not_allowed", f"{route[0]} {route[1]} is not served here")
