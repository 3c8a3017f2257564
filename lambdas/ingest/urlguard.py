"""Download a URL without letting the caller reach internal addresses (SSRF guard).

Every hop (the URL and each redirect target) is checked: scheme http/https,
no user name or password in it (``user:password@`` is refused, so credentials
are never sent nor stored), no spaces or control characters, hostname
resolved, *every* address public (not loopback, private, link-local, multicast,
reserved, unspecified, shared or a cloud-metadata address), and the
connection is made to the address that was checked, so a DNS answer that
changes between check and connect cannot redirect it. Redirects are followed
here, a bounded number of times. The body is streamed with connect/read
timeouts, an overall deadline and a size limit.

An explicit allow-list of ``host`` or ``host:port`` entries bypasses the
address check (the local deployment allows the lab's own image server on
127.0.0.1 that way); nothing else does.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable
from urllib.parse import urljoin, urlsplit

REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024
# Metadata endpoints of the big clouds; most are also link-local/private, listed to be explicit.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)

Resolver = Callable[[str, int], list[str]]


class FetchError(Exception):
    """A download that did not produce a body; ``status`` is the HTTP status the API should answer."""

    def __init__(self, reason: str, message: str, status: int) -> None:
        super().__init__(message)
        self.reason, self.message, self.status = reason, message, status


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 10 * 1024 * 1024
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 5.0
    total_timeout_s: float = 15.0
    max_redirects: int = 3
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Fetched:
    url: str  # final URL after redirects
    body: bytes
    content_type: str
    redirects: int


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def forbidden_reason(address: str) -> str | None:
    """Why ``address`` must not be fetched, or None if it is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        (ip in METADATA_ADDRESSES, "cloud metadata"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "not globally routable"),
    )
    return next((why for hit, why in checks if hit), None)


def _target(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise FetchError("bad_url", f"the URL cannot be parsed: {exc}", 400) from None
    if any(ch <= " " or ch == "\x7f" for ch in url):
        raise FetchError("bad_url", "the URL contains spaces or control characters (encode them, e.g. %20)", 400)
    if parts.scheme not in ("http", "https"):
        raise FetchError("bad_scheme", f"only http and https URLs can be fetched, got {parts.scheme or 'none'!r}", 400)
    if "@" in parts.netloc:  # the message never repeats the URL: it holds a secret
        raise FetchError(
            "credentials_in_url",
            "the URL carries a user name or password; these are refused "
            "(use a URL that needs no credentials, e.g. a presigned one)",
            400,
        )
    if not parts.hostname:
        raise FetchError("bad_url", "the URL has no host", 400)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError("bad_url", "the URL has an invalid port", 400) from None
    return parts.scheme, parts.hostname.lower(), port


def _allowed(host: str, port: int, allowed_hosts: Iterable[str]) -> bool:
    return host in allowed_hosts or f"{host}:{port}" in allowed_hosts


def pick_address(host: str, port: int, limits: FetchLimits, resolver: Resolver) -> str:
    """Resolve ``host`` and return the address to connect to, after checking all of them."""
    try:
        addresses = resolver(host, port)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("unreachable", f"cannot resolve host {host!r}: {exc}", 502) from None
    if not addresses:
        raise FetchError("unreachable", f"host {host!r} has no address", 502)
    if not _allowed(host, port, limits.allowed_hosts):
        for address in addresses:
            why = forbidden_reason(address)
            if why:
                raise FetchError("forbidden_address", f"{host} resolves to {address} ({why}); refused", 400)
    return addresses[0]


def _connection(scheme: str, host: str, port: int, address: str, limits: FetchLimits) -> http.client.HTTPConnection:
    if scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=limits.connect_timeout_s, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=limits.connect_timeout_s)
    # Connect to the checked address; TLS still verifies the certificate against `host`.
    conn._create_connection = lambda _addr, timeout, source: socket.create_connection(  # type: ignore[attr-defined]
        (address, port), timeout, source
    )
    return conn


def _read_body(response: http.client.HTTPResponse, limits: FetchLimits, deadline: float) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
        raise FetchError("too_large", f"the image is {declared} bytes, more than the limit {limits.max_bytes}", 400)
    chunks, size = [], 0
    while chunk := response.read(CHUNK):
        size += len(chunk)
        if size > limits.max_bytes:
            raise FetchError("too_large", f"the image is more than the limit of {limits.max_bytes} bytes", 400)
        if time.monotonic() > deadline:
            raise FetchError("upstream_timeout", f"download took more than {limits.total_timeout_s} s", 502)
        chunks.append(chunk)
    return b"".join(chunks)


def _get_once(url: str, limits: FetchLimits, resolver: Resolver, deadline: float) -> tuple[int, str | None, str, bytes]:
    """One GET: (status, Location, Content-Type, body). The body is read only for a 200."""
    scheme, host, port = _target(url)
    address = pick_address(host, port, limits, resolver)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = _connection(scheme, host, port, address, limits)
    try:
        conn.connect()
        conn.sock.settimeout(limits.read_timeout_s)
        conn.request("GET", path, headers={"User-Agent": "swlab-ingest/1.0", "Accept": "image/*"})
        response = conn.getresponse()
        if response.status != 200:
            return response.status, response.getheader("Location"), "", b""
        return 200, None, response.getheader("Content-Type", ""), _read_body(response, limits, deadline)
    except FetchError:
        raise
    except (socket.timeout, TimeoutError):
        raise FetchError("upstream_timeout", f"{host}:{port} did not answer in time", 502) from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError("unreachable", f"cannot download from {host}:{port}: {exc}", 502) from None
    finally:
        conn.close()


def fetch(url: str, limits: FetchLimits, resolver: Resolver = system_resolver) -> Fetched:
    """GET ``url`` following at most ``limits.max_redirects`` redirects, each hop checked."""
    deadline = time.monotonic() + limits.total_timeout_s
    current = url
    for hop in range(limits.max_redirects + 1):
        status, location, content_type, body = _get_once(current, limits, resolver, deadline)
        if status == 200:
            return Fetched(url=current, body=body, content_type=content_type, redirects=hop)
        if status in REDIRECTS and location:
            current = urljoin(current, location)
            continue
        raise FetchError("upstream_status", f"the image server answered HTTP {status}", 502)
    raise FetchError("too_many_redirects", f"more than {limits.max_redirects} redirects", 502)
