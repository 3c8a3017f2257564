"""What API Gateway answers itself, before or instead of the integration: request validation, payload limit,
gateway responses.

* **Payload limit**: a REST API refuses a request body over 10 MB with the ``REQUEST_TOO_LARGE`` gateway
  response (413 ``{"message": "Request Too Long"}``); so does a Lambda proxy integration whose invoke
  Lambda refused for its own payload limit (6 MB synchronous).
* **Request validation** (``requestValidatorId`` with ``validateRequestBody`` and a ``requestModels`` entry
  for the request's content type, ``application/json`` when it has none): the body must parse as JSON and
  satisfy the model's JSON Schema (draft 4, as AWS); otherwise ``BAD_REQUEST_BODY`` (400
  ``{"message": "Invalid request body"}``) and the integration is never called.
* **Gateway responses**: the API's own (``put_gateway_response``) for the type, else its
  ``DEFAULT_4XX``/``DEFAULT_5XX``, else AWS's default; the template sees ``$context.error.message``,
  ``$context.error.messageString`` (the quoted message) and ``$context.error.validationErrorString``.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft4Validator

from swlab.localcloud.apigw_vtl import TemplateInput, render

MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'
# response type → (status, message) as AWS answers them by default
GATEWAY_RESPONSES = {
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
}


def body_validation_error(api: Any, method: Any, content_type: str | None, body: bytes) -> str | None:
    """AWS's ``validationErrorString`` for a body that fails the method's request validator, or None."""
    validator_id = getattr(method, "request_validator_id", None)
    validator = (getattr(api, "request_validators", None) or {}).get(validator_id) if validator_id else None
    if validator is None or not _true(validator.validate_request_body):
        return None
    models = getattr(method, "request_models", None) or {}
    kind = (content_type or "application/json").split(";")[0].strip().lower()
    model_name = models.get(kind) or models.get("application/json")
    model = (getattr(api, "models", None) or {}).get(model_name) if model_name else None
    if model is None or not model.schema:
        return None
    try:
        document = json.loads(body or b"null")
    except ValueError as exc:
        return f"[Invalid JSON: {_no_quotes(str(exc))}]"
    return schema_errors(json.loads(model.schema), document)


def schema_errors(schema: dict[str, Any], document: Any) -> str | None:
    """``[error, error]`` as AWS lists them (draft 4 JSON Schema), or None when the document is valid."""
    errors = sorted(Draft4Validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    return "[" + ", ".join(_describe(e) for e in errors[:5]) + "]"


def gateway_response(
    api: Any, response_type: str, request_context: dict[str, Any], validation_error: str = ""
) -> tuple[int, bytes]:
    """(status, body) of the API's gateway response for ``response_type``."""
    status, message = GATEWAY_RESPONSES[response_type]
    responses = getattr(api, "gateway_responses", None) or {}
    default = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
    own = responses.get(response_type)
    configured = own or responses.get(default)
    template = DEFAULT_TEMPLATE
    if own is not None:
        status = int(own.status_code or status)
    if configured is not None:
        template = (configured.response_templates or {}).get("application/json") or DEFAULT_TEMPLATE
    context = {
        **request_context,
        "error": {
            "message": message,
            "messageString": json.dumps(message),
            "responseType": response_type,
            "validationErrorString": validation_error,
        },
    }
    return status, render(template, TemplateInput(context=context)).encode()


def _describe(error: Any) -> str:
    """One error in the words of AWS's validator (instance values shortened, never echoed whole)."""
    where = "/" + "/".join(str(p) for p in error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        allowed = value if isinstance(value, list) else [value]
        text = f"instance type ({_json_type(instance)}) does not match any allowed primitive type (allowed: {allowed})"
    elif kind == "required":
        missing = sorted(set(value) - set(instance))
        text = f"object has missing required properties ({missing})"
    elif kind == "additionalProperties":
        extra = sorted(set(instance) - set(error.schema.get("properties", {})))
        text = f"object instance has properties which are not allowed by the schema: {extra}"
    elif kind == "pattern":
        text = f"ECMA 262 regex {value} does not match input string {_short(instance)}"
    elif kind == "enum":
        text = f"instance value ({_short(instance)}) not found in enum (possible values: {value})"
    elif kind in ("maximum", "minimum", "maxLength", "minLength"):
        text = f"{kind} {value} violated by {_short(instance)}"
    else:
        text = f"{kind} {_short(value)} violated"
    return _no_quotes(f"{where}: {text}" if where != "/" else text)


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null", float: "number"}
    return "integer" if type(value) is int else names.get(type(value), "unknown")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _no_quotes(text: str) -> str:
    """Quotes out of the reason, so a template can place it inside a JSON string as AWS users do."""
    return text.replace('"', "").replace("'", "").replace("\\", "/")


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
