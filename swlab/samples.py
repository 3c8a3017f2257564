"""Sample photographs and the local image server Workflow 1 fetches them from.

``list_samples()`` reads ``swlab/data/samples/samples.json`` (licences and
sources are in the README beside it). ``ImageServer`` is a threaded HTTP
server on 127.0.0.1 (port 0 = any free port) serving the samples plus routes
that misbehave on purpose, for the bad-input tests and the load tests:

=================================  ==========================================================
route                              answer
=================================  ==========================================================
``GET /samples/<file>``            the sample (``image/jpeg``), 404 for an unknown file
``GET /bad/not-image``             200 ``text/html`` body that is not an image
``GET /bad/oversized?bytes=N``     200 with N bytes (a JPEG header then filler);
                                   ``&declare=0`` omits Content-Length (chunked stream)
``GET /bad/truncated``             the first half of a sample JPEG
``GET /bad/bomb``                  a ~100-byte PNG whose header claims 30000x30000 pixels
``GET /redirect?to=<url>``         302 to ``url`` (e.g. a private or metadata address)
``GET /redirect/private``          302 to ``http://169.254.169.254/latest/meta-data/``
``GET /redirect/loop``             302 to itself (too many redirects)
``GET /slow?delay=S``              waits S seconds (default 10) then sends a sample
``GET /status/<code>``             answers that HTTP status with a short text body
=================================  ==========================================================

Every request is counted in ``server.hits`` (path → count).
"""

from __future__ import annotations

import json
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SAMPLES_DIR = Path(__file__).parent / "data" / "samples"
METADATA_URL = "http://169.254.169.254/latest/meta-data/"


@dataclass(frozen=True)
class Sample:
    name: str
    file: str
    path: Path
    width: int
    height: int
    bytes: int
    sha256: str
    license: str
    source: str


def list_samples(directory: Path = SAMPLES_DIR) -> list[Sample]:
    """The sample photographs, sorted by name, as recorded in samples.json."""
    rows = json.loads((directory / "samples.json").read_text())["samples"]
    return sorted(
        (
            Sample(
                name=r["name"],
                file=r["file"],
                path=directory / r["file"],
                width=r["width"],
                height=r["height"],
                bytes=r["bytes"],
                sha256=r["sha256"],
                license=r["license"],
                source=r["source"],
            )
            for r in rows
        ),
        key=lambda s: s.name,
    )


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet by default
        pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test, or a load test stopping)

    def _sample_bytes(self, file: str) -> bytes | None:
        path = SAMPLES_DIR / file
        return path.read_bytes() if file in self.server.sample_files else None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.server.count(parts.path)
        route = getattr(self, "_route_" + parts.path.strip("/").split("/")[0].replace("-", "_"), None)
        if route is None:
            self._send(404, b"not found\n", "text/plain")
            return
        route(parts.path, query)

    def _route_samples(self, path: str, query: dict[str, str]) -> None:
        body = self._sample_bytes(path.rsplit("/", 1)[-1])
        if body is None:
            self._send(404, b"no such sample\n", "text/plain")
        else:
            self._send(200, body, "image/jpeg")

    def _route_bad(self, path: str, query: dict[str, str]) -> None:
        kind = path.rsplit("/", 1)[-1]
        first = self._sample_bytes(self.server.sample_files[0]) or b""
        if kind == "not-image":
            self._send(200, b"<html><body>this is not an image</body></html>\n", "text/html")
        elif kind == "truncated":
            self._send(200, first[: len(first) // 2], "image/jpeg")
        elif kind == "bomb":
            self._send(200, png_bomb(), "image/png")
        elif kind == "oversized":
            self._oversized(int(query.get("bytes", 20 * 1024 * 1024)), query.get("declare", "1") != "0", first[:1024])
        else:
            self._send(404, b"unknown bad route\n", "text/plain")

    def _oversized(self, size: int, declare: bool, head: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length" if declare else "Transfer-Encoding", str(size) if declare else "chunked")
        self.end_headers()
        sent, block = 0, head + b"\0" * (64 * 1024 - len(head))
        try:
            while sent < size:
                piece = block[: min(len(block), size - sent)]
                self.wfile.write(piece if declare else b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
                block = b"\0" * len(block)
            if not declare:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up at its size limit, as it should

    def _route_redirect(self, path: str, query: dict[str, str]) -> None:
        target = {"/redirect/private": METADATA_URL, "/redirect/loop": "/redirect/loop"}.get(path, query.get("to"))
        if not target:
            self._send(400, b"redirect needs ?to=<url>\n", "text/plain")
        else:
            self._send(302, b"", "text/plain", {"Location": target})

    def _route_slow(self, path: str, query: dict[str, str]) -> None:
        time.sleep(float(query.get("delay", 10)))
        self._route_samples("/samples/" + self.server.sample_files[0], query)

    def _route_status(self, path: str, query: dict[str, str]) -> None:
        code = int(path.rsplit("/", 1)[-1])
        self._send(code, f"status {code}\n".encode(), "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.sample_files = [s.file for s in list_samples()]
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client that hung up (size limit, timeout, end of a load test) is not an error
        super().handle_error(request, client_address)

    def count(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1


class ImageServer:
    """``with ImageServer() as srv: srv.url("/samples/chelsea.jpg")``; binds 127.0.0.1 only."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port))
        self._thread = threading.Thread(target=self._server.serve_forever, name="swlab-image-server", daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def hits(self) -> Counter[str]:
        return self._server.hits

    @property
    def allowed_host(self) -> str:
        """The ``ALLOWED_HOSTS`` entry that lets ingest fetch from this server."""
        return f"{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    def sample_urls(self) -> list[str]:
        return [self.url(f"/samples/{s.file}") for s in list_samples()]

    def start(self) -> "ImageServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ImageServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
