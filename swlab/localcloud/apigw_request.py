"""An API Gateway request as the data plane sees it, and the route table that finds its resource.

:class:`HttpRequest` is read from the WSGI environ; it gives the Lambda proxy
event (payload format 1.0), the ``$context`` of mapping templates and their
input. :class:`RouteTable` matches a path against an API's resource paths
(``/a/{id}/{proxy+}``), most specific first, as AWS does.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from swlab.localcloud.apigw_vtl import TemplateInput


@dataclass
class HttpRequest:
    method: str
    path: str
    stage: str
    request_id: str
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]
    body: bytes
    source_ip: str
    path_params: dict[str, str] | None = None
    resource_path: str = ""
    stage_variables: dict[str, str] | None = None
    api_key: str | None = None
    api_key_id: str | None = None
    received_at: float = 0.0
    account_id: str = ""
    resource_id: str = ""

    @classmethod
    def from_environ(cls, environ: dict, path: str, stage: str, request_id: str) -> "HttpRequest":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = [(k[5:].replace("_", "-").title(), v) for k, v in environ.items() if k.startswith("HTTP_")]
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers.append((key.replace("_", "-").title(), environ[key]))
        return cls(
            method=environ["REQUEST_METHOD"].upper(),
            path=path,
            stage=stage,
            request_id=request_id,
            headers=headers,
            query=parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            body=body,
            source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
            received_at=time.time(),
        )

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in reversed(self.headers) if k.lower() == name), None)

    def context(self, api_id: str) -> dict[str, Any]:
        epoch_ms = int(self.received_at * 1000)
        return {
            "resourceId": self.resource_id,
            "resourcePath": self.resource_path,
            "httpMethod": self.method,
            "path": f"/{self.stage}{self.path}",
            "accountId": self.account_id,
            "protocol": "HTTP/1.1",
            "stage": self.stage,
            "requestId": self.request_id,
            "extendedRequestId": self.request_id,
            "apiId": api_id,
            "domainPrefix": api_id,
            "domainName": f"{api_id}.execute-api.localhost",
            "requestTimeEpoch": epoch_ms,
            "requestTime": datetime.fromtimestamp(self.received_at, timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "identity": {
                "sourceIp": self.source_ip,
                "userAgent": self.header("user-agent"),
                "apiKey": self.api_key,
                "apiKeyId": self.api_key_id,
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "cognitoIdentityId": None,
                "accessKey": None,
            },
        }

    def proxy_event(self, api_id: str, binary: bool = False) -> dict[str, Any]:
        """API Gateway's Lambda proxy event, payload format 1.0; ``binary``: the request's Content-Type is one of
        the API's binary media types, so the body is passed base64-encoded (otherwise as UTF-8 text)."""
        multi_headers: dict[str, list[str]] = {}
        for k, v in self.headers:
            multi_headers.setdefault(k, []).append(v)
        multi_query: dict[str, list[str]] = {}
        for k, v in self.query:
            multi_query.setdefault(k, []).append(v)
        encoded = bool(binary and self.body)
        body: str | None = None
        if self.body:
            body = base64.b64encode(self.body).decode() if encoded else self.body.decode("utf-8", "replace")
        ctx = self.context(api_id)
        return {
            "resource": self.resource_path,
            "path": self.path,
            "httpMethod": self.method,
            "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": self.path_params or None,
            "stageVariables": self.stage_variables or None,
            "requestContext": ctx,
            "body": body,
            "isBase64Encoded": encoded,
        }

    def template_input(self, api_id: str, body: str | None = None) -> TemplateInput:
        return TemplateInput(
            body=self.body.decode("utf-8", "replace") if body is None else body,
            path_params=dict(self.path_params or {}),
            query_params=dict(self.query),
            headers=dict(self.headers),
            context=self.context(api_id),
            stage_variables=dict(self.stage_variables or {}),
        )


class RouteTable:
    """Resource paths (``/a/{id}/{proxy+}``) matched most-specific first, as AWS does."""

    def __init__(self, resources: list[tuple[str, Any]]) -> None:
        entries = []
        for path, resource in resources:
            parts = [p for p in path.split("/") if p]
            literal = sum(1 for p in parts if not p.startswith("{"))
            greedy = bool(parts) and parts[-1].endswith("+}")
            entries.append(((not greedy, literal, len(parts)), parts, resource))
        self.entries = sorted(entries, key=lambda e: e[0], reverse=True)

    def find(self, path: str) -> tuple[Any, dict[str, str]] | None:
        segments = [s for s in path.split("/") if s]
        for _, parts, resource in self.entries:
            params = _match(parts, segments)
            if params is not None:
                return resource, params
        return None


def _match(parts: list[str], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for i, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            if i >= len(segments):
                return None
            params[part[1:-2]] = "/".join(segments[i:])
            return params
        if i >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segments[i]
        elif part != segments[i]:
            return None
    return params if len(parts) == len(segments) else None
