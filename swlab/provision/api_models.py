"""Request validation of the REST API, as deployed on AWS: a model, a request validator, gateway responses.

``POST /classify`` has a body validator with the model ``ClassifyRequest`` (JSON Schema draft 4): an object
with a well-formed ``image_id`` (32 lowercase hex digits, what ingest issues) and optional known
``options``, nothing else. API Gateway refuses anything else — malformed JSON, an array, a bad id, extra
fields (so a 7 MB body cannot reach Step Functions) — with 400 before any execution starts. ``POST
/ingest`` is validated by its function (reasons per field, 413 over 16 KB), so it has no model.

The API's gateway responses ``BAD_REQUEST_BODY`` and ``REQUEST_TOO_LARGE`` (10 MB, or over Lambda's 6 MB
payload on the proxy route) answer in the functions' error shape ``{"error", "message", "reason"}``.
"""

from __future__ import annotations

import json
from typing import Any

from swlab.provision.awserrors import error_code

CLASSIFY_MODEL = "ClassifyRequest"
BODY_VALIDATOR = "body"
IMAGE_ID_PATTERN = "^[0-9a-f]{32}$"

CLASSIFY_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": CLASSIFY_MODEL,
    "type": "object",
    "required": ["image_id"],
    "additionalProperties": False,
    "properties": {
        "image_id": {"type": "string", "pattern": IMAGE_ID_PATTERN},
        "options": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "flip": {"type": "string", "enum": ["horizontal", "vertical"]},
                "rotate_degrees": {"type": "number", "minimum": -360, "maximum": 360},
                "resize_width": {"type": "integer", "minimum": 1, "maximum": 4096},
                "resize_height": {"type": "integer", "minimum": 1, "maximum": 4096},
            },
        },
    },
}

GATEWAY_RESPONSES: dict[str, dict[str, Any]] = {
    "BAD_REQUEST_BODY": {
        "statusCode": "400",
        "responseTemplates": {
            "application/json": '{"error": "invalid_request_body", "message": $context.error.messageString, '
            '"reason": "$util.escapeJavaScript($context.error.validationErrorString)"}'
        },
    },
    "REQUEST_TOO_LARGE": {
        "statusCode": "413",
        "responseTemplates": {
            "application/json": '{"error": "body_too_large", "message": $context.error.messageString, '
            '"reason": "the request body is larger than this API accepts"}'
        },
    },
}


def ensure_request_validation(apigw: Any, api_id: str) -> tuple[str, list[str]]:
    """The body validator's id, after making the model, the validator and the gateway responses as wanted."""
    changed: list[str] = []
    schema = json.dumps(CLASSIFY_SCHEMA, sort_keys=True)
    models = {m["name"]: m for m in apigw.get_models(restApiId=api_id, limit=500)["items"]}
    have = models.get(CLASSIFY_MODEL)
    if have is not None and have.get("schema") != schema:
        apigw.delete_model(restApiId=api_id, modelName=CLASSIFY_MODEL)
        have = None
    if have is None:
        apigw.create_model(restApiId=api_id, name=CLASSIFY_MODEL, contentType="application/json", schema=schema)
        changed.append(f"model {CLASSIFY_MODEL}")
    validators = apigw.get_request_validators(restApiId=api_id, limit=500)["items"]
    validator = next((v for v in validators if v.get("name") == BODY_VALIDATOR), None)
    if validator is None:
        validator = apigw.create_request_validator(
            restApiId=api_id, name=BODY_VALIDATOR, validateRequestBody=True, validateRequestParameters=False
        )
        changed.append(f"request validator {BODY_VALIDATOR}")
    for kind, wanted in GATEWAY_RESPONSES.items():
        current = _gateway_response(apigw, api_id, kind)
        if current is None or any(current.get(k) != v for k, v in wanted.items()):
            apigw.put_gateway_response(restApiId=api_id, responseType=kind, **wanted)
            changed.append(f"gateway response {kind}")
    return validator["id"], changed


def method_validation(validator_id: str) -> dict[str, Any]:
    """The put_method arguments that validate a body against the classify model."""
    return {"requestValidatorId": validator_id, "requestModels": {"application/json": CLASSIFY_MODEL}}


def _gateway_response(apigw: Any, api_id: str, kind: str) -> dict[str, Any] | None:
    try:
        return dict(apigw.get_gateway_response(restApiId=api_id, responseType=kind))
    except Exception as exc:  # noqa: BLE001 - only "not found" means absent
        if error_code(exc) == "NotFoundException":
            return None
        raise
