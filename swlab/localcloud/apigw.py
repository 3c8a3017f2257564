"""API Gateway REST data plane of the local cloud: the subset the lab uses.

URL scheme (the local cloud has one host, so the API id and stage go in the path)::

    http://127.0.0.1:<port>/restapis/<api_id>/<stage>/_user_request_/<path>

e.g. ``POST http://127.0.0.1:4566/restapis/a1b2c3d4e5/prod/_user_request_/ingest``
answers what AWS answers at ``https://a1b2c3d4e5.execute-api.<region>.amazonaws.com/prod/ingest``.

The configuration is read live from moto's API Gateway backend (resources,
methods, integrations, stages, API keys, usage plans); the route table of an API
is cached and rebuilt when its resources or methods change. Any stage that
exists serves the API's *current* resources (AWS serves the deployment's snapshot).

What happens to a request, in AWS's order:

1. unknown API → 404 ``{"message": "Not Found"}``; unknown stage → 403
   ``{"message": "Forbidden"}``; no resource or method for the path →
   403 ``{"message": "Missing Authentication Token"}``;
2. ``apiKeyRequired``: the ``x-api-key`` header must hold an enabled key that a
   usage plan associates with this API stage, else 403 ``{"message": "Forbidden"}``;
   that plan's throttle (token bucket: ``rateLimit`` per second, ``burstLimit``)
   → 429 ``{"message": "Too Many Requests"}``, its quota (per DAY/WEEK/MONTH,
   UTC) → 429 ``{"message": "Limit Exceeded"}``;
3. the integration:

   * ``AWS_PROXY`` to Lambda (``...:lambda:path/2015-03-31/functions/<arn>/invocations``):
     a proxy event format 1.0 is POSTed to our own Lambda invoke endpoint; the
     function's ``{statusCode, headers, multiValueHeaders, body, isBase64Encoded}``
     becomes the response (validated as AWS does, see :func:`_proxy_reply`; a base64 body is decoded only
     when the first ``Accept`` type matches the API's ``binaryMediaTypes``, and a request body is passed
     base64-encoded only when its ``Content-Type`` does). A function error or a malformed response → 502
     ``{"message": "Internal server error"}``; a failed invoke (throttled, ...)
     → 500 (same message); past the integration timeout (29 s default) → 504
     ``{"message": "Endpoint request timed out"}``.
   * ``AWS`` to a JSON-protocol service action (``arn:aws:apigateway:<region>:states:action/StartSyncExecution``,
     ``.../StartExecution``, ``...:dynamodb:action/GetItem`` ...): the request
     template for the request's content type (default ``application/json``;
     passthrough behaviour WHEN_NO_MATCH / WHEN_NO_TEMPLATES / NEVER as AWS)
     is rendered (subset: :mod:`swlab.localcloud.apigw_vtl`) and sent to our own
     endpoint. The integration response whose ``selectionPattern`` matches the
     service's status code (else the default one) gives the status and, if it
     has an ``application/json`` template, the body (a template's
     ``#set($context.responseOverride.status = N)`` overrides the status); with no integration
     responses configured the service's status and body pass through.
     StartExecution without a ``name`` gets a unique one (moto_patches).
   * ``MOCK``: the request template's ``statusCode`` selects the integration
     response; its template (if any) is the body.
   * anything else (HTTP, HTTP_PROXY, authorizers) → 500, logged as unsupported.

Before the integration (:mod:`swlab.localcloud.apigw_gateway`): a body over 10 MB → 413, a body that fails
the method's request validator and model → 400, each as the API's gateway response; a Lambda proxy whose
invoke is refused for Lambda's payload limit → 413 as well.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Callable, Iterable
from urllib.parse import quote

import urllib3

from swlab.localcloud.apigw_gateway import MAX_BODY_BYTES, body_validation_error, gateway_response
from swlab.localcloud.apigw_request import HttpRequest, RouteTable
from swlab.localcloud.apigw_usage import UsageLimiter
from swlab.localcloud.apigw_vtl import TemplateError, render
from swlab.localcloud.routes import Host, Route

log = logging.getLogger("swlab.localcloud.apigw")

USER_REQUEST = "/_user_request_"
DEFAULT_TIMEOUT_MS = 29_000
_PATH_RE = re.compile(r"^/restapis/(?P<api>[^/]+)/(?P<stage>[^/]+)/_user_request_(?P<path>/.*)?$")
_LAMBDA_URI = re.compile(r":lambda:path/2015-03-31/functions/(?P<fn>.+?)/invocations$")
_ACTION_URI = re.compile(r"^arn:aws[\w-]*:apigateway:(?P<region>[^:]+):(?P<service>[^:]+):action/(?P<action>\w+)$")
# JSON-protocol services an AWS integration can call: X-Amz-Target prefix.
_JSON_TARGETS = {"states": "AWSStepFunctions", "dynamodb": "DynamoDB_20120810"}


@dataclass
class Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]]


def _message(status: int, message: str, error_type: str | None = None) -> Reply:
    headers = [("Content-Type", "application/json")]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return Reply(status, json.dumps({"message": message}).encode(), headers)


def _gateway(api: Any, response_type: str, context: dict[str, Any], validation_error: str = "") -> Reply:
    status, body = gateway_response(api, response_type, context, validation_error)
    return Reply(
        status, body, [("Content-Type", "application/json"), ("x-amzn-ErrorType", _ERROR_TYPES[response_type])]
    )


def _drain(environ: dict) -> None:
    """Read and drop a refused body, so the client is not reset while it is still sending."""
    left = int(environ.get("CONTENT_LENGTH") or 0)
    while left > 0:
        chunk = environ["wsgi.input"].read(min(left, 1 << 20))
        if not chunk:
            return
        left -= len(chunk)


_ERROR_TYPES = {"BAD_REQUEST_BODY": "BadRequestException", "REQUEST_TOO_LARGE": "RequestTooLargeException"}


def mount(cloud: Host) -> None:
    """Register the API Gateway data plane on a :class:`LocalCloud`."""
    plane = ApiGatewayDataPlane(cloud.endpoint_url, cloud.account_id, cloud.region)
    cloud.routes.append(Route("apigateway", plane.matches, plane.wsgi))
    cloud.components.append(plane)


class ApiGatewayDataPlane:
    def __init__(self, endpoint_url: str, account_id: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.account_id = account_id
        self.region = region
        self.http = urllib3.PoolManager(num_pools=4, maxsize=64, retries=False)
        self.limiter = UsageLimiter()
        self._routes: dict[str, tuple[Any, RouteTable]] = {}

    @staticmethod
    def matches(environ: dict) -> bool:
        path = environ.get("PATH_INFO", "")
        return path.startswith("/restapis/") and USER_REQUEST in path

    def shutdown(self) -> None:
        self.http.clear()

    # -- WSGI ---------------------------------------------------------------------------
    def wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        try:
            reply = self.handle(environ, request_id)
        except Exception:  # noqa: BLE001 - a bug here must still answer like AWS
            log.exception("API Gateway request %s failed", request_id)
            reply = _message(500, "Internal server error")
        headers = [*reply.headers, ("x-amzn-RequestId", request_id), ("Content-Length", str(len(reply.body)))]
        start_response(f"{reply.status} {_reason(reply.status)}", headers)
        return [reply.body]

    def handle(self, environ: dict, request_id: str) -> Reply:
        match = _PATH_RE.match(environ.get("PATH_INFO", ""))
        if not match:
            return _message(404, "Not Found")
        api = self._find_api(match["api"])
        if api is None:
            return _message(404, "Not Found")
        stage = api.stages.get(match["stage"])
        if stage is None:
            return _message(403, "Forbidden", "ForbiddenException")
        if int(environ.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            _drain(environ)
            return _gateway(api, "REQUEST_TOO_LARGE", {})
        request = HttpRequest.from_environ(environ, match["path"] or "/", stage.name, request_id)
        request.account_id = self.account_id
        found = self._route_table(api).find(request.path)
        method = found and (found[0].resource_methods.get(request.method) or found[0].resource_methods.get("ANY"))
        if not method or not found:
            return _message(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        resource, request.path_params = found
        request.resource_path, request.resource_id = resource.get_path(), resource.id
        if method.api_key_required:
            denied = self._check_api_key(api, stage.name, request)
            if denied:
                return denied
        invalid = body_validation_error(api, method, request.header("content-type"), request.body)
        if invalid is not None:
            return _gateway(api, "BAD_REQUEST_BODY", request.context(api.id), invalid)
        integration = method.method_integration
        if integration is None:
            log.error("%s %s has no integration", request.method, request.resource_path)
            return _message(500, "Internal server error")
        request.stage_variables = dict(stage.variables or {})
        return self._integrate(api, integration, request)

    def _integrate(self, api: Any, integration: Any, request: HttpRequest) -> Reply:
        kind = integration.integration_type
        try:
            if kind == "AWS_PROXY" and _LAMBDA_URI.search(integration.uri or ""):
                return self._lambda_proxy(api, integration, request)
            if kind == "AWS" and _ACTION_URI.match(integration.uri or ""):
                return self._aws_action(api, integration, request)
            if kind == "MOCK":
                return self._mock(api, integration, request)
        except TemplateError as exc:
            log.error("mapping template of %s %s: %s", request.method, request.resource_path, exc)
            return _message(500, "Internal server error")
        log.error(
            "unsupported integration %s %r on %s %s", kind, integration.uri, request.method, request.resource_path
        )
        return _message(500, "Internal server error")

    # -- configuration ----------------------------------------------------------------
    def _find_api(self, api_id: str) -> Any:
        from moto.apigateway.models import apigateway_backends

        regions = apigateway_backends[self.account_id]
        for region in (self.region, *[r for r in list(regions.keys()) if r != self.region]):
            api = regions[region].apis.get(api_id)
            if api is not None:
                return api
        return None

    def _route_table(self, api: Any) -> RouteTable:
        fingerprint = tuple((rid, r.path_part, r.parent_id) for rid, r in list(api.resources.items()))
        cached = self._routes.get(api.id)
        if cached is None or cached[0] != fingerprint:
            cached = (fingerprint, RouteTable([(r.get_path(), r) for r in list(api.resources.values())]))
            self._routes[api.id] = cached
        return cached[1]

    def _check_api_key(self, api: Any, stage: str, request: HttpRequest) -> Reply | None:
        from moto.apigateway.models import apigateway_backends

        value = request.header("x-api-key")
        backend = apigateway_backends[self.account_id][api.region_name]
        key = next((k for k in list(backend.keys.values()) if value and k.value == value), None)
        if key is None or not _enabled(key.enabled):
            return _message(403, "Forbidden", "ForbiddenException")
        for plan in list(backend.usage_plans.values()):
            on_stage = any(s.get("apiId") == api.id and s.get("stage") == stage for s in plan.api_stages or [])
            if on_stage and key.id in backend.usage_plan_keys.get(plan.id, {}):
                request.api_key, request.api_key_id = key.value, key.id
                verdict = self.limiter.admit(plan.id, key.id, plan.throttle or {}, plan.quota or {})
                return None if verdict is None else _message(429, verdict)
        return _message(403, "Forbidden", "ForbiddenException")

    # -- integrations -----------------------------------------------------------------
    def _lambda_proxy(self, api: Any, integration: Any, request: HttpRequest) -> Reply:
        function = _must(_LAMBDA_URI.search(integration.uri), integration.uri)["fn"]
        event = request.proxy_event(api.id, binary_type(request.header("content-type"), api.binaryMediaTypes or ()))
        try:
            resp = self.http.request(
                "POST",
                f"{self.endpoint_url}/2015-03-31/functions/{quote(function, safe='')}/invocations",
                body=json.dumps(event).encode(),
                headers=_aws_headers(
                    "lambda",
                    self.region,
                    {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"},
                ),
                timeout=urllib3.Timeout(connect=5, read=_timeout_s(integration)),
            )
        except urllib3.exceptions.ReadTimeoutError:
            return _message(504, "Endpoint request timed out")
        if resp.status == 413:  # the event is over Lambda's payload limit: AWS answers REQUEST_TOO_LARGE
            return _gateway(api, "REQUEST_TOO_LARGE", request.context(api.id))
        if resp.status != 200:
            log.warning("Lambda invoke of %s answered %s: %s", function, resp.status, resp.data[:300])
            return _message(500, "Internal server error")
        if resp.headers.get("X-Amz-Function-Error"):
            return _message(502, "Internal server error")
        reply = _proxy_reply(resp.data, api.binaryMediaTypes or (), request.header("accept"))
        if reply is None:
            log.warning("Malformed Lambda proxy response from %s: %s", function, resp.data[:300])
        return reply or _message(502, "Internal server error")

    def _aws_action(self, api: Any, integration: Any, request: HttpRequest) -> Reply:
        uri = _must(_ACTION_URI.match(integration.uri), integration.uri)
        target = _JSON_TARGETS.get(uri["service"])
        if target is None:
            raise TemplateError(f"AWS integration to service {uri['service']!r} is not supported")
        body = _request_body(integration, request, api.id)
        if body is None:
            return _message(415, "Unsupported Media Type")
        try:
            json.loads(body or "{}")
        except ValueError as exc:  # what a JSON-protocol service answers to a malformed body
            error = json.dumps({"__type": "SerializationException", "Message": f"Malformed JSON: {exc}"})
            return _integration_reply(integration, request, api.id, 400, error)
        try:
            resp = self.http.request(
                "POST",
                f"{self.endpoint_url}/",
                body=body.encode(),
                headers=_aws_headers(
                    uri["service"],
                    uri["region"],
                    {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"{target}.{uri['action']}"},
                ),
                timeout=urllib3.Timeout(connect=5, read=_timeout_s(integration)),
            )
        except urllib3.exceptions.ReadTimeoutError:
            return _message(504, "Endpoint request timed out")
        return _integration_reply(integration, request, api.id, resp.status, resp.data.decode("utf-8", "replace"))

    def _mock(self, api: Any, integration: Any, request: HttpRequest) -> Reply:
        rendered = _request_body(integration, request, api.id) or "{}"
        try:
            status = int(json.loads(rendered).get("statusCode", 200))
        except (ValueError, AttributeError):
            status = 500
        return _integration_reply(integration, request, api.id, status, "")


# -- helpers --------------------------------------------------------------------------


def _enabled(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _timeout_s(integration: Any) -> float:
    return int(integration.timeout_in_millis or DEFAULT_TIMEOUT_MS) / 1000.0


def _aws_headers(service: str, region: str, extra: dict[str, str]) -> dict[str, str]:
    """Headers for a call to our own endpoint; moto routes by the credential scope's service."""
    day = datetime.now(timezone.utc).strftime("%Y%m%d")
    auth = (
        f"AWS4-HMAC-SHA256 Credential=apigateway/{day}/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
    return {"Authorization": auth, **extra}


def _request_body(integration: Any, request: HttpRequest, api_id: str) -> str | None:
    """The request template's rendering, the raw body (passthrough), or None (415)."""
    templates = integration.request_templates or {}
    content_type = (request.header("content-type") or "application/json").split(";")[0].strip().lower()
    template = templates.get(content_type)
    if template is not None:
        return render(template, request.template_input(api_id))
    behaviour = (integration.passthrough_behaviour or "WHEN_NO_MATCH").upper()
    if behaviour == "NEVER" or (behaviour == "WHEN_NO_TEMPLATES" and templates):
        return None
    return request.body.decode("utf-8", "replace")


def _integration_reply(integration: Any, request: HttpRequest, api_id: str, status: int, body: str) -> Reply:
    responses = integration.integration_responses or {}
    chosen = None
    for response in responses.values():
        if response.selection_pattern and re.fullmatch(response.selection_pattern, str(status)):
            chosen = response
            break
    if chosen is None:
        chosen = next((r for r in responses.values() if not r.selection_pattern), None)
    headers = [("Content-Type", "application/json")]
    if chosen is None:
        if responses:
            return _message(500, "Internal server error")
        return Reply(status, body.encode(), headers)
    template = (chosen.response_templates or {}).get("application/json")
    status = int(chosen.status_code)
    if template:
        data = request.template_input(api_id, body=body)
        body = render(template, data)
        status = int(data.response_override.get("status", status))  # #set($context.responseOverride.status)
    return Reply(status, body.encode(), headers)


_PROXY_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})


def _proxy_reply(payload: bytes, binary_media_types: Iterable[str] = (), accept: str | None = None) -> Reply | None:
    """The Lambda proxy response mapped to HTTP, or None when it is malformed (→ 502), as AWS validates it.

    Malformed: not a JSON object, a key outside the five of the output format, ``headers`` not an object of
    scalars, ``multiValueHeaders`` not an object of lists, a ``statusCode`` that is not an integer, a ``body``
    that is not a string. A missing ``statusCode`` is 200 and a missing body empty. ``headers`` and
    ``multiValueHeaders`` of one name are merged into one list (a pair in both appears once). An
    ``isBase64Encoded`` body is decoded only when the request's first ``Accept`` type matches one of the
    API's ``binaryMediaTypes``; otherwise the base64 text is the body, as on AWS.
    """
    try:
        result = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(result, dict) or not set(result) <= _PROXY_KEYS:
        return None
    single, multi = result.get("headers") or {}, result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or any(isinstance(v, (dict, list)) for v in single.values()):
        return None
    if not isinstance(multi, dict) or any(not isinstance(v, list) for v in multi.values()):
        return None
    try:
        status = int(result.get("statusCode") or 200)
    except (ValueError, TypeError):
        return None
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        return None
    decode = body and result.get("isBase64Encoded") is True and binary_type(accept, binary_media_types)
    try:
        data = base64.b64decode(body or "") if decode else (body or "").encode()
    except ValueError:
        return None
    headers: list[tuple[str, str]] = []
    for name, values in multi.items():
        headers += [(name, _header_text(v)) for v in values]
    for name, value in single.items():
        if (name, _header_text(value)) not in headers:
            headers.append((name, _header_text(value)))
    if not any(h[0].lower() == "content-type" for h in headers):
        headers.append(("Content-Type", "application/json"))
    return Reply(status, data, [h for h in headers if h[0].lower() != "content-length"])


def _header_text(value: Any) -> str:
    return "" if value is None else ("true" if value is True else "false" if value is False else str(value))


def binary_type(accept: str | None, binary_media_types: Iterable[str]) -> bool:
    """Whether the first media type of ``Accept`` (or a ``Content-Type``) matches one of the API's binary media types (``*`` wildcards)."""
    first = (accept or "").split(",")[0].split(";")[0].strip().lower()
    if not first:
        return False
    kind, _, sub = first.partition("/")
    for pattern in binary_media_types:
        p_kind, _, p_sub = pattern.replace("~1", "/").strip().lower().partition("/")
        if p_kind in ("*", kind) and p_sub in ("*", sub):
            return True
    return False


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _must(match: re.Match[str] | None, uri: str) -> re.Match[str]:
    """The match of an integration URI, or the error a deploy of an unsupported URI deserves."""
    if match is None:
        raise TemplateError(f"integration URI {uri!r} is not one the local cloud supports")
    return match
