"""Faults on purpose: rules that make the local cloud fail as AWS fails, counted and logged.

A rule (JSON, from ``options["faults"]`` at start or ``POST /_localcloud/faults``)::

    {"type": "s3_throttle", "rate": 0.05}                          # 5 % of S3 calls answer 503 SlowDown
    {"type": "function_down", "functions": ["resnet"], "start_s": 10, "end_s": 70}
    {"type": "lambda_kill", "rate": 0.02, "functions": ["grayscale"]}

``type`` is one of :data:`FAULT_TYPES`; ``rate`` is the probability per call (default 1);
``start_s``/``end_s`` a window relative to when the rule was added (default: from now, forever);
``functions`` (Lambda types) substrings of the function names it applies to (default: all);
``error_type`` (lambda_error, default ``Runtime.Unknown``); ``code`` (dynamodb_throttle:
``ProvisionedThroughputExceededException``, the default, or ``ThrottlingException``);
``operations`` (S3/DynamoDB) the operations it applies to (DynamoDB: ``GetItem``...; S3: the HTTP
method); ``after_s`` (kill/timeout/oom) how long after the event was handed to the runtime;
``max_count`` the most injections of the rule.

What each type does:

* ``lambda_kill``: the environment is SIGKILLed mid-invocation → ``Runtime.ExitError``;
* ``lambda_timeout``: the invocation is ended as timed out → ``Sandbox.Timedout``;
* ``lambda_oom``: the environment is ended for memory → ``Runtime.OutOfMemory``;
* ``lambda_error``: a function error before the handler runs (``error_type``);
* ``function_down``: the Lambda service answers 500 ``ServiceException`` to every invoke;
* ``s3_throttle`` / ``s3_error``: 503 ``SlowDown`` / 500 ``InternalError`` (S3's XML error);
* ``dynamodb_throttle`` / ``dynamodb_error``: 400 throttling / 500 ``InternalServerError`` (JSON).

Every injection is logged (logger ``swlab.localcloud.faults``) and counted per type;
``GET /_localcloud/faults`` reports the rules, the counts and the last injections.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

log = logging.getLogger("swlab.localcloud.faults")

FAULTS_PATH = "/_localcloud/faults"
LAMBDA_KILLS = {"lambda_kill": "exit", "lambda_timeout": "timeout", "lambda_oom": "oom"}
LAMBDA_TYPES = (*LAMBDA_KILLS, "lambda_error", "function_down")
AWS_TYPES = ("s3_throttle", "s3_error", "dynamodb_throttle", "dynamodb_error")
FAULT_TYPES = (*LAMBDA_TYPES, *AWS_TYPES)
DYNAMODB_THROTTLES = ("ProvisionedThroughputExceededException", "ThrottlingException")
_CREDENTIAL_SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/")
_RULE_KEYS = {
    "type",
    "rate",
    "start_s",
    "end_s",
    "functions",
    "error_type",
    "code",
    "operations",
    "after_s",
    "max_count",
}


class FaultRuleError(ValueError):
    """A rule that cannot be applied; the message says which field and why."""


@dataclass
class FaultRule:
    type: str
    rate: float = 1.0
    start: float = 0.0  # monotonic
    end: float | None = None
    functions: tuple[str, ...] = ()
    error_type: str = "Runtime.Unknown"
    code: str = DYNAMODB_THROTTLES[0]
    operations: tuple[str, ...] = ()
    after_s: float = 0.0
    max_count: int | None = None
    injected: int = 0
    spec: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: Any, now: float) -> "FaultRule":
        if not isinstance(spec, dict):
            raise FaultRuleError(f"a fault rule is a JSON object, not {type(spec).__name__}")
        unknown = set(spec) - _RULE_KEYS
        if unknown:
            raise FaultRuleError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
        kind = spec.get("type")
        if kind not in FAULT_TYPES:
            raise FaultRuleError(f"fault type {kind!r} is not one of {', '.join(FAULT_TYPES)}")
        try:
            rate = float(spec.get("rate", 1.0))
            start_s = float(spec.get("start_s", 0.0))
            end_s = None if spec.get("end_s") is None else float(spec["end_s"])
            after_s = float(spec.get("after_s", 0.0))
            max_count = None if spec.get("max_count") is None else int(spec["max_count"])
        except (TypeError, ValueError) as exc:
            raise FaultRuleError(f"fault rule {kind}: {exc}") from None
        if not 0.0 <= rate <= 1.0:
            raise FaultRuleError(f"fault rule {kind}: rate must be within 0..1, not {rate}")
        if end_s is not None and end_s <= start_s:
            raise FaultRuleError(f"fault rule {kind}: end_s ({end_s}) must be after start_s ({start_s})")
        code = str(spec.get("code", DYNAMODB_THROTTLES[0]))
        if kind == "dynamodb_throttle" and code not in DYNAMODB_THROTTLES:
            raise FaultRuleError(f"fault rule {kind}: code must be one of {', '.join(DYNAMODB_THROTTLES)}")
        return cls(
            type=kind,
            rate=rate,
            start=now + start_s,
            end=None if end_s is None else now + end_s,
            functions=tuple(str(f) for f in spec.get("functions") or ()),
            error_type=str(spec.get("error_type", "Runtime.Unknown")),
            code=code,
            operations=tuple(str(o) for o in spec.get("operations") or ()),
            after_s=after_s,
            max_count=max_count,
            spec=dict(spec),
        )

    def active(self, now: float) -> bool:
        if self.max_count is not None and self.injected >= self.max_count:
            return False
        return self.start <= now and (self.end is None or now < self.end)

    def applies_to_function(self, name: str) -> bool:
        return not self.functions or any(f in name for f in self.functions)

    def applies_to_operation(self, operation: str) -> bool:
        return not self.operations or operation in self.operations

    def describe(self, now: float) -> dict[str, Any]:
        return {**self.spec, "active": self.active(now), "injected": self.injected}


@dataclass(frozen=True)
class Injection:
    """A fault that fired: its rule, and what it hit."""

    rule: FaultRule
    target: str


class FaultInjector:
    """The rules in force; ``lambda_fault``/``aws_fault`` decide per call (thread-safe)."""

    def __init__(self, rules: Iterable[Any] = (), seed: int | None = None, clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self._random = random.Random(seed)
        self.rules: list[FaultRule] = []
        self.counts: Counter[str] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=200)
        self.add(list(rules))

    # -- rules -------------------------------------------------------------------------
    def add(self, specs: list[Any]) -> list[FaultRule]:
        """Parse every rule first (all or none are added); ``FaultRuleError`` on a bad one."""
        now = self._clock()
        parsed = [FaultRule.parse(s, now) for s in specs]
        with self._lock:
            self.rules.extend(parsed)
        for rule in parsed:
            log.info("fault rule added: %s", json.dumps(rule.spec, sort_keys=True))
        return parsed

    def clear(self) -> int:
        with self._lock:
            n, self.rules = len(self.rules), []
        log.info("fault rules cleared (%d)", n)
        return n

    def report(self) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            return {
                "rules": [r.describe(now) for r in self.rules],
                "counts": {t: self.counts.get(t, 0) for t in FAULT_TYPES},
                "total": sum(self.counts.values()),
                "recent": list(self.recent),
            }

    # -- decisions ---------------------------------------------------------------------
    def _pick(self, types: Iterable[str], target: str, match: Callable[[FaultRule], bool]) -> Injection | None:
        wanted = set(types)
        now = self._clock()
        with self._lock:
            for rule in self.rules:
                if rule.type not in wanted or not rule.active(now) or not match(rule):
                    continue
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                rule.injected += 1
                self.counts[rule.type] += 1
                self.recent.append({"time": round(time.time(), 3), "type": rule.type, "target": target})
                log.warning("fault injected: %s on %s", rule.type, target)
                return Injection(rule, target)
        return None

    def lambda_fault(self, function_name: str) -> Injection | None:
        """A fault for this invoke of ``function_name`` (or None)."""
        if not self.rules:
            return None
        return self._pick(LAMBDA_TYPES, function_name, lambda r: r.applies_to_function(function_name))

    def aws_fault(self, environ: dict) -> Injection | None:
        """A fault for this S3 or DynamoDB request (or None); other services are never faulted."""
        if not self.rules:
            return None
        service, operation = request_service(environ)
        if service == "s3":
            types: tuple[str, ...] = ("s3_throttle", "s3_error")
        elif service == "dynamodb":
            types = ("dynamodb_throttle", "dynamodb_error")
        else:
            return None
        return self._pick(types, f"{service}:{operation}", lambda r: r.applies_to_operation(operation))

    # -- HTTP --------------------------------------------------------------------------
    def admin_app(self, environ: dict, start_response: Callable) -> list[bytes]:
        """``GET`` the report; ``POST`` a rule or a list of rules (400 with a reason); ``DELETE`` them all."""
        method = environ["REQUEST_METHOD"]
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            try:
                spec = json.loads(raw or b"null")
                added = self.add(spec if isinstance(spec, list) else [spec])
            except ValueError as exc:  # FaultRuleError and JSON errors
                return _json(start_response, "400 Bad Request", {"error": str(exc)})
            return _json(start_response, "200 OK", {"added": len(added), **self.report()})
        if method == "DELETE":
            cleared = self.clear()
            return _json(start_response, "200 OK", {"cleared": cleared, **self.report()})
        if method == "GET":
            return _json(start_response, "200 OK", self.report())
        return _json(start_response, "405 Method Not Allowed", {"error": f"{method} is not GET, POST or DELETE"})


def request_service(environ: dict) -> tuple[str, str]:
    """(service, operation) of an AWS API request: DynamoDB by its target header, S3 by its signature."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB_"):
        return "dynamodb", target.rpartition(".")[2]
    m = _CREDENTIAL_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if m is None:
        m = re.search(
            r"X-Amz-Credential=[^&/]+(?:/|%2F)\d{8}(?:/|%2F)[^&/%]+(?:/|%2F)([^&/%]+)", environ.get("QUERY_STRING", "")
        )
    service = m.group(1) if m else ""
    return service, environ.get("REQUEST_METHOD", "")


def aws_error_response(injection: Injection, environ: dict, start_response: Callable) -> list[bytes]:
    """The error AWS answers for this fault type (the request body is read and dropped)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    request_id = uuid.uuid4().hex.upper()[:16]
    kind = injection.rule.type
    if kind.startswith("s3_"):
        status, code, message = (
            ("503 Slow Down", "SlowDown", "Please reduce your request rate.")
            if kind == "s3_throttle"
            else ("500 Internal Server Error", "InternalError", "We encountered an internal error. Please try again.")
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    else:
        if kind == "dynamodb_throttle" and injection.rule.code == "ThrottlingException":
            status, error = "400 Bad Request", "com.amazon.coral.availability#ThrottlingException"
            message = "Rate of requests exceeds the allowed throughput."
        elif kind == "dynamodb_throttle":
            status, error = "400 Bad Request", "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
            message = (
                "The level of configured provisioned throughput for the table was exceeded. "
                "Consider increasing your provisioning level with the UpdateTable API."
            )
        else:
            status, error, message = (
                "500 Internal Server Error",
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "Internal server error",
            )
        body = json.dumps({"__type": error, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)]
    start_response(status, headers + [("Content-Length", str(len(body)))])
    return [body]


def _json(start_response: Callable, status: str, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
