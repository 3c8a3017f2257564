"""The Lambda data plane: an invoke from concurrency slot to REPORT line, over execution environments.

:class:`LambdaDataPlane` takes a concurrency slot (reserved or unreserved), a
warm environment from the pool or a new one (init phase, INIT_START/INIT_REPORT),
hands the event to the environment's Runtime API, waits up to the function's
timeout, then writes END/REPORT (:mod:`swlab.localcloud.report_lines`), the
metrics, and returns the environment to the pool or ends it. The HTTP side
(Invoke, the admin endpoint) is :mod:`.invoke_api`.

Options (``cloud.options``; defaults in :class:`LambdaOptions`): ``idle_ttl_s``,
``account_concurrency``, ``python``, ``init_timeout_s``, ``memory_poll_ms``,
``runtime_isolation``, ``async_workers``, ``log_flush_s``, ``log_events_per_group``.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from swlab.localcloud import report_lines
from swlab.localcloud.lambda_runtime.catalog import FunctionCatalog
from swlab.localcloud.lambda_runtime.execution_environment import ExecutionEnvironment
from swlab.localcloud.lambda_runtime.invocation import Invocation, error_body
from swlab.localcloud.lambda_runtime.memory import MemoryWatchdog
from swlab.localcloud.lambda_runtime.output_pump import OutputPump
from swlab.localcloud.lambda_runtime.pool import Concurrency, Pool, Reaper
from swlab.localcloud.lambda_runtime.spec import MIB, RuntimeSpec
from swlab.localcloud.lambda_runtime.telemetry import Telemetry

log = logging.getLogger("swlab.localcloud.lambda")

SYNC_PAYLOAD_LIMIT = 6 * MIB  # request and response of a RequestResponse invoke
ASYNC_PAYLOAD_LIMIT = 256 * 1024  # request of an Event invoke


@dataclass(frozen=True)
class LambdaOptions:
    idle_ttl_s: float = 300.0  # idle environments are ended after this long
    account_concurrency: int = 1000  # account-wide concurrent executions (unreserved pool = this − reserved)
    python: str = sys.executable  # interpreter of the execution environments
    init_timeout_s: float = 10.0  # AWS's init phase limit (the function timeout if larger)
    memory_poll_ms: float = 25.0  # resident-memory watchdog period
    runtime_isolation: bool = True  # Zip functions see only the AWS runtime's packages + their zip
    async_workers: int = 8  # threads running Event (async) invokes
    log_flush_s: float = 0.2  # log events and metrics are written to moto in batches this often
    log_events_per_group: int = 20000  # oldest events beyond this are dropped (moto keeps logs in memory; 0 = all)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "LambdaOptions":
        known = {f.name: f.type for f in fields(cls)}
        values = {k: v for k, v in options.items() if k in known}
        return cls(**values)


@dataclass
class Outcome:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_error(status: int, error_type: str, message: str, extra: dict | None = None) -> Outcome:
    body = json.dumps({"Type": "User", "Message": message, "message": message, **(extra or {})}).encode()
    return Outcome(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)], body)


class LambdaDataPlane:
    """Runs Lambda functions as local execution environments; ``shutdown()`` ends every process group."""

    def __init__(self, options: LambdaOptions, work_dir: Path, endpoint_url: str, account_id: str, region: str) -> None:
        self.options = options
        self.endpoint_url = endpoint_url
        self.account_id = account_id
        self.region = region
        self.catalog = FunctionCatalog(work_dir, options.runtime_isolation, self._retire)
        self.concurrency = Concurrency(options.account_concurrency)
        self.pool = Pool()
        self.telemetry = Telemetry(options.log_flush_s, options.log_events_per_group)
        self.pump = OutputPump()
        self._async = ThreadPoolExecutor(max_workers=options.async_workers, thread_name_prefix="lambda-async")
        self._stop = threading.Event()
        watchdog = MemoryWatchdog(self.pool.snapshot, options.memory_poll_ms / 1000, self._stop)
        reaper = Reaper(self.pool, options.idle_ttl_s, self._stop)
        self._threads = [
            threading.Thread(target=watchdog.run, name="lambda-memory", daemon=True),
            threading.Thread(target=reaper.run, name="lambda-reaper", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- invoke ------------------------------------------------------------------------------
    def invoke(
        self, spec: RuntimeSpec, fn: Any, payload: bytes, client_context: str | None = None, tail: bool = False
    ) -> Outcome:
        key = spec.key
        reserved = None if fn.reserved_concurrency is None else int(fn.reserved_concurrency)
        total = self.catalog.reserved_total(spec.account_id, spec.region) if reserved is None else 0
        reason, in_flight = self.concurrency.try_acquire(key, reserved, total)
        if reason is not None:
            self.telemetry.metric(spec, "Throttles", 1)
            return json_error(429, "TooManyRequestsException", "Rate Exceeded.", {"Reason": reason})
        try:
            self.telemetry.metric(spec, "ConcurrentExecutions", in_flight)
            return self._invoke_in_slot(spec, payload, client_context, tail)
        finally:
            self.concurrency.release(key, reserved is not None)

    def submit_async(self, spec: RuntimeSpec, fn: Any, payload: bytes, client_context: str | None) -> None:
        """An Event invoke: run it on a worker thread (the caller answers 202 at once)."""
        self._async.submit(self._invoke_async, spec, fn, payload, client_context)

    def _invoke_async(self, spec: RuntimeSpec, fn: Any, payload: bytes, client_context: str | None) -> None:
        """Event invokes: throttles are retried with backoff (AWS retries for hours; we try 6 times)."""
        delay = 0.25
        for _ in range(6):
            if self._stop.is_set():
                return
            outcome = self.invoke(spec, fn, payload, client_context)
            if outcome.status != 429:
                return
            self._stop.wait(delay)
            delay *= 2
        log.warning("async invoke of %s dropped after repeated throttling", spec.name)

    def _invoke_in_slot(self, spec: RuntimeSpec, payload: bytes, client_context: str | None, tail: bool) -> Outcome:
        inv = Invocation(payload, spec.timeout_s, client_context)
        env = self.pool.take_idle(spec)
        cold = env is None
        if env is None:
            env = self._spawn(spec)
            if not env.wait_ready(max(self.options.init_timeout_s, spec.timeout_s)):
                self._init_failed(env, inv)
        if inv.status is None and not env.claim():
            inv.started = time.perf_counter()
            inv.finish(env.killed_for or "exit")
        if inv.status is None:
            self._log(env, report_lines.start_line(inv.request_id, spec.version) + "\n", inv)
            env.dispatch(inv)
            if not inv.done.wait(spec.timeout_s):
                env.kill("timeout")
        return self._finish(env, inv, cold, tail)

    def _spawn(self, spec: RuntimeSpec) -> ExecutionEnvironment:
        env = ExecutionEnvironment(
            spec, self.options.python, self.catalog.runtime_dir, self.endpoint_url, self._on_output
        )
        self.pool.add(env)
        self._log(env, report_lines.init_start_line(spec.runtime, spec.region) + "\n")
        env.start(self.pump)
        if self._stop.is_set():  # shutting down: no environment may outlive the server
            env.kill("shutdown")
        return env

    def _init_failed(self, env: ExecutionEnvironment, inv: Invocation) -> None:
        """The environment never asked for work: init error, exit, memory or time limit."""
        inv.started = time.perf_counter()
        if env.init_ms is None:  # the init phase ended here, without a /next
            env.init_ms = (inv.started - env.spawned_at) * 1000
        if env.init_error is not None:
            try:
                error_type = json.loads(env.init_error).get("errorType") or "Runtime.Unknown"
            except ValueError:
                error_type = "Runtime.Unknown"
            env.kill("init_error")
            inv.finish("init_error", env.init_error, error_type)
        elif env.is_dead():
            inv.finish(env.killed_for or "exit")
        else:
            env.kill("timeout")
            inv.finish("timeout")
        status = "timeout" if inv.status == "timeout" else "error"
        error_type = {"init_error": inv.error_type, "oom": "Runtime.OutOfMemory"}.get(
            inv.status or "", "Runtime.ExitError"
        )
        self._log(env, report_lines.init_report_line(env.init_ms, status, error_type) + "\n")
        self._log(env, report_lines.start_line(inv.request_id, env.spec.version) + "\n", inv)

    def _finish(self, env: ExecutionEnvironment, inv: Invocation, cold: bool, tail: bool) -> Outcome:
        spec = env.spec
        env.drain_output()
        inv.closed = True
        duration_ms = ((inv.ended or time.perf_counter()) - (inv.started or inv.ended or 0)) * 1000
        env.sample_rss()
        used_mb = round(max(inv.peak_rss, env.peak_rss if cold else 0) / MIB)
        init_ms = env.init_ms if cold else None
        billed = math.ceil(duration_ms + (init_ms or 0))  # the INIT phase is billed (AWS, since Aug 2025)
        status, body, error_type, platform_status = self._classify(env, inv, duration_ms)
        if platform_status and inv.status in ("oom", "exit"):
            self._log(
                env,
                report_lines.runtime_exit_line(inv.request_id, env.exit_reason or "signal: killed", error_type) + "\n",
                inv,
            )
        self._log(env, report_lines.end_line(inv.request_id) + "\n", inv)
        self._log(
            env,
            report_lines.report_line(
                inv.request_id,
                duration_ms,
                billed,
                spec.memory_mb,
                used_mb,
                init_ms,
                platform_status,
                error_type if platform_status == "error" else None,
            )
            + "\n",
            inv,
        )
        if inv.status == "timeout":
            self._log(env, report_lines.timeout_line(inv.request_id, duration_ms / 1000) + "\n")
        self._release(env, inv)
        self._metrics(spec, status != "ok", duration_ms)
        headers = [
            ("Content-Type", "application/json"),
            ("X-Amz-Executed-Version", spec.version),
            ("x-amzn-RequestId", inv.request_id),
        ]
        if status != "ok":
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        if tail:
            text = "".join(inv.lines).encode()[-4096:]
            headers.append(("X-Amz-Log-Result", base64.b64encode(text).decode()))
        return Outcome(200, headers, body)

    def _classify(self, env: ExecutionEnvironment, inv: Invocation, duration_ms: float) -> tuple:
        """→ (status, response body, error type, REPORT status or None)."""
        rid = inv.request_id
        if inv.status == "ok" and len(inv.body) > SYNC_PAYLOAD_LIMIT:
            message = f"Response payload size exceeded maximum allowed payload size ({SYNC_PAYLOAD_LIMIT} bytes)."
            return "error", error_body("Function.ResponseSizeTooLarge", message), "Function.ResponseSizeTooLarge", None
        if inv.status == "ok":
            return "ok", inv.body, None, None
        if inv.status == "error":
            return "error", inv.body, inv.error_type, None
        if inv.status == "init_error":
            return "error", inv.body, inv.error_type, "error"
        if inv.status == "timeout":
            message = report_lines.timeout_line(rid, duration_ms / 1000)
            return "error", json.dumps({"errorMessage": message}).encode(), "Sandbox.Timedout", "timeout"
        error_type = "Runtime.OutOfMemory" if inv.status == "oom" else "Runtime.ExitError"
        reason = "signal: killed" if inv.status == "oom" else (env.exit_reason or "signal: killed")
        message = f"RequestId: {rid} Error: Runtime exited with error: {reason}"
        return "error", error_body(error_type, message), error_type, "error"

    def _release(self, env: ExecutionEnvironment, inv: Invocation) -> None:
        current = self.catalog.current(env.spec.key)
        if inv.status in ("ok", "error") and not env.is_dead() and current is env.spec:
            self.pool.put_idle(env)
            return
        env.kill(inv.status or "retired")
        self.pool.remove(env)

    def _metrics(self, spec: RuntimeSpec, failed: bool, duration_ms: float) -> None:
        self.telemetry.metric(spec, "Invocations", 1)
        self.telemetry.metric(spec, "Errors", 1 if failed else 0)
        self.telemetry.metric(spec, "Duration", duration_ms, "Milliseconds")

    def _log(self, env: ExecutionEnvironment, message: str, inv: Invocation | None = None) -> None:
        self.telemetry.log(env.spec, env.log_stream, time.time(), message)
        if inv is not None:
            inv.lines.append(message)

    def _on_output(self, env: ExecutionEnvironment, ts: float, message: str) -> None:
        self.telemetry.log(env.spec, env.log_stream, ts, message)
        inv = env.current
        if inv is not None and not inv.closed:
            inv.lines.append(message)

    def _retire(self, key: tuple) -> None:
        """A function's code or configuration changed: its idle environments end (busy ones after their invoke)."""
        self.pool.end_expired(0.0, "retired", key)

    # -- idle environments, shutdown ---------------------------------------------------------
    def end_idle(self, function_name: str | None = None) -> int:
        """End idle environments (of one function, or all): the next invokes start cold."""
        envs = [e for e in self.pool.take_expired(0.0) if function_name in (None, e.spec.name)]
        for env in envs:
            env.kill("reset")
            self.pool.remove(env)
        return len(envs)

    def shutdown(self) -> None:
        self._stop.set()
        self._async.shutdown(wait=False, cancel_futures=True)
        envs = self.pool.snapshot()
        for env in envs:
            env.kill("shutdown")
        for env in envs:
            if env.proc is not None:
                try:
                    env.proc.wait(timeout=5)
                except Exception:  # noqa: BLE001
                    pass
        self.pump.stop()
        for t in self._threads:
            t.join(timeout=2)
        self.telemetry.stop()
