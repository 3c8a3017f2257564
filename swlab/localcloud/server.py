"""The local cloud's HTTP server: one port on 127.0.0.1 answering like AWS.

One threaded WSGI server dispatches each request, in order, to

1. ``/_localcloud/health`` (our health endpoint, JSON) and ``/_localcloud/faults`` (the
   fault rules, :mod:`swlab.localcloud.faults`); then, when a fault rule fires for an S3 or
   DynamoDB request, the error AWS would answer;
2. the *routes* registered by our data planes (Lambda invoke and the Lambda
   Runtime API, the API Gateway data plane), each a :class:`Route`;
3. moto's WSGI application, mounted in-process, for every other AWS API.

Two ways to run it:

* :class:`LocalCloud` — in this process, in threads (the server process uses it);
* :class:`LocalCloudProcess` — a child process running ``python -m
  swlab.localcloud serve``, which is what users, scripts and tests start: moto's
  backends are process-global, so the cloud gets a process of its own.

Moto's Step Functions interpreter calls Lambda and DynamoDB with boto3 at
``http://localhost:$MOTO_PORT``; :meth:`LocalCloud.start` sets ``MOTO_PORT`` to
our port so those calls reach our data planes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable

from werkzeug.serving import BaseWSGIServer, make_server

from swlab.localcloud import apigw, moto_patches
from swlab.localcloud.faults import FAULTS_PATH, FaultInjector, aws_error_response
from swlab.localcloud.lambda_runtime import invoke_api
from swlab.localcloud.routes import Route, WSGIApp

log = logging.getLogger("swlab.localcloud")

HEALTH_PATH = "/_localcloud/health"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
DATA_PLANES = (invoke_api.mount, apigw.mount)  # in dispatch order: each mount(cloud) adds its routes


def _json_response(start_response: Callable, status: str, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class LocalCloud:
    """The local cloud in this process. ``start()`` binds, ``stop()`` ends every child process."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        work_dir: str | Path | None = None,
        region: str = "us-east-1",
        options: dict[str, Any] | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the local cloud binds loopback only, not {host!r}")
        self.host = host
        self.requested_port = port
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self.work_dir = Path(work_dir or Path.cwd() / ".localcloud").resolve()
        self.options = dict(options or {})
        self.faults = FaultInjector(self.options.get("faults") or ())
        self.routes: list[Route] = []
        self.components: list[Any] = []  # data planes with a shutdown() method
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._moto_app: WSGIApp | None = None
        self.started_at: float | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> "LocalCloud":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._server = make_server(
            self.host, self.requested_port, self._dispatch, threaded=True, request_handler=_request_handler()
        )
        self._server.daemon_threads = True  # type: ignore[attr-defined]  # threaded=True: a ThreadingMixIn
        os.environ["MOTO_PORT"] = str(self.port)
        moto_patches.apply(self.options)
        moto_patches.prewarm_task_client(self.region)  # not in the first Task's time (AWS has none)
        self._moto_app = _make_moto_app()
        self._mount_data_planes()
        self._thread = threading.Thread(target=self._server.serve_forever, name="localcloud-http", daemon=True)
        self._thread.start()
        self.started_at = time.time()
        log.info("local cloud listening on %s", self.endpoint_url)
        return self

    def _mount_data_planes(self) -> None:
        """Build the data planes; each adds its routes and components."""
        for mount in DATA_PLANES:
            mount(self)

    def stop(self) -> None:
        for component in reversed(self.components):
            try:
                component.shutdown()
            except Exception:  # noqa: BLE001 — stop the others whatever one does
                log.exception("shutting down %r failed", component)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "call start() first"
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- request dispatch ----------------------------------------------------------
    def moto_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        assert self._moto_app is not None, "call start() first"
        return self._moto_app(environ, start_response)

    def _dispatch(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return _json_response(start_response, "200 OK", self.health())
        if environ.get("PATH_INFO") == FAULTS_PATH:
            return self.faults.admin_app(environ, start_response)
        injection = self.faults.aws_fault(environ)
        if injection is not None:
            return aws_error_response(injection, environ, start_response)
        for route in self.routes:
            if route.matches(environ):
                return route.app(environ, start_response)
        return self.moto_app(environ, start_response)

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "endpoint": self.endpoint_url,
            "pid": os.getpid(),
            "region": self.region,
            "uptime_s": round(time.time() - (self.started_at or time.time()), 3),
            "routes": [r.name for r in self.routes],
            "faults_injected": self.faults.report()["total"],
            **{k: v for c in self.components if hasattr(c, "health") for k, v in c.health().items()},
        }


def _make_moto_app() -> WSGIApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def _request_handler() -> type:
    """moto's request handler (keeps S3 metadata header spelling) with TCP_NODELAY.

    Without TCP_NODELAY every small response waits for the peer's delayed ACK:
    measured ~88 ms per warm Lambda invoke on this machine.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class Handler(MotoRequestHandler):
        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_request(self, *args: Any, **kwargs: Any) -> None:  # access log off: too noisy under load
            pass

    return Handler


# ---------------------------------------------------------------------------------
# The local cloud as a child process (what scripts and tests start).
# ---------------------------------------------------------------------------------


class LocalCloudError(RuntimeError):
    """The local cloud could not be started, reached or stopped; the message says why."""


class LocalCloudProcess:
    """Start ``python -m swlab.localcloud serve`` and wait until it is healthy.

    ``port=0`` picks a free port; the child reports it in a state file.
    ``stop()`` asks it to shut down (SIGTERM) and, past ``grace_s``, kills its
    whole process group, so no Lambda environment outlives it.
    """

    def __init__(
        self,
        port: int = 0,
        work_dir: str | Path = ".localcloud",
        options: dict[str, Any] | None = None,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.work_dir = Path(work_dir).resolve()
        self.options = dict(options or {})
        self.python = python
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.state: dict[str, Any] = {}

    @property
    def state_file(self) -> Path:
        return self.work_dir / "state.json"

    @property
    def log_file(self) -> Path:
        return self.work_dir / "localcloud.log"

    @property
    def endpoint_url(self) -> str:
        return self.state["endpoint"]

    @property
    def pid(self) -> int:
        return int(self.state["pid"])

    def start(self, timeout_s: float = 60.0) -> "LocalCloudProcess":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.unlink(missing_ok=True)
        cmd = [
            self.python,
            "-m",
            "swlab.localcloud",
            "serve",
            "--port",
            str(self.port),
            "--work-dir",
            str(self.work_dir),
            "--options",
            json.dumps(self.options),
        ]
        env = dict(os.environ if self.env is None else self.env)
        with open(self.log_file, "ab") as log_fh:
            self.proc = subprocess.Popen(
                cmd, stdout=log_fh, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LocalCloudError(
                    f"the local cloud exited with code {self.proc.returncode}; "
                    f"see {self.log_file}:\n{_tail(self.log_file)}"
                )
            if self.state_file.exists():
                self.state = json.loads(self.state_file.read_text())
                if wait_healthy(self.endpoint_url, timeout_s=max(1.0, deadline - time.monotonic())):
                    return self
            time.sleep(0.05)
        self.stop()
        raise LocalCloudError(f"the local cloud did not become healthy in {timeout_s:.0f} s; see {self.log_file}")

    def stop(self, grace_s: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log.warning("local cloud did not stop in %.0f s; killing its process group", grace_s)
        _kill_group(self.proc.pid)
        self.proc.wait(timeout=10)
        self.state_file.unlink(missing_ok=True)
        self.proc = None

    def __enter__(self) -> "LocalCloudProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def health_of(endpoint_url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """What the health endpoint of the local cloud at ``endpoint_url`` says (empty when it does not answer)."""
    try:
        with urllib.request.urlopen(endpoint_url + HEALTH_PATH, timeout=timeout_s) as resp:
            return dict(json.loads(resp.read()))
    except (OSError, ValueError):
        return {}


def faults_of(endpoint_url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The fault report of the local cloud at ``endpoint_url`` (rules, counts per type; empty when it does not answer)."""
    try:
        with urllib.request.urlopen(endpoint_url + FAULTS_PATH, timeout=timeout_s) as resp:
            return dict(json.loads(resp.read()))
    except (OSError, ValueError):
        return {}


def add_faults(endpoint_url: str, rules: list[Any], timeout_s: float = 10.0) -> dict[str, Any]:
    """POST fault rules to a running local cloud; ``LocalCloudError`` with its reason when refused."""
    req = urllib.request.Request(endpoint_url + FAULTS_PATH, data=json.dumps(rules).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        reason = json.loads(exc.read() or b"{}").get("error", exc.reason)
        raise LocalCloudError(f"the local cloud refused the fault rules: {reason}") from None
    except OSError as exc:
        raise LocalCloudError(f"the local cloud at {endpoint_url} did not answer: {exc}") from None


def wait_healthy(endpoint_url: str, timeout_s: float = 30.0) -> bool:
    """Poll the health endpoint until it answers 200 or the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(endpoint_url + HEALTH_PATH, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def serve_forever(port: int, work_dir: Path, options: dict[str, Any]) -> None:
    """Entry point of the server process: run until SIGTERM/SIGINT, then stop cleanly."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cloud = LocalCloud(port=port, work_dir=work_dir, options=options).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    state = {"endpoint": cloud.endpoint_url, "port": cloud.port, "pid": os.getpid(), "started_at": cloud.started_at}
    tmp = work_dir / "state.json.tmp"
    tmp.write_text(json.dumps(state))
    tmp.replace(work_dir / "state.json")
    stop.wait()
    log.info("stopping")
    cloud.stop()
    log.info("stopped")
