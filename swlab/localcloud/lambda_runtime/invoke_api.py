"""The Lambda data plane's HTTP routes, in front of moto's Lambda control plane.

* ``POST /2015-03-31/functions/{name|arn|partial arn}/invocations`` — Invoke
  (RequestResponse, Event → 202 and :mod:`.async_invoke`, DryRun → 204; payload limits and
  JSON checks as AWS; ``X-Amz-Log-Type: Tail``, ``X-Amz-Client-Context``);
  by ``Qualifier`` (query) or a qualified name/ARN: a version, an alias or ``$LATEST``;
* ``/2019-09-30/functions/{name}/provisioned-concurrency`` — :mod:`.provisioned`;
* ``POST /2015-03-31/functions`` (CreateFunction) and ``PUT .../functions/{name}/code``
  (UpdateFunctionCode) — handed on to moto; once it answers 2xx, the package is unzipped
  in the background (AWS prepares a package while the function is ``Pending``), so the
  first invoke does not unzip it (~1 s per 140 MB ONNX package, more when a Parallel
  state's branches start cold together);
* ``/_localcloud/lambda`` — GET lists the environments; DELETE (optionally
  ``?FunctionName=x``) ends idle environments, forcing cold starts.

``mount(cloud)`` builds the :class:`~.dataplane.LambdaDataPlane` from
``cloud.options`` and registers both routes and the plane (its ``shutdown()``) on the cloud.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote

from swlab.localcloud.lambda_runtime.async_invoke import AsyncInvoker
from swlab.localcloud.lambda_runtime.catalog import parse_function_ref, request_region
from swlab.localcloud.lambda_runtime.dataplane import (
    ASYNC_PAYLOAD_LIMIT,
    SYNC_PAYLOAD_LIMIT,
    LambdaDataPlane,
    LambdaOptions,
    Outcome,
    json_error,
)
from swlab.localcloud.lambda_runtime.execution_environment import EnvState, ExecutionEnvironment
from swlab.localcloud.lambda_runtime.provisioned import ProvisionedConcurrency
from swlab.localcloud.lambda_runtime.spec import MIB
from swlab.localcloud.routes import Host, Route

INVOKE_PREFIX = "/2015-03-31/functions/"
INVOKE_SUFFIX = "/invocations"
ADMIN_PATH = "/_localcloud/lambda"
_STATUS_TEXT = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    500: "Internal Server Error",
    429: "Too Many Requests",
}


class InvokeApi:
    """The WSGI apps of the routes; the work is done by ``plane``."""

    def __init__(
        self,
        plane: LambdaDataPlane,
        invoker: AsyncInvoker,
        control_plane: Callable[[dict, Callable], Iterable[bytes]],
    ) -> None:
        self.plane = plane
        self.invoker = invoker
        self.control_plane = control_plane

    @staticmethod
    def matches_code_change(environ: dict) -> bool:
        path, method = environ.get("PATH_INFO", "").rstrip("/"), environ["REQUEST_METHOD"]
        return (method == "POST" and path == INVOKE_PREFIX.rstrip("/")) or (
            method == "PUT" and path.startswith(INVOKE_PREFIX) and path.endswith("/code")
        )

    def code_change_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Moto creates or updates the function; then its package is unzipped in the background."""
        answered: list[str] = []

        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            answered.append(status)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        body = b"".join(self.control_plane(environ, start))
        if answered and answered[0].startswith("2"):
            try:
                arn = str(json.loads(body).get("FunctionArn") or "")
            except ValueError:
                arn = ""
            parts = arn.split(":")
            if len(parts) >= 7 and parts[5] == "function":
                args = (parts[4], parts[3], parts[6])  # account, region, name
                threading.Thread(target=self._prepare, args=args, name="lambda-unzip", daemon=True).start()
        return [body]

    def _prepare(self, account: str, region: str, name: str) -> None:
        try:
            self.plane.catalog.lookup(account, region, name)
        except Exception:  # noqa: BLE001 - the first invoke prepares it again and reports what fails
            pass

    @staticmethod
    def matches_invoke(environ: dict) -> bool:
        path = environ.get("PATH_INFO", "")
        return path.startswith(INVOKE_PREFIX) and path.endswith(INVOKE_SUFFIX) and environ["REQUEST_METHOD"] == "POST"

    @staticmethod
    def matches_admin(environ: dict) -> bool:
        return environ.get("PATH_INFO", "").startswith(ADMIN_PATH)

    def invoke_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return respond(self._handle_invoke(environ), start_response)

    def _handle_invoke(self, environ: dict) -> Outcome:
        ref = unquote(environ["PATH_INFO"][len(INVOKE_PREFIX) : -len(INVOKE_SUFFIX)])
        name, in_ref, account, region = parse_function_ref(ref)
        region = region or request_region(environ, self.plane.region)
        account = account or self.plane.account_id
        in_query = (parse_qs(environ.get("QUERY_STRING", "")).get("Qualifier") or [None])[0]
        if in_ref and in_query and in_ref != in_query:
            return json_error(
                400,
                "InvalidParameterValueException",
                "The derived qualifier from the function name does not match the specified qualifier.",
            )
        qualifier = in_ref or in_query
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length) if length else b""
        try:
            found = self.plane.catalog.lookup(account, region, name, qualifier)
        except ValueError as exc:
            return json_error(400, "InvalidParameterValueException", str(exc))
        arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
        if found is None:
            shown = f"{arn}:{qualifier}" if qualifier else arn
            return json_error(404, "ResourceNotFoundException", f"Function not found: {shown}")
        spec, fn = found
        invoked_arn = f"{arn}:{qualifier}" if qualifier else arn
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        invalid = _invalid_payload(payload, invocation_type)
        if invalid is not None:
            return invalid
        if invocation_type == "DryRun":
            return Outcome(204, [("x-amzn-RequestId", "dryrun")], b"")
        client_context = environ.get("HTTP_X_AMZ_CLIENT_CONTEXT")
        if client_context:
            try:
                client_context = base64.b64decode(client_context).decode("utf-8", "replace")
            except ValueError:
                return json_error(400, "InvalidRequestContentException", "Client context must be base64")
        if invocation_type == "Event":
            request_id = self.invoker.submit(spec, fn, payload or b"{}", client_context, invoked_arn)
            return Outcome(202, [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)], b"")
        tail = environ.get("HTTP_X_AMZ_LOG_TYPE") == "Tail"
        return self.plane.invoke(spec, fn, payload or b"{}", client_context, tail, invoked_arn)

    def admin_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        body: dict[str, Any]
        if method == "DELETE":
            ended = self.plane.end_idle((query.get("FunctionName") or [None])[0])
            body = {"ended": ended}
        else:
            body = {
                "environments": [_describe(e, time.monotonic()) for e in self.plane.pool.snapshot()],
                "options": {k: v for k, v in self.plane.options.__dict__.items()},
            }
        data = json.dumps(body).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def respond(outcome: Outcome, start_response: Callable) -> list[bytes]:
    """Answer ``outcome`` over WSGI."""
    start_response(
        f"{outcome.status} {_STATUS_TEXT.get(outcome.status, 'OK')}",
        outcome.headers + [("Content-Length", str(len(outcome.body)))],
    )
    return [outcome.body]


def _describe(e: ExecutionEnvironment, now: float) -> dict[str, Any]:
    return {
        "id": e.id,
        "function": e.spec.name,
        "version": e.spec.version,
        "provisioned": e.provisioned,
        "state": e.state.value,
        "pid": e.proc.pid if e.proc else None,
        "log_stream": e.log_stream,
        "idle_s": round(now - e.last_used, 3) if e.state is EnvState.IDLE else 0,
        "init_ms": e.init_ms,
        "peak_rss_mb": round(e.peak_rss / MIB, 1),
    }


def _invalid_payload(payload: bytes, invocation_type: str) -> Outcome | None:
    limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
    if len(payload) > limit:
        return json_error(
            413,
            "RequestTooLargeException",
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
        )
    if payload.strip():
        try:
            json.loads(payload)
        except ValueError as exc:
            return json_error(400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}")
    return None


def mount(cloud: Host) -> LambdaDataPlane:
    """Build the data plane from ``cloud.options`` and register its routes and itself on ``cloud``."""
    options = LambdaOptions.from_options(cloud.options)
    plane = LambdaDataPlane(
        options, Path(cloud.work_dir) / "lambda", cloud.endpoint_url, cloud.account_id, cloud.region, cloud.faults
    )
    plane.async_invoker = AsyncInvoker(plane)
    api = InvokeApi(plane, plane.async_invoker, cloud.moto_app)
    provisioned = ProvisionedConcurrency(plane)
    plane.provisioned = provisioned
    cloud.routes.append(Route("lambda-invoke", api.matches_invoke, api.invoke_app))
    cloud.routes.append(Route("lambda-code", api.matches_code_change, api.code_change_app))
    cloud.routes.append(Route("lambda-provisioned-concurrency", provisioned.matches, provisioned.app))
    cloud.routes.append(Route("lambda-admin", api.matches_admin, api.admin_app))
    cloud.components.append(plane)
    return plane
