"""One Lambda execution environment: a subprocess running AWS's runtime client against our Runtime API.

An :class:`ExecutionEnvironment` is ``python -m awslambdaric <handler>`` in its
own process group, working directory = the unzipped code (``LAMBDA_TASK_ROOT``),
talking to its own :class:`~.runtime_api.RuntimeApi`
(``AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>``). Its stdout/stderr (one pipe) is
read by the shared :class:`~.output_pump.OutputPump`.

States (:class:`EnvState`): ``INIT`` → ``IDLE`` ⇄ ``BUSY`` → ``DEAD``. ``kill``
(any state) and the end of the process's output both lead to ``DEAD``; an
invocation in flight then ends with the kill's reason (or ``exit``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from enum import Enum
from pathlib import Path
from typing import Callable

from swlab.localcloud.lambda_runtime.invocation import Invocation
from swlab.localcloud.lambda_runtime.memory import TreeRss
from swlab.localcloud.lambda_runtime.output_pump import OutputPump, PipeLines
from swlab.localcloud.lambda_runtime.runtime_api import RuntimeApi
from swlab.localcloud.lambda_runtime.spec import RuntimeSpec, build_environment, log_stream_name

_SIGNAL_NAMES: dict[int, str] = {
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGINT: "interrupt",
    signal.SIGBUS: "bus error",
}


class EnvState(Enum):
    INIT = "init"  # spawned; the runtime has not asked for work yet
    IDLE = "idle"  # warm, waiting in the pool
    BUSY = "busy"  # claimed by an invoke
    DEAD = "dead"  # killed or exited; never comes back


def exit_description(returncode: int | None) -> str:
    """Go-style wording Lambda uses: ``exit status 1`` / ``signal: killed``."""
    if returncode is None:
        return "signal: killed"
    if returncode < 0:
        return "signal: " + _SIGNAL_NAMES.get(-returncode, f"signal {-returncode}")
    return f"exit status {returncode}"


class ExecutionEnvironment:
    """An execution environment; ``on_output(env, timestamp, line)`` receives each line it writes."""

    def __init__(
        self,
        spec: RuntimeSpec,
        python: str,
        runtime_dir: Path,
        endpoint_url: str,
        on_output: Callable[["ExecutionEnvironment", float, str], None],
    ) -> None:
        self.spec = spec
        self.id = uuid.uuid4().hex
        self.log_stream = log_stream_name(self.id, spec.version)
        self.python = python
        self.runtime_dir = runtime_dir
        self.endpoint_url = endpoint_url
        self._on_output = on_output
        self.state = EnvState.INIT
        self.ready = threading.Event()
        self.init_error: bytes | None = None
        self.init_ms: float | None = None
        self.exit_reason: str | None = None
        self.killed_for: str | None = None
        self.current: Invocation | None = None
        self.last_used = time.monotonic()
        self.peak_rss = 0
        self.proc: subprocess.Popen | None = None
        self.output: PipeLines | None = None
        self._rss: TreeRss | None = None
        self._lock = threading.Lock()
        self._runtime_api = RuntimeApi(self, spec.arn)
        self.spawned_at = 0.0

    # -- lifecycle -------------------------------------------------------------------
    def start(self, pump: OutputPump) -> "ExecutionEnvironment":
        runtime_api = self._runtime_api.start()
        env = build_environment(self.spec, self.id, self.log_stream, runtime_api, self.runtime_dir, self.endpoint_url)
        cmd = [self.python, *(["-S"] if self.spec.isolated else []), "-m", "awslambdaric", self.spec.handler]
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.spec.code_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        if self.state is EnvState.DEAD:  # killed while spawning (shutdown): end the process we just started
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._rss = TreeRss(self.proc.pid)
        assert self.proc.stdout is not None
        self.output = PipeLines(self.proc.stdout, lambda ts, line: self._on_output(self, ts, line))
        pump.register(self.output, self._exited, self.id)
        return self

    def is_dead(self) -> bool:
        return self.state is EnvState.DEAD

    def is_running(self) -> bool:
        """Initialising or busy: what the memory watchdog watches."""
        return self.state in (EnvState.INIT, EnvState.BUSY)

    def claim(self) -> bool:
        """Mark the environment busy unless it died meanwhile."""
        with self._lock:
            if self.state is EnvState.DEAD:
                return False
            self.state = EnvState.BUSY
            return True

    def set_idle(self) -> bool:
        with self._lock:
            if self.state is EnvState.DEAD:
                return False
            self.state = EnvState.IDLE
            self.current = None
            self.last_used = time.monotonic()
            return True

    def kill(self, reason: str) -> None:
        """SIGKILL the process group; the current invocation (if any) ends with ``reason``."""
        with self._lock:
            if self.state is EnvState.DEAD:
                return
            self.state = EnvState.DEAD
            self.killed_for = reason
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._runtime_api.close()
        inv = self.current
        if inv is not None:
            inv.finish(reason)
        self.ready.set()
        if self._rss is not None:
            self._rss.close()

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
            was_dead = self.state is EnvState.DEAD
            self.state = EnvState.DEAD
            self.exit_reason = exit_description(self.proc.returncode if self.proc else None)
        if not was_dead:
            self._runtime_api.close()
            inv = self.current
            if inv is not None:
                inv.finish("exit")
            self.ready.set()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait for the first ``/next`` (True) or a failure (init error, exit, kill; False)."""
        if not self.ready.wait(timeout_s):
            return False
        return self.state is not EnvState.DEAD and self.init_error is None

    # -- invocations -----------------------------------------------------------------
    def dispatch(self, inv: Invocation) -> None:
        inv.deadline_ms = int((time.time() + inv.timeout_s) * 1000)
        self.current = inv
        self._runtime_api.dispatch(inv)

    # -- what the runtime reports (RuntimeHost) --------------------------------------
    def runtime_next(self) -> None:
        if not self.ready.is_set():
            self.init_ms = (time.perf_counter() - self.spawned_at) * 1000
            with self._lock:
                if self.state is EnvState.INIT:
                    self.state = EnvState.IDLE
            self.ready.set()

    def runtime_init_error(self, body: bytes) -> None:
        self.init_error = body
        self.ready.set()

    # -- memory and output -----------------------------------------------------------
    def sample_rss(self) -> int:
        """Resident memory of the environment's process tree (bytes); updates the peaks."""
        if self._rss is None or self.state is EnvState.DEAD:
            return 0
        rss = self._rss.read()
        inv = self.current
        if inv is not None:
            inv.peak_rss = max(inv.peak_rss, rss)
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def drain_output(self) -> None:
        """Read everything the process has written so far (it flushed before posting its response)."""
        if self.output is not None:
            self.output.read()  # at EOF the pump closes the pipe and reports the exit
