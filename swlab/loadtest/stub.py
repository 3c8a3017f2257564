"""A stand-in for the lab's HTTP API on 127.0.0.1, to test the load-test harness without a stack."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from swlab.loadtest.plans import ApiEndpoint


class StubApi:
    """A tiny stand-in for the lab's API on 127.0.0.1 (port 0 = any free port), to test the harness.

    ``POST {base_path}/ingest {"image_url"}`` -> ``{"image_id"}``; ``POST {base_path}/classify
    {"image_id"}`` -> a StartSyncExecution-like ``{"executionArn", "status", "output"}``. A wrong
    or missing ``x-api-key`` gets 403 like API Gateway. ``delay_s`` slows every answer;
    every ``fail_every``-th request fails (ingest: a 500 with a text body; classify: a FAILED
    execution), with a reason holding a comma, a newline and quotes.
    ``requests`` records (monotonic arrival time, path, parsed body) of every request.
    """

    def __init__(self, api_key: str = "stub-key", base_path: str = "/stub", delay_s: float = 0.0, fail_every: int = 0):
        self.api_key, self.base_path, self.delay_s, self.fail_every = api_key, base_path, delay_s, fail_every
        self.requests: list[tuple[float, str, object]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _stub_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def endpoint(self) -> ApiEndpoint:
        return ApiEndpoint("127.0.0.1", self.port, "http", self.base_path, self.api_key)

    def __enter__(self) -> "StubApi":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, key: str | None, body: object) -> tuple[int, object]:
        """Status and answer (a dict is sent as JSON, a str as text) for one request; records it."""
        with self._lock:
            self.requests.append((time.monotonic(), path, body))
            n = len(self.requests)
        if key != self.api_key:
            return 403, {"message": "Forbidden"}
        field_name = {f"{self.base_path}/ingest": "image_url", f"{self.base_path}/classify": "image_id"}.get(path)
        if field_name is None:
            return 404, {"message": "Not Found"}
        if not isinstance(body, dict) or not body.get(field_name):
            return 400, {"message": f"{field_name} is required"}
        arn = f"arn:aws:states:us-east-1:000000000000:execution:swlab-classify:exec-{n:06d}"
        failing = bool(self.fail_every) and n % self.fail_every == 0
        if failing and field_name == "image_url":
            return 500, f'stub failure, request {n}\n"on purpose"'
        if failing:
            return 200, {
                "executionArn": arn,
                "status": "FAILED",
                "error": "States.TaskFailed",
                "cause": f'stub failure, request {n}\n"on purpose"',
            }
        if field_name == "image_url":
            return 200, {"image_id": f"img-{n:06d}"}
        output = json.dumps({"image_id": body["image_id"], "status": "CLASSIFIED"})
        return 200, {"executionArn": arn, "status": "SUCCEEDED", "output": output}


def _stub_handler(stub: StubApi):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            status, doc = stub.answer(self.path, self.headers.get("x-api-key"), body)
            if stub.delay_s:
                time.sleep(stub.delay_s)
            text = isinstance(doc, str)
            payload = (str(doc) if text else json.dumps(doc)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    return Handler
