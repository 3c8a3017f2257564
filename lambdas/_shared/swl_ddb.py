"""DynamoDB helpers for the functions that update an image's item (update, mark_failed)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

from boto3.dynamodb.types import TypeSerializer

_SERIALIZER = TypeSerializer()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _decimals(value: Any) -> Any:
    """DynamoDB numbers are Decimals; floats are rounded to 6 places on the way in."""
    if isinstance(value, float):
        return Decimal(str(round(value, 6)))
    if isinstance(value, Mapping):
        return {str(k): _decimals(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_decimals(v) for v in value]
    return value


def to_attribute(value: Any) -> dict[str, Any]:
    return _SERIALIZER.serialize(_decimals(value))


def update_existing(ddb: Any, table: str, image_id: str, fields: Mapping[str, Any]) -> None:
    """SET every field on the item, only if the item exists (ConditionalCheckFailed otherwise)."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": to_attribute(value) for i, value in enumerate(fields.values())}
    ddb.update_item(
        TableName=table,
        Key={"image_id": {"S": image_id}},
        UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
        ConditionExpression="attribute_exists(image_id)",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
        ReturnConsumedCapacity="TOTAL",  # the units it cost, for the lab's cost model (swl_log)
    )
