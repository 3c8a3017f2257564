"""Update: record the classification on the image's item (status CLASSIFIED)."""

from __future__ import annotations

from typing import Any, Mapping

import swl_env
from swl_ddb import now_iso, update_existing
from swl_errors import InvalidInput
from swl_event import image_id_of


def table_from_env(env: Mapping[str, str] | None = None) -> str:
    return swl_env.get_str("TABLE", env=env)


def update(event: Mapping[str, Any], ddb: Any, table: str) -> dict[str, Any]:
    """Event: ``{"image_id", "result": <aggregate output>, "timings_ms": {step: ms}}``; returns the workflow's answer."""
    image_id = image_id_of(event)
    result, timings = event.get("result"), event.get("timings_ms") or {}
    if not isinstance(result, Mapping) or "consensus" not in result:
        raise InvalidInput("result must be the Aggregate output (with consensus)")
    stamp = now_iso()
    fields = {
        "status": "CLASSIFIED",
        "consensus": result["consensus"],
        "labels": result["labels"],
        "models_contributing": result["contributing"],
        "models_failed": result["failed"],
        "weights": result["weights"],
        "timings_ms": {**timings, **{f"inference_{m}": ms for m, ms in result.get("inference_ms", {}).items()}},
        "classified_at": stamp,
        "updated_at": stamp,
    }
    if isinstance(event.get("execution_name"), str):  # which execution set this status (GET /images/{id})
        fields["execution_name"] = event["execution_name"]
    update_existing(ddb, table, image_id, fields)
    return {"image_id": image_id, **{k: v for k, v in fields.items() if k != "updated_at"}}
