"""The Lambda Runtime API (``/2018-06-01/runtime/...``) of one execution environment, on a port of its own.

A port per environment, not a path prefix on the main port: awslambdaric posts
init errors with ``http.client.HTTPConnection(AWS_LAMBDA_RUNTIME_API)``, which
rejects ``host:port/prefix`` ("nonnumeric port"), so a prefix would lose
``/init/error``. The server is a minimal HTTP/1.1 loop (one thread per
connection; the runtime keeps one connection alive), measured faster than
going through the main WSGI server.

Endpoints: ``GET invocation/next`` (blocks until :meth:`RuntimeApi.dispatch`
hands it an event), ``POST invocation/<id>/response``, ``POST invocation/<id>/error``,
``POST init/error``.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Protocol

from swlab.localcloud.lambda_runtime.invocation import Invocation

RUNTIME_PATH = "/2018-06-01/runtime/"
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}


class RuntimeHost(Protocol):
    """The execution environment behind a Runtime API."""

    id: str
    current: Invocation | None

    def is_dead(self) -> bool: ...

    def runtime_next(self) -> None:
        """The runtime asked for work (the first time: the init phase ended)."""

    def runtime_init_error(self, body: bytes) -> None:
        """The runtime reported an init error (``POST init/error``)."""


class RuntimeApi:
    """Serves one environment's runtime; :meth:`dispatch` queues an event, :meth:`close` releases every waiter."""

    def __init__(self, host: RuntimeHost, function_arn: str) -> None:
        self._host = host
        self._arn = function_arn
        self._pending: list[Invocation | None] = []
        self._pending_cv = threading.Condition(threading.Lock())
        self._listener: socket.socket | None = None

    def start(self) -> str:
        """Listen on a free port of 127.0.0.1; returns ``AWS_LAMBDA_RUNTIME_API`` (``127.0.0.1:<port>``)."""
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, name=f"rapi-{self._host.id[:8]}", daemon=True).start()
        return f"127.0.0.1:{port}"

    def dispatch(self, inv: Invocation) -> None:
        with self._pending_cv:
            self._pending.append(inv)
            self._pending_cv.notify()

    def close(self) -> None:
        """No more work: a waiting ``/next`` returns (its connection is dropped) and the listener closes."""
        with self._pending_cv:
            self._pending.append(None)
            self._pending_cv.notify_all()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass

    def _next_invocation(self) -> Invocation | None:
        with self._pending_cv:
            while not self._pending:
                self._pending_cv.wait()
            inv = self._pending.pop(0)
            if inv is None:
                self._pending.append(None)  # keep releasing other waiters
        return inv

    # -- HTTP ------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._host.is_dead():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(
                target=self._serve, args=(conn,), name=f"rapi-conn-{self._host.id[:8]}", daemon=True
            ).start()

    def _serve(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        try:
            while True:
                request = _read_request(rfile, conn)
                if request is None:
                    return
                method, path, headers, body = request
                response = self._handle(method, path, headers, body)
                if response is None:
                    return
                conn.sendall(response)
        except OSError:
            return
        finally:
            rfile.close()
            conn.close()

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes | None:
        if not path.startswith(RUNTIME_PATH):
            return _http(404, b'{"errorMessage":"not found"}')
        rest = path[len(RUNTIME_PATH) :]
        if method == "GET" and rest == "invocation/next":
            return self._next_response()
        if method == "POST" and rest.startswith("invocation/"):
            request_id, _, what = rest[len("invocation/") :].partition("/")
            inv = self._host.current
            if inv is None or inv.request_id != request_id or what not in ("response", "error"):
                return _http(400, b'{"errorMessage":"invalid request id","errorType":"InvalidRequestID"}')
            if what == "response":
                inv.finish("ok", body)
            else:
                inv.finish("error", body, headers.get("lambda-runtime-function-error-type"))
            return _http(202, b'{"status":"OK"}')
        if method == "POST" and rest == "init/error":
            self._host.runtime_init_error(body or b"{}")
            return _http(202, b'{"status":"OK"}')
        return _http(404, b'{"errorMessage":"unknown runtime API path"}')

    def _next_response(self) -> bytes | None:
        self._host.runtime_next()
        inv = self._next_invocation()
        if inv is None:
            return None
        if inv.started is None:  # an init run inside the invocation started it already
            inv.started = time.perf_counter()
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", inv.invoked_arn or self._arn),
            ("Lambda-Runtime-Trace-Id", inv.trace_id),
            ("Content-Type", "application/json"),
        ]
        if inv.client_context:
            headers.append(("Lambda-Runtime-Client-Context", inv.client_context))
        return _http(200, inv.payload, headers)


def _read_request(rfile: Any, conn: socket.socket) -> tuple[str, str, dict[str, str], bytes] | None:
    line = rfile.readline(65537)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) < 2:
        return None
    headers: dict[str, str] = {}
    while True:
        h = rfile.readline(65537)
        if h in (b"\r\n", b"\n", b""):
            break
        key, _, value = h.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _read_chunked(rfile)
    else:
        body = rfile.read(int(headers.get("content-length") or 0))
    return parts[0], parts[1].split("?", 1)[0], headers, body


def _read_chunked(rfile: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        chunks.append(rfile.read(size))
        rfile.readline()


def _http(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}", f"Content-Length: {len(body)}"]
    if headers is None:
        head.append("Content-Type: application/json")
    else:
        head.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
