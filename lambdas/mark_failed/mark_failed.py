"""MarkFailed: the failure path records status FAILED with the error on the image's item."""

from __future__ import annotations

from typing import Any, Mapping

import swl_env
from swl_ddb import now_iso, update_existing
from swl_errors import error_message
from swl_event import image_id_of


def table_from_env(env: Mapping[str, str] | None = None) -> str:
    return swl_env.get_str("TABLE", env=env)


def mark_failed(event: Mapping[str, Any], ddb: Any, table: str) -> dict[str, Any]:
    """Event: ``{"image_id", "error": {"Error", "Cause"}}`` (a Catch's ResultPath)."""
    image_id = image_id_of(event)
    caught = event.get("error") if isinstance(event.get("error"), Mapping) else {}
    error = str(caught.get("Error") or "UnknownError")[:256]
    cause = error_message(caught.get("Cause", ""))
    stamp = now_iso()
    fields = {"status": "FAILED", "error": error, "error_cause": cause, "failed_at": stamp, "updated_at": stamp}
    if isinstance(event.get("execution_name"), str):  # which execution set this status (GET /images/{id})
        fields["execution_name"] = event["execution_name"]
    update_existing(ddb, table, image_id, fields)
    return {"image_id": image_id, "status": "FAILED", "error": error, "cause": cause}
