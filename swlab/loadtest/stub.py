"""A stand-in for the lab's HTTP API on 127.0.0.1, to test the load-test harness without a stack."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

from swlab.loadtest.plans import ApiEndpoint


class StubApi:
    """A tiny stand-in for the lab's API on 127.0.0.1 (port 0 = any free port), to test the harness.

    ``POST {base_path}/ingest {"image_url"}`` -> ``{"image_id"}``; ``POST {base_path}/classify
    {"image_id"}`` -> the execution's output object like the lab's EXPRESS integration
    (``{"image_id", "status": "CLASSIFIED", "execution_name"}``). The asynchronous API:
    ``POST {base_path}/classifications {"image_id"}`` -> ``202 {"image_id", "execution_name",
    "execution_arn", "status": "CLASSIFYING", "status_url": "images/<id>"}``, and the execution
    ends ``async_s`` later; ``GET {base_path}/images/{image_id}`` -> the item as the latest event
    of that image left it (``status``, ``execution_name``, ``terminal``; ``error`` and
    ``error_cause`` once FAILED), 404 if never submitted. A wrong or missing ``x-api-key`` gets
    403 like API Gateway. ``delay_s`` slows every answer; every ``fail_every``-th POST fails
    (ingest: a 500 with a text body; classify: a 500 error body like the lab's; classifications:
    a FAILED item), with a reason holding a comma, a newline and quotes.
    ``requests`` records (monotonic arrival time, path, parsed body) of every request (GETs: ``None``).
    """

    def __init__(
        self,
        api_key: str = "stub-key",
        base_path: str = "/stub",
        delay_s: float = 0.0,
        fail_every: int = 0,
        async_s: float = 1.0,
    ):
        self.api_key, self.base_path, self.delay_s, self.fail_every = api_key, base_path, delay_s, fail_every
        self.async_s = async_s
        self.requests: list[tuple[float, str, object]] = []
        self.posts = 0
        # image_id -> (monotonic time, item) events: CLASSIFYING at the submit, terminal async_s later
        self._items: dict[str, list[tuple[float, dict]]] = {}
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

    def answer(self, method: str, path: str, key: str | None, body: object) -> tuple[int, object]:
        """Status and answer (a dict is sent as JSON, a str as text) for one request; records it."""
        now = time.monotonic()
        with self._lock:
            self.requests.append((now, path, body))
            if method == "POST":
                self.posts += 1
            n = self.posts
        if key != self.api_key:
            return 403, {"message": "Forbidden"}
        images = f"{self.base_path}/images/"
        if method == "GET" and path.startswith(images):
            return self._item(unquote(path[len(images) :]), now)
        routes = {"ingest": "image_url", "classify": "image_id", "classifications": "image_id"}
        route = path[len(self.base_path) + 1 :] if path.startswith(f"{self.base_path}/") else ""
        field_name = routes.get(route) if method == "POST" else None
        if field_name is None:
            return 404, {"message": "Not Found"}
        if not isinstance(body, dict) or not body.get(field_name):
            return 400, {"message": f"{field_name} is required"}
        name = f"exec-{n:06d}"
        arn = f"arn:aws:states:us-east-1:000000000000:execution:swlab-classify:{name}"
        failing = bool(self.fail_every) and n % self.fail_every == 0
        cause = f'stub failure, request {n}\n"on purpose"'
        if route == "ingest":
            return (500, cause) if failing else (200, {"image_id": f"img-{n:06d}"})
        image_id = body["image_id"]
        if route == "classify":
            if failing:
                return 500, {"error": "States.TaskFailed", "cause": cause, "status": "FAILED", "execution_arn": arn}
            return 200, {"image_id": image_id, "status": "CLASSIFIED", "execution_name": name}
        end = {"status": "FAILED", "error": "States.TaskFailed", "error_cause": cause} if failing else {}
        with self._lock:
            events = self._items.setdefault(image_id, [])
            events.append((now, {"status": "CLASSIFYING", "execution_name": name}))
            events.append((now + self.async_s, {"status": "CLASSIFIED", "execution_name": name, **end}))
        return 202, {
            "image_id": image_id,
            "execution_name": name,
            "execution_arn": arn,
            "status": "CLASSIFYING",
            "status_url": f"images/{quote(image_id, safe='')}",
        }

    def _item(self, image_id: str, now: float) -> tuple[int, object]:
        with self._lock:
            past = [(t, item) for t, item in self._items.get(image_id, []) if t <= now]
        if not past:
            return 404, {"error": "not_found", "message": f"no image {image_id!r}"}
        item = max(past, key=lambda event: event[0])[1]
        return 200, {"image_id": image_id, **item, "terminal": item["status"] in ("CLASSIFIED", "FAILED")}


def _stub_handler(stub: StubApi):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            self._send(*stub.answer("GET", self.path, self.headers.get("x-api-key"), None))

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            self._send(*stub.answer("POST", self.path, self.headers.get("x-api-key"), body))

        def _send(self, status: int, doc: object) -> None:
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
