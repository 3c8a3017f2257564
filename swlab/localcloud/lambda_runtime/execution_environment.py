"""One Lambda execution environment: a subprocess running AWS's runtime client against our Runtime API.

An :class:`ExecutionEnvironment` is ``python -m awslambdaric <handler>`` in its
own process group, working directory = the unzipped code (``LAMBDA_TASK_ROOT``),
talking to its own :class:`~.runtime_api.RuntimeApi`
(``AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>``). Its stdout/stderr (one pipe) and its
framed log pipe (``_LAMBDA_TELEMETRY_LOG_FD``) are read by the shared :class:`~.output_pump.OutputPump`.
Its private ``/tmp`` (``TMPDIR``) is created at spawn and removed once the process is reaped.

States (:class:`EnvState`): ``INIT`` → ``IDLE`` ⇄ ``BUSY`` → ``DEAD``. ``kill``
(any state) and the end of the process's output both lead to ``DEAD``; an
invocation in flight then ends with the kill's reason (or ``exit``).

CPU: right after the spawn the process group is attached to the data plane's CPU limiter. With
``init_boost`` its init phase gets :func:`~swlab.localcloud.cpu_share.init_cpu_share` (the vCPUs AWS
runs an init on, whatever the memory size) and the runtime's first ``/next`` — the end of the init,
where Init Duration is measured — drops it to the share its memory size gives
(:func:`~swlab.localcloud.cpu_share.host_cpu_share`) before any invocation is dispatched; without it
init and invokes both get the memory share. The limit is released when the environment ends.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from enum import Enum
from pathlib import Path
from typing import Callable

from swlab.localcloud.cpu_share import Limit, Limiter, NoLimiter, host_cpu_share, init_cpu_share
from swlab.localcloud.lambda_runtime.invocation import Invocation
from swlab.localcloud.lambda_runtime.memory import TreeRss
from swlab.localcloud.lambda_runtime.output_pump import LogFrames, OutputPump, PipeLines
from swlab.localcloud.lambda_runtime.runtime_api import RuntimeApi
from swlab.localcloud.lambda_runtime.spec import RuntimeSpec, build_environment, log_stream_name

log = logging.getLogger("swlab.localcloud.lambda")

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
        cpu: Limiter | None = None,
        init_boost: bool = False,
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
        self.provisioned = False  # kept initialised by a provisioned concurrency configuration
        self.init_error: bytes | None = None
        self.init_ms: float | None = None
        self.exit_reason: str | None = None
        self.killed_for: str | None = None
        self.current: Invocation | None = None
        self.last_used = time.monotonic()
        self.peak_rss = 0
        self.proc: subprocess.Popen | None = None
        self.output: PipeLines | None = None
        self.log_frames: LogFrames | None = None
        self._rss: TreeRss | None = None
        self._lock = threading.Lock()
        self._runtime_api = RuntimeApi(self, spec.arn)
        self.spawned_at = 0.0
        self.tmp_dir = runtime_dir.parent / "tmp" / self.id  # the environment's private /tmp (TMPDIR)
        self._cpu = cpu or NoLimiter()
        self._cpu_limit: Limit | None = None
        self._boosted = init_boost  # the init phase runs on init_cpu_share until the first /next

    # -- lifecycle -------------------------------------------------------------------
    def start(self, pump: OutputPump) -> "ExecutionEnvironment":
        runtime_api = self._runtime_api.start()
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        env = build_environment(
            self.spec, self.log_stream, runtime_api, self.runtime_dir, self.endpoint_url, self.tmp_dir
        )
        if self.provisioned:
            env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "provisioned-concurrency"
        # -B: nothing is written next to the code, as on AWS where it is read-only (/var/task): every cold
        # start compiles what the package does not ship as bytecode (swlab.provision.bytecode ships it).
        cmd = [self.python, "-B", *(["-S"] if self.spec.isolated else []), "-m", "awslambdaric", self.spec.handler]
        frames_r, frames_w = os.pipe()  # the runtime's log records, framed (as AWS's runtimes write them)
        env["_LAMBDA_TELEMETRY_LOG_FD"] = str(frames_w)
        self.spawned_at = time.perf_counter()
        try:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.spec.code_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                pass_fds=(frames_w,),
            )
        except BaseException:
            os.close(frames_r)
            raise
        finally:
            os.close(frames_w)
        mb = self.spec.memory_mb
        try:
            limit = self._cpu.attach(
                self.proc.pid,
                init_cpu_share(mb) if self._boosted else host_cpu_share(mb),
                f"{self.spec.name}-{self.id[:8]}",
            )
            with self._lock:
                self._cpu_limit = limit
        except OSError as exc:  # the process ended already, or the limiter failed: run unlimited, say so
            log.warning("CPU share of environment %s of %s not applied: %s", self.id, self.spec.name, exc)
        if self.ready.is_set():  # the init ended before the limit was attached
            self.end_init_boost()
        if self.state is EnvState.DEAD:  # killed while spawning (shutdown): end the process we just started
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._rss = TreeRss(self.proc.pid)
        assert self.proc.stdout is not None
        self.output = PipeLines(self.proc.stdout, lambda ts, line: self._on_output(self, ts, line))
        self.log_frames = LogFrames(os.fdopen(frames_r, "rb", 0), lambda ts, msg: self._on_output(self, ts, msg))
        pump.register(self.log_frames, lambda: None, self.id + "-log")
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

    def tmp_bytes(self) -> int:
        """Bytes the environment's files in its private /tmp take (what EphemeralStorage limits)."""
        total, todo = 0, [str(self.tmp_dir)]
        while todo:
            try:
                entries = list(os.scandir(todo.pop()))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        todo.append(entry.path)
                    else:
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
                except OSError:
                    pass
        return total

    def end_init_boost(self) -> None:
        """The init phase is over: from now on the environment gets its memory's share (once; no-op unboosted)."""
        with self._lock:
            limit = self._cpu_limit if self._boosted else None
            if limit is not None:
                self._boosted = False
        if limit is not None:
            try:
                limit.set_share(host_cpu_share(self.spec.memory_mb))
            except OSError as exc:  # the group is gone (the process ended meanwhile)
                log.warning("CPU share of environment %s of %s not lowered: %s", self.id, self.spec.name, exc)

    def release(self) -> None:
        """Once the process is reaped (``_exited``, shutdown): the CPU limit (its cgroup) and the /tmp go."""
        with self._lock:
            limit, self._cpu_limit = self._cpu_limit, None
        if limit is not None:
            limit.release()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

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
        self.release()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait for the first ``/next`` (True) or a failure (init error, exit, kill; False)."""
        if not self.ready.wait(timeout_s):
            return False
        return self.state is not EnvState.DEAD and self.init_error is None

    # -- invocations -----------------------------------------------------------------
    def dispatch(self, inv: Invocation, remaining_s: float | None = None) -> None:
        """Hand ``inv`` to the runtime; its deadline is ``remaining_s`` away (the whole timeout by default)."""
        inv.deadline_ms = int((time.time() + (inv.timeout_s if remaining_s is None else remaining_s)) * 1000)
        self.current = inv
        self._runtime_api.dispatch(inv)

    # -- what the runtime reports (RuntimeHost) --------------------------------------
    def runtime_next(self) -> None:
        if not self.ready.is_set():
            self.init_ms = (time.perf_counter() - self.spawned_at) * 1000
            self.end_init_boost()  # before the environment can be handed an invocation
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
        """Read everything the process has written so far (it flushed before posting its response).

        Output without a trailing newline is emitted too: it belongs to the invocation that wrote it.
        """
        if self.log_frames is not None:
            self.log_frames.read()
        if self.output is not None:
            self.output.read()  # at EOF the pump closes the pipe and reports the exit
            self.output.flush()
