"""One Lambda execution environment: a subprocess running AWS's runtime client against our Runtime API.

An :class:`Environment` is ``python -m awslambdaric <handler>`` in its own
process group, working directory = the unzipped code (``LAMBDA_TASK_ROOT``),
talking to a Runtime API served on a port of its own on 127.0.0.1
(``AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>``). A port per environment, not a
path prefix on the main port: awslambdaric posts init errors with
``http.client.HTTPConnection(AWS_LAMBDA_RUNTIME_API)``, which rejects
``host:port/prefix`` ("nonnumeric port"), so a prefix would lose
``/init/error``. The per-environment server is a minimal HTTP/1.1 loop (one
thread per connection; the runtime keeps one connection alive), measured
faster than going through the main WSGI server.

The environment's stdout/stderr (one pipe) is read by the shared
:class:`OutputPump` (one thread, epoll); the invoking thread drains the pipe
before it writes END, so the function's own lines always precede END/REPORT.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import psutil

RUNTIME_PATH = "/2018-06-01/runtime/"
# What the AWS Python runtime itself provides besides the standard library.
AWS_RUNTIME_DISTRIBUTIONS = ("awslambdaric", "boto3", "botocore", "s3transfer", "jmespath", "python-dateutil",
                             "six", "urllib3", "simplejson", "snapshot-restore-py")
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing"}
_SIGNAL_NAMES = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGSEGV: "segmentation fault",
                 signal.SIGABRT: "aborted", signal.SIGINT: "interrupt", signal.SIGBUS: "bus error"}


@dataclass(frozen=True)
class FunctionSpec:
    """What an environment needs to know about a function; a new spec (new code/config) means new environments."""

    name: str
    arn: str
    account_id: str
    region: str
    handler: str
    runtime: str
    memory_mb: int
    timeout_s: float
    code_dir: Path
    user_env: tuple[tuple[str, str], ...]
    isolated: bool  # only the AWS runtime's packages + the zip are importable
    signature: tuple = field(compare=False)
    version: str = "$LATEST"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


def extract_code(zip_bytes: bytes, code_root: Path, sha_hex: str) -> Path:
    """Unzip the deployed package once per code hash; returns the directory (LAMBDA_TASK_ROOT)."""
    target = code_root / sha_hex
    if (target / ".complete").exists():
        return target
    tmp = code_root / f".{sha_hex}.{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    import io

    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        zf.extractall(tmp)
    (tmp / ".complete").touch()
    try:
        tmp.rename(target)
    except OSError:  # another thread extracted the same code first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


def aws_runtime_dir(root: Path) -> Path:
    """A directory of symlinks to the AWS runtime's packages in this interpreter's site-packages."""
    target = root / "python"
    if (target / ".complete").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for dist_name in AWS_RUNTIME_DISTRIBUTIONS:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            if top.endswith((".dist-info", ".egg-info", ".pth")) or top in ("..", "__pycache__", "bin"):
                continue
            src = Path(str(dist.locate_file(top)))
            link = target / top
            if src.exists() and not link.exists():
                link.symlink_to(src)
    (target / ".complete").touch()
    return target


def build_environment(spec: FunctionSpec, env_id: str, log_stream: str, runtime_api: str,
                      runtime_dir: Path, endpoint_url: str) -> dict[str, str]:
    """The process environment, in localstack's order: AWS's variables, the emulator's, the user's last."""
    aws = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": f"{spec.code_dir}:{runtime_dir}",
        **TEST_CREDENTIALS,
    }
    emulator = {"AWS_ENDPOINT_URL": endpoint_url, "SWLAB_LOCALCLOUD_ENVIRONMENT_ID": env_id}
    return {**aws, **emulator, **dict(spec.user_env)}


def log_stream_name(env_id: str, version: str = "$LATEST", when: float | None = None) -> str:
    day = datetime.fromtimestamp(time.time() if when is None else when, timezone.utc).strftime("%Y/%m/%d")
    return f"{day}/[{version}]{env_id}"


def exit_description(returncode: int | None) -> str:
    """Go-style wording Lambda uses: ``exit status 1`` / ``signal: killed``."""
    if returncode is None:
        return "signal: killed"
    if returncode < 0:
        return "signal: " + _SIGNAL_NAMES.get(-returncode, f"signal {-returncode}")
    return f"exit status {returncode}"


class Invocation:
    """One invoke in flight: the event, and what the runtime (or the platform) answered."""

    __slots__ = ("request_id", "payload", "client_context", "timeout_s", "deadline_ms", "trace_id", "done",
                 "status", "body", "error_type", "started", "ended", "lines", "peak_rss", "closed")

    def __init__(self, payload: bytes, timeout_s: float, client_context: str | None = None) -> None:
        self.request_id = str(uuid.uuid4())
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

    def finish(self, status: str, body: bytes = b"", error_type: str | None = None) -> bool:
        """Record the outcome once; later outcomes (e.g. a response after the timeout) are ignored."""
        if self.status is not None:
            return False
        self.ended = time.perf_counter()
        self.status, self.body, self.error_type = status, body, error_type
        self.done.set()
        return True


class Environment:
    """An execution environment. States: init → idle ⇄ busy → dead."""

    def __init__(self, spec: FunctionSpec, python: str, runtime_dir: Path, endpoint_url: str,
                 on_output: Callable[["Environment", float, str], None]) -> None:
        self.spec = spec
        self.id = uuid.uuid4().hex
        self.log_stream = log_stream_name(self.id, spec.version)
        self.python = python
        self.runtime_dir = runtime_dir
        self.endpoint_url = endpoint_url
        self._on_output = on_output
        self.state = "init"
        self.ready = threading.Event()
        self.init_error: bytes | None = None
        self.init_ms: float | None = None
        self.exit_reason: str | None = None
        self.killed_for: str | None = None
        self.current: Invocation | None = None
        self.last_used = time.monotonic()
        self.peak_rss = 0
        self.proc: subprocess.Popen | None = None
        self._rss: TreeRss | None = None
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._partial = b""
        self._fd: int | None = None
        self._pending: list[Invocation | None] = []
        self._pending_cv = threading.Condition(threading.Lock())
        self._listener: socket.socket | None = None
        self.spawned_at = 0.0

    # -- lifecycle -------------------------------------------------------------------
    def start(self, pump: "OutputPump") -> "Environment":
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, name=f"rapi-{self.id[:8]}", daemon=True).start()
        env = build_environment(self.spec, self.id, self.log_stream, f"127.0.0.1:{port}", self.runtime_dir,
                                self.endpoint_url)
        cmd = [self.python, *(["-S"] if self.spec.isolated else []), "-m", "awslambdaric", self.spec.handler]
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=self.spec.code_dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                     close_fds=True)
        if self.state == "dead":  # killed while spawning (shutdown): end the process we just started
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._rss = TreeRss(self.proc.pid)
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        pump.register(self)
        return self

    def claim(self) -> bool:
        """Mark the environment busy unless it died meanwhile."""
        with self._lock:
            if self.state == "dead":
                return False
            self.state = "busy"
            return True

    def set_idle(self) -> bool:
        with self._lock:
            if self.state == "dead":
                return False
            self.state = "idle"
            self.current = None
            self.last_used = time.monotonic()
            return True

    def kill(self, reason: str) -> None:
        """SIGKILL the process group; the current invocation (if any) ends with ``reason``."""
        with self._lock:
            if self.state == "dead":
                return
            self.state = "dead"
            self.killed_for = reason
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._release_runtime()
        inv = self.current
        if inv is not None:
            inv.finish(reason)
        self.ready.set()
        if self._rss is not None:
            self._rss.close()

    def _release_runtime(self) -> None:
        with self._pending_cv:
            self._pending.append(None)
            self._pending_cv.notify_all()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass

    def _exited(self) -> None:
        """The pipe reached EOF: the process is gone (or closed its output, which we treat the same)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        with self._lock:
            was_dead = self.state == "dead"
            self.state = "dead"
            self.exit_reason = exit_description(self.proc.returncode if self.proc else None)
        if not was_dead:
            self._release_runtime()
            inv = self.current
            if inv is not None:
                inv.finish("exit")
            self.ready.set()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait for the first ``/next`` (True) or a failure (init error, exit, kill; False)."""
        if not self.ready.wait(timeout_s):
            return False
        return self.state != "dead" and self.init_error is None

    # -- invocations -----------------------------------------------------------------
    def dispatch(self, inv: Invocation) -> None:
        inv.deadline_ms = int((time.time() + inv.timeout_s) * 1000)
        self.current = inv
        with self._pending_cv:
            self._pending.append(inv)
            self._pending_cv.notify()

    def _next_invocation(self) -> Invocation | None:
        with self._pending_cv:
            while not self._pending:
                self._pending_cv.wait()
            inv = self._pending.pop(0)
            if inv is None:
                self._pending.append(None)  # keep releasing other waiters
        return inv

    # -- memory ----------------------------------------------------------------------
    def sample_rss(self) -> int:
        """Resident memory of the environment's process tree (bytes); updates the peaks."""
        if self._rss is None or self.state == "dead":
            return 0
        rss = self._rss.read()
        inv = self.current
        if inv is not None:
            inv.peak_rss = max(inv.peak_rss, rss)
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    # -- output ----------------------------------------------------------------------
    @property
    def fd(self) -> int | None:
        return self._fd

    def read_output(self) -> bool:
        """Read what is in the pipe now; returns False at EOF (the caller then unregisters and closes)."""
        with self._read_lock:
            if self._fd is None:
                return False
            while True:
                try:
                    data = os.read(self._fd, 65536)
                except BlockingIOError:
                    return True
                except OSError as exc:
                    if exc.errno == errno.EINTR:
                        continue
                    data = b""
                if not data:
                    self._emit_partial()
                    return False
                self._split_lines(data)

    def drain_output(self) -> None:
        """Read everything the process has written so far (it flushed before posting its response)."""
        self.read_output()  # at EOF the pump closes the pipe and reports the exit

    def close_output(self) -> None:
        with self._read_lock:
            if self._fd is not None and self.proc is not None and self.proc.stdout is not None:
                self.proc.stdout.close()
            self._fd = None

    def _split_lines(self, data: bytes) -> None:
        buf = self._partial + data
        *lines, self._partial = buf.split(b"\n")
        now = time.time()
        for line in lines:
            self._on_output(self, now, line.decode("utf-8", "replace") + "\n")

    def _emit_partial(self) -> None:
        if self._partial:
            self._on_output(self, time.time(), self._partial.decode("utf-8", "replace") + "\n")
            self._partial = b""

    # -- the Runtime API -------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while self.state != "dead":
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), name=f"rapi-conn-{self.id[:8]}",
                             daemon=True).start()

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
        rest = path[len(RUNTIME_PATH):]
        if method == "GET" and rest == "invocation/next":
            return self._next_response()
        if method == "POST" and rest.startswith("invocation/"):
            request_id, _, what = rest[len("invocation/"):].partition("/")
            inv = self.current
            if inv is None or inv.request_id != request_id or what not in ("response", "error"):
                return _http(400, b'{"errorMessage":"invalid request id","errorType":"InvalidRequestID"}')
            if what == "response":
                inv.finish("ok", body)
            else:
                inv.finish("error", body, headers.get("lambda-runtime-function-error-type"))
            return _http(202, b'{"status":"OK"}')
        if method == "POST" and rest == "init/error":
            self.init_error = body or b"{}"
            self.ready.set()
            return _http(202, b'{"status":"OK"}')
        return _http(404, b'{"errorMessage":"unknown runtime API path"}')

    def _next_response(self) -> bytes | None:
        if not self.ready.is_set():
            self.init_ms = (time.perf_counter() - self.spawned_at) * 1000
            with self._lock:
                if self.state == "init":
                    self.state = "idle"
            self.ready.set()
        inv = self._next_invocation()
        if inv is None:
            return None
        inv.started = time.perf_counter()
        headers = [("Lambda-Runtime-Aws-Request-Id", inv.request_id),
                   ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
                   ("Lambda-Runtime-Invoked-Function-Arn", self.spec.arn),
                   ("Lambda-Runtime-Trace-Id", inv.trace_id),
                   ("Content-Type", "application/json")]
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
    chunks = []
    while True:
        size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        chunks.append(rfile.read(size))
        rfile.readline()


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}


def _http(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}", f"Content-Length: {len(body)}"]
    if headers is None:
        head.append("Content-Type: application/json")
    else:
        head.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class TreeRss:
    """Resident set size of a process and its descendants, cheaply.

    ``/proc/<pid>/statm`` stays open and is re-read with ``pread`` (psutil
    opens it on every call: ~10x slower on the invoke path); descendants come
    from ``/proc/<pid>/task/*/children``, refreshed twice a second. Where
    ``/proc`` is missing (macOS), psutil does the same work.
    """

    PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd: int | None = None
        self._children: list[int] = []
        self._children_at = 0.0
        try:
            self._fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY)
        except OSError:
            self._ps = psutil.Process(pid)

    def read(self) -> int:
        try:
            if self._fd is None:
                return self._ps.memory_info().rss + sum(
                    c.memory_info().rss for c in self._ps.children(recursive=True))
            rss = int(os.pread(self._fd, 128, 0).split()[1]) * self.PAGE
        except (OSError, ValueError, IndexError, psutil.Error):
            return 0
        now = time.monotonic()
        if now - self._children_at > 0.5:
            self._children, self._children_at = _descendants(self.pid), now
        for child in self._children:
            try:
                with open(f"/proc/{child}/statm", "rb") as fh:
                    rss += int(fh.read().split()[1]) * self.PAGE
            except (OSError, ValueError, IndexError):
                pass
        return rss

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", "rb") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


class OutputPump:
    """One thread reading every environment's stdout/stderr pipe (epoll), line by line with timestamps."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        fcntl.fcntl(self._wake_w, fcntl.F_SETFL, os.O_NONBLOCK)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="lambda-output", daemon=True)
        self._thread.start()

    def register(self, env: Environment) -> None:
        assert env.fd is not None
        self._selector.register(env.fd, selectors.EVENT_READ, env)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=1.0):
                env = key.data
                if env is None:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                try:
                    open_ = env.read_output()
                except Exception:  # noqa: BLE001 — one environment must not stop the others' output
                    logging.getLogger("swlab.localcloud.lambda").exception("reading %s failed", env.id)
                    open_ = False
                if not open_:
                    self._selector.unregister(key.fd)
                    env.close_output()
                    threading.Thread(target=env._exited, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        self._thread.join(timeout=5)


def error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()
