"""The Lambda data plane: an invoke from concurrency slot to REPORT line, over execution environments.

:class:`LambdaDataPlane` takes a concurrency slot (reserved or unreserved), a
warm environment from the pool or a new one (init phase, INIT_START/INIT_REPORT),
hands the event to the environment's Runtime API, waits up to the function's
timeout, then writes END/REPORT (:mod:`swlab.localcloud.report_lines`), the
metrics, and returns the environment to the pool or ends it. The HTTP side
(Invoke, the admin endpoint) is :mod:`.invoke_api`.

Options (``cloud.options``; defaults in :class:`LambdaOptions`): ``idle_ttl_s``,
``account_concurrency``, ``python``, ``init_timeout_s``, ``memory_poll_ms``,
``runtime_isolation``, ``async_workers``, ``async_retry_delays_s``, ``log_flush_s``, ``log_events_per_group``, ``cpu_model``,
``cpu_mechanism``, ``init_cpu``.

CPU follows memory (``cpu_model="aws"``, the default): each environment is attached to the
:mod:`swlab.localcloud.cpu_share` limiter right after it is spawned; its invokes get
:func:`~swlab.localcloud.cpu_share.host_cpu_share` of its memory size, and its init phase
(``init_cpu="boost"``, the default) :func:`~swlab.localcloud.cpu_share.init_cpu_share`, the 2 vCPUs AWS
runs inits on whatever the memory (a published measurement, see that module), or the memory share with
``init_cpu="memory"``. An init run again inside an invocation (after the 10 s init timeout) is part of
the invocation: memory share. The limit is released with the environment, the limiter at shutdown.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from swlab.localcloud import report_lines
from swlab.localcloud.cpu_share import INIT_CPU_MODES, choose_limiter
from swlab.localcloud.faults import LAMBDA_KILLS, FaultInjector, Injection
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
    init_timeout_s: float = 10.0  # AWS's init limit; past it the init runs again inside the first invoke
    memory_poll_ms: float = 25.0  # resident-memory watchdog period
    runtime_isolation: bool = True  # Zip functions see only the AWS runtime's packages + their zip
    async_workers: int = 8  # threads running Event (async) invokes
    async_retry_delays_s: tuple[float, ...] = (60.0, 120.0)  # AWS's waits before an async event's 2 retries
    log_flush_s: float = 0.2  # log events and metrics are written to moto in batches this often
    log_events_per_group: int = 20000  # oldest events beyond this are dropped (moto keeps logs in memory; 0 = all)
    cpu_model: str = "aws"  # "aws": CPU share follows memory size as on Lambda; "off": every environment unlimited
    cpu_mechanism: str | None = None  # force a limiter: cgroup-v1 | cgroup-v2 | sigstop | off (None: first that works)
    init_cpu: str = "boost"  # "boost": init phases get INIT_VCPUS whatever the memory, as measured on AWS; "memory"

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

    def __init__(
        self,
        options: LambdaOptions,
        work_dir: Path,
        endpoint_url: str,
        account_id: str,
        region: str,
        faults: FaultInjector | None = None,
    ) -> None:
        self.options = options
        self.faults = faults or FaultInjector()
        self.endpoint_url = endpoint_url
        self.account_id = account_id
        self.region = region
        self.catalog = FunctionCatalog(work_dir, options.runtime_isolation, self._retire, options.python)
        self.concurrency = Concurrency(options.account_concurrency)
        self.pool = Pool()
        self.telemetry = Telemetry(options.log_flush_s, options.log_events_per_group)
        self.pump = OutputPump()
        if options.init_cpu not in INIT_CPU_MODES:
            raise ValueError(f"init_cpu must be one of {', '.join(INIT_CPU_MODES)}, not {options.init_cpu!r}")
        self.cpu = choose_limiter(options.cpu_model, prefer=options.cpu_mechanism)
        log.info("Lambda CPU model %s (init: %s) through %s", options.cpu_model, options.init_cpu, self.cpu.name)
        self.provisioned: Any = None  # the :class:`~.provisioned.ProvisionedConcurrency` mount() attaches
        self.async_invoker: Any = None  # the :class:`~.async_invoke.AsyncInvoker` mount() attaches
        self._async = ThreadPoolExecutor(max_workers=options.async_workers, thread_name_prefix="lambda-async")
        self._stop = threading.Event()
        watchdog = MemoryWatchdog(self.pool.snapshot, options.memory_poll_ms / 1000, self._stop)
        reaper = Reaper(self.pool, options.idle_ttl_s, self._stop, self._forget_deleted)
        self._threads = [
            threading.Thread(target=watchdog.run, name="lambda-memory", daemon=True),
            threading.Thread(target=reaper.run, name="lambda-reaper", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- invoke ------------------------------------------------------------------------------
    def invoke(
        self,
        spec: RuntimeSpec,
        fn: Any,
        payload: bytes,
        client_context: str | None = None,
        tail: bool = False,
        invoked_arn: str | None = None,
        request_id: str | None = None,
    ) -> Outcome:
        """Invoke ``spec``'s version; ``fn``: the function's $LATEST configuration (reserved concurrency is
        function-wide); ``invoked_arn``: the ARN as the caller named it (context.invoked_function_arn)."""
        key = spec.key
        reserved = None if fn.reserved_concurrency is None else int(fn.reserved_concurrency)
        total = self.catalog.reserved_total(spec.account_id, spec.region) if reserved is None else 0
        reason, in_flight = self.concurrency.try_acquire(key, reserved, total)
        if reason is not None:
            self.telemetry.metric(spec, "Throttles", 1)
            return json_error(429, "TooManyRequestsException", "Rate Exceeded.", {"Reason": reason})
        try:
            self.telemetry.metric(spec, "ConcurrentExecutions", in_flight)
            fault = self.faults.lambda_fault(spec.name)
            if fault is not None and fault.rule.type not in LAMBDA_KILLS:
                return self._injected_failure(spec, fault)
            return self._invoke_in_slot(spec, payload, client_context, tail, invoked_arn, request_id, fault)
        finally:
            self.concurrency.release(key, reserved is not None)
            if self.provisioned is not None:
                self.provisioned.after_invoke(spec)

    def run_async(self, work: Callable[..., None], *args: Any) -> None:
        """Run ``work(*args)`` on an async worker (:mod:`.async_invoke`); nothing once shutting down."""
        if not self._stop.is_set():
            self._async.submit(work, *args)

    def stopping(self, wait_s: float = 0.0) -> bool:
        """Whether the plane is shutting down (after waiting up to ``wait_s`` for it)."""
        return self._stop.wait(wait_s) if wait_s > 0 else self._stop.is_set()

    def _injected_failure(self, spec: RuntimeSpec, fault: Injection) -> Outcome:
        """A fault before any environment runs: the service is down (500), or the function raised."""
        self._metrics(spec, True, 0.0)
        if fault.rule.type == "function_down":
            return Outcome(
                500,
                [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ServiceException")],
                json.dumps({"Type": "Service", "Message": f"{spec.name} is down (injected fault)"}).encode(),
            )
        error_type = fault.rule.error_type
        body = error_body(error_type, f"Injected fault: {error_type} before the handler ran")
        headers = [
            ("Content-Type", "application/json"),
            ("X-Amz-Executed-Version", spec.version),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            ("X-Amz-Function-Error", "Unhandled"),
        ]
        return Outcome(200, headers, body)

    def _invoke_in_slot(
        self,
        spec: RuntimeSpec,
        payload: bytes,
        client_context: str | None,
        tail: bool,
        invoked_arn: str | None,
        request_id: str | None,
        fault: Injection | None = None,
    ) -> Outcome:
        inv = Invocation(payload, spec.timeout_s, client_context, invoked_arn, request_id)
        env = self.pool.take_idle(spec)
        cold = env is None
        if env is None:
            env = self._spawn(spec)
            if not env.wait_ready(self.options.init_timeout_s):
                if env.is_dead() or env.init_error is not None:
                    self._init_failed(env, inv)
                else:
                    env = self._init_in_invoke(env, inv)
        if inv.status is None and not env.claim():
            inv.started = inv.started or time.perf_counter()
            inv.finish(env.killed_for or "exit")
        if inv.status is None:
            if inv.started is None:  # else START was written before the init ran again
                self._log(env, report_lines.start_line(inv.request_id, spec.version) + "\n", inv)
            env.dispatch(inv, self._remaining_s(inv))
            if fault is not None and not inv.done.wait(min(fault.rule.after_s, self._remaining_s(inv))):
                env.kill(LAMBDA_KILLS[fault.rule.type])  # lambda_kill / lambda_timeout / lambda_oom
            if not inv.done.wait(self._remaining_s(inv)):
                env.kill("timeout")
        return self._finish(env, inv, cold, tail)

    @staticmethod
    def _remaining_s(inv: Invocation) -> float:
        """The function's timeout left (all of it, unless the invocation had to run the init first)."""
        return inv.timeout_s - (time.perf_counter() - inv.started if inv.started is not None else 0.0)

    def _init_in_invoke(self, env: ExecutionEnvironment, inv: Invocation) -> ExecutionEnvironment:
        """The init phase ran out of time (10 s): as on AWS, the init runs again inside the invocation.

        INIT_REPORT says ``Phase: init Status: timeout``; the environment is reset (a new process, same
        log stream) and the invocation, whose Duration now includes the new init, waits for it under the
        function's timeout; if it fails again, INIT_REPORT says ``Phase: invoke``.
        """
        spec = env.spec
        env.init_ms = (time.perf_counter() - env.spawned_at) * 1000
        env.kill("init_timeout")
        self.pool.remove(env)
        self._log(env, report_lines.init_report_line(env.init_ms, "timeout") + "\n")
        inv.started = time.perf_counter()
        self._log(env, report_lines.start_line(inv.request_id, spec.version) + "\n", inv)
        fresh = self._spawn(spec, env.log_stream, init_boost=False)
        if fresh.wait_ready(max(0.0, self._remaining_s(inv))):
            fresh.init_ms = None  # its init time is the invocation's Duration, not an Init Duration
            return fresh
        init_ms = (time.perf_counter() - inv.started) * 1000
        if fresh.init_error is not None or fresh.is_dead():
            self._init_failed(fresh, inv, phase="invoke")
            return fresh
        fresh.kill("timeout")
        inv.finish("timeout")
        self._log(fresh, report_lines.init_report_line(init_ms, "timeout", phase="invoke") + "\n")
        return fresh

    def spawn_provisioned(self, spec: RuntimeSpec) -> ExecutionEnvironment:
        """A provisioned concurrency environment of ``spec``'s version: initialising now, ahead of any invoke."""
        return self._spawn(spec, provisioned=True)

    def provisioned_init_failed(self, env: ExecutionEnvironment, limit_s: float) -> str:
        """A provisioned environment's init failed or outlived ``limit_s``: INIT_REPORT, ended; → the reason."""
        env.init_ms = (time.perf_counter() - env.spawned_at) * 1000
        timed_out = not env.ready.is_set() and not env.is_dead()
        env.kill("init_timeout" if timed_out else "init_error")
        self.pool.remove(env)
        self._log(env, report_lines.init_report_line(env.init_ms, "timeout" if timed_out else "error") + "\n")
        return f"Init {'timed out after ' + str(limit_s) + ' s' if timed_out else 'failed'} (see the function's logs)"

    def _spawn(
        self, spec: RuntimeSpec, log_stream: str | None = None, provisioned: bool = False, init_boost: bool = True
    ) -> ExecutionEnvironment:
        boost = init_boost and self.options.init_cpu == "boost"
        env = ExecutionEnvironment(
            spec, spec.python, self.catalog.runtime_dir, self.endpoint_url, self._on_output, self.cpu, boost
        )
        env.provisioned = provisioned
        env.log_stream = log_stream or env.log_stream
        self.pool.add(env)
        if log_stream is None:
            self._log(env, report_lines.init_start_line(spec.runtime, spec.region) + "\n")
        env.start(self.pump)
        if self._stop.is_set():  # shutting down: no environment may outlive the server
            env.kill("shutdown")
        return env

    def _init_failed(self, env: ExecutionEnvironment, inv: Invocation, phase: str = "init") -> None:
        """The environment never asked for work: init error, exit or memory limit (``phase`` invoke: a re-init)."""
        rerun = inv.started is not None
        inv.started = inv.started or time.perf_counter()
        if env.init_ms is None:  # the init phase ended here, without a /next
            env.init_ms = (time.perf_counter() - env.spawned_at) * 1000
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
        self._log(env, report_lines.init_report_line(env.init_ms, status, error_type, phase) + "\n")
        if rerun:
            env.init_ms = None  # the re-init's time is in the invocation's Duration
        else:
            self._log(env, report_lines.start_line(inv.request_id, env.spec.version) + "\n", inv)

    def _finish(self, env: ExecutionEnvironment, inv: Invocation, cold: bool, tail: bool) -> Outcome:
        spec = env.spec
        env.drain_output()
        inv.closed = True
        duration_ms = ((inv.ended or time.perf_counter()) - (inv.started or inv.ended or 0)) * 1000
        if inv.status == "timeout":  # AWS reports the whole timeout; the clock here starts when the runtime
            duration_ms = max(duration_ms, inv.timeout_s * 1000)  # took the event, a moment after the wait began
        env.sample_rss()
        used_mb = round(max(inv.peak_rss, env.peak_rss if cold else 0) / MIB)
        init_ms = env.init_ms if cold else None
        billed = math.ceil(duration_ms + (init_ms or 0))  # the INIT phase is billed (AWS, since Aug 2025)
        status, body, error_type, platform_status = self._classify(env, inv, duration_ms)
        if platform_status and inv.status in ("oom", "exit", "storage"):
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
            message = f"RequestId: {rid} Error: Task timed out after {duration_ms / 1000:.2f} seconds"
            return "error", error_body("Sandbox.Timedout", message), "Sandbox.Timedout", "timeout"
        error_type = "Runtime.OutOfMemory" if inv.status == "oom" else "Runtime.ExitError"
        reason = "signal: killed" if inv.status in ("oom", "storage") else (env.exit_reason or "signal: killed")
        return "error", error_body(error_type, report_lines.runtime_exit_message(rid, reason)), error_type, "error"

    def _release(self, env: ExecutionEnvironment, inv: Invocation) -> None:
        current = self.catalog.current(env.spec.env_key)
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
        return len(self.pool.end_expired(0.0, "reset", name=function_name, keep_provisioned=True))

    def _forget_deleted(self) -> list[tuple]:
        gone = self.catalog.forget_deleted()
        if gone and self.provisioned is not None:
            self.provisioned.forget(gone)
        return gone

    def shutdown(self) -> None:
        self._stop.set()
        if self.async_invoker is not None:
            self.async_invoker.shutdown()
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
            env.release()
        self.cpu.close()
        self.pump.stop()
        for t in self._threads:
            t.join(timeout=2)
        self.telemetry.stop()

    def health(self) -> dict[str, Any]:
        """What the health endpoint shows of the Lambda data plane."""
        return {
            "cpu_model": self.options.cpu_model,
            "cpu_share_mechanism": self.cpu.name,
            "init_cpu": self.options.init_cpu,
        }
