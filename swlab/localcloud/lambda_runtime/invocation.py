"""One invoke in flight: the event, and what the runtime (or the platform) answered."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid


class Invocation:
    """One invoke in flight. ``status``: ok | error | timeout | oom | exit | init_error (or another kill reason)."""

    __slots__ = (
        "request_id",
        "payload",
        "client_context",
        "timeout_s",
        "deadline_ms",
        "trace_id",
        "done",
        "status",
        "body",
        "error_type",
        "started",
        "ended",
        "lines",
        "peak_rss",
        "closed",
        "invoked_arn",
    )

    def __init__(
        self,
        payload: bytes,
        timeout_s: float,
        client_context: str | None = None,
        invoked_arn: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.request_id = request_id or str(uuid.uuid4())  # an async event keeps its id across retries
        self.payload = payload
        self.client_context = client_context
        self.timeout_s = timeout_s
        self.deadline_ms = 0
        rand = os.urandom(20).hex()
        self.trace_id = f"Root=1-{int(time.time()):08x}-{rand[:24]};Parent={rand[24:]};Sampled=0"
        self.done = threading.Event()
        self.status: str | None = None  # ok | error | timeout | oom | exit | init_error
        self.body = b""
        self.error_type: str | None = None
        self.started: float | None = None  # perf_counter when the runtime received the event
        self.ended: float | None = None
        self.lines: list[str] = []  # this invocation's log lines (for X-Amz-Log-Result)
        self.peak_rss = 0
        self.closed = False  # set once the output was drained: later lines belong to no invocation
        self.invoked_arn = invoked_arn  # the ARN the caller named (qualified or not): context.invoked_function_arn

    def finish(self, status: str, body: bytes = b"", error_type: str | None = None) -> bool:
        """Record the outcome once; later outcomes (e.g. a response after the timeout) are ignored."""
        if self.status is not None:
            return False
        self.ended = time.perf_counter()
        self.status, self.body, self.error_type = status, body, error_type
        self.done.set()
        return True


def error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()
