"""The Lambda data plane of the local cloud: Invoke, execution environments, concurrency, logs, metrics.

``mount(cloud)`` builds a :class:`LambdaDataPlane` from ``cloud.options`` and
registers two routes in front of moto:

* ``POST /2015-03-31/functions/{name|arn|partial arn}/invocations`` — Invoke
  (RequestResponse, Event → 202 and a worker, DryRun → 204);
* ``/_localcloud/lambda`` — GET lists the environments; DELETE (optionally
  ``?FunctionName=x``) ends idle environments, forcing cold starts.

Function configuration is read from moto's Lambda backend on every invoke (a
dict lookup); the spec built from it (unzipped code, environment) is cached
until its signature (code hash, handler, runtime, memory, timeout,
environment) changes — then the old environments are retired, as AWS does
after UpdateFunctionCode/UpdateFunctionConfiguration.

Options (``cloud.options``; defaults in :class:`LambdaOptions`): ``idle_ttl_s``,
``account_concurrency``, ``python``, ``init_timeout_s``, ``memory_poll_ms``,
``runtime_isolation``, ``async_workers``, ``log_flush_s``, ``log_events_per_group``.

Zip functions run isolated (``runtime_isolation``): ``python -S`` with
``PYTHONPATH`` = the code, then a directory of links to what the AWS Python
runtime provides (boto3, botocore, awslambdaric and their dependencies), so a
dependency missing from the zip fails locally as it would on AWS. A function
tagged ``swlab:packaging=image`` stands for a container image, which brings
its own packages: it sees the lab's whole environment (torch, ...).

Warm environments are reused LIFO: the most recently used one serves the next
invoke, so a burst's extra environments go idle and are reaped after
``idle_ttl_s`` instead of being kept warm by round-robin reuse — closer to
how Lambda keeps a function's footprint at the concurrency it needs.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from swlab.localcloud.lambda_env import (Environment, FunctionSpec, Invocation, OutputPump, aws_runtime_dir,
                                         error_body, extract_code)
from swlab.localcloud import report_lines
from swlab.localcloud.routes import Host, Route

log = logging.getLogger("swlab.localcloud.lambda")

INVOKE_PREFIX = "/2015-03-31/functions/"
INVOKE_SUFFIX = "/invocations"
ADMIN_PATH = "/_localcloud/lambda"
PACKAGING_TAG = "swlab:packaging"  # "image": the function's image would bring its packages → not isolated
MIB = 1024 * 1024
SYNC_PAYLOAD_LIMIT = 6 * MIB  # request and response of a RequestResponse invoke
ASYNC_PAYLOAD_LIMIT = 256 * 1024  # request of an Event invoke
_CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")


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


def parse_function_ref(ref: str) -> tuple[str, str | None, str | None, str | None]:
    """``name``, ``name:qualifier``, a full ARN or ``account:function:name`` → (name, qualifier, account, region)."""
    if ":function:" not in ref:
        name, _, qualifier = ref.partition(":")
        return name, qualifier or None, None, None
    head, _, tail = ref.partition(":function:")
    name, _, qualifier = tail.partition(":")
    parts = head.split(":")
    region = parts[3] if len(parts) >= 5 and parts[0] == "arn" else None
    return name, qualifier or None, parts[-1] or None, region


def _lambda_backends() -> Any:
    global _LAMBDA_BACKENDS
    if _LAMBDA_BACKENDS is None:
        from moto.awslambda.models import lambda_backends

        _LAMBDA_BACKENDS = lambda_backends
    return _LAMBDA_BACKENDS


_LAMBDA_BACKENDS: Any = None


# ---------------------------------------------------------------------------------------------
class FunctionCatalog:
    """Function configuration from moto's Lambda backend → cached :class:`FunctionSpec` per signature."""

    def __init__(self, work_dir: Path, isolation: bool, on_change: Callable[[tuple], None]) -> None:
        self.code_root = work_dir / "code"
        self.runtime_dir = aws_runtime_dir(work_dir / "runtime")
        self.isolation = isolation
        self._on_change = on_change
        self._specs: dict[tuple, FunctionSpec] = {}
        self._lock = threading.Lock()
        self._reserved: dict[tuple, tuple[float, int]] = {}

    @staticmethod
    def backend(account: str, region: str) -> Any:
        return _lambda_backends()[account][region]

    def lookup(self, account: str, region: str, name: str) -> tuple[FunctionSpec, Any] | None:
        try:
            fn = self.backend(account, region).get_function(name, "$LATEST")
        except Exception:  # noqa: BLE001 — moto's UnknownFunctionException and friends
            return None
        signature = (fn.code_sha_256, fn.handler, fn.run_time, fn.memory_size, fn.timeout, fn.package_type,
                     tuple(sorted((fn.environment_vars or {}).items())), (fn.tags or {}).get(PACKAGING_TAG))
        key = (account, region, fn.function_name)
        spec = self._specs.get(key)
        if spec is not None and spec.signature == signature:
            return spec, fn
        with self._lock:
            spec = self._specs.get(key)
            if spec is None or spec.signature != signature:
                old, spec = spec, self._build(account, region, fn, signature)
                self._specs[key] = spec
                if old is not None:
                    self._on_change(key)
        return spec, fn

    def _build(self, account: str, region: str, fn: Any, signature: tuple) -> FunctionSpec:
        if fn.package_type != "Zip" or not getattr(fn, "code_bytes", b""):
            raise ValueError(f"function {fn.function_name}: the local cloud runs Zip packages only")
        code_dir = extract_code(fn.code_bytes, self.code_root, fn.code_digest)
        image_like = (fn.tags or {}).get(PACKAGING_TAG) == "image"
        return FunctionSpec(
            name=fn.function_name, arn=fn.function_arn, account_id=account, region=region, handler=fn.handler,
            runtime=fn.run_time or "python3.11", memory_mb=int(fn.memory_size), timeout_s=float(fn.timeout),
            code_dir=code_dir, user_env=tuple(sorted((fn.environment_vars or {}).items())),
            isolated=self.isolation and not image_like, signature=signature)

    def reserved_total(self, account: str, region: str) -> int:
        """Sum of reserved concurrency over the region's functions (cached for a second)."""
        now = time.monotonic()
        cached = self._reserved.get((account, region))
        if cached and now - cached[0] < 1.0:
            return cached[1]
        total = sum(int(f.reserved_concurrency or 0) for f in self.backend(account, region).list_functions())
        self._reserved[(account, region)] = (now, total)
        return total

    def current(self, key: tuple) -> FunctionSpec | None:
        return self._specs.get(key)


class Concurrency:
    """Concurrent executions per function (reserved) and per account (unreserved pool)."""

    def __init__(self, account_limit: int) -> None:
        self.account_limit = account_limit
        self._lock = threading.Lock()
        self._per_fn: dict[tuple, int] = {}
        self._unreserved: dict[tuple, int] = {}

    def try_acquire(self, key: tuple, reserved: int | None, reserved_total: int) -> tuple[str | None, int]:
        """(None, count in flight) or (throttle reason, count)."""
        pool = key[:2]
        with self._lock:
            n = self._per_fn.get(key, 0)
            if reserved is not None:
                if n >= reserved:
                    return "ReservedFunctionConcurrentInvocationLimitExceeded", n
            else:
                u = self._unreserved.get(pool, 0)
                if u >= self.account_limit - reserved_total:
                    return "ConcurrentInvocationLimitExceeded", n
                self._unreserved[pool] = u + 1
            self._per_fn[key] = n + 1
            return None, n + 1

    def release(self, key: tuple, reserved: bool) -> None:
        with self._lock:
            self._per_fn[key] -= 1
            if not reserved:
                self._unreserved[key[:2]] -= 1


class Pool:
    """Every live environment; idle ones per function in a LIFO stack."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple, list[Environment]] = {}
        self.envs: set[Environment] = set()

    @staticmethod
    def key(spec: FunctionSpec) -> tuple:
        return spec.account_id, spec.region, spec.name

    def add(self, env: Environment) -> None:
        with self._lock:
            self.envs.add(env)

    def take_idle(self, spec: FunctionSpec) -> Environment | None:
        stale = []
        try:
            with self._lock:
                stack = self._idle.get(self.key(spec))
                while stack:
                    env = stack.pop()
                    if env.spec.signature == spec.signature and env.claim():
                        return env
                    self.envs.discard(env)  # exited while idle, or older code/configuration
                    stale.append(env)
            return None
        finally:
            for env in stale:
                env.kill("retired")

    def put_idle(self, env: Environment) -> None:
        with self._lock:
            if not env.set_idle():
                return
            self._idle.setdefault(self.key(env.spec), []).append(env)

    def remove(self, env: Environment) -> None:
        with self._lock:
            self.envs.discard(env)
            stack = self._idle.get(self.key(env.spec))
            if stack and env in stack:
                stack.remove(env)

    def take_expired(self, ttl_s: float, key: tuple | None = None) -> list[Environment]:
        """Remove and return idle environments idle longer than ``ttl_s`` (of one function if ``key``)."""
        now = time.monotonic()
        out = []
        with self._lock:
            for k, stack in self._idle.items():
                if key is not None and k != key:
                    continue
                keep = [e for e in stack if now - e.last_used < ttl_s and e.state == "idle"]
                out += [e for e in stack if e not in keep]
                stack[:] = keep
        return out

    def snapshot(self) -> list[Environment]:
        with self._lock:
            return list(self.envs)


class Telemetry:
    """Log events and metrics, buffered on the invoke path and written into moto's backends in batches."""

    def __init__(self, flush_s: float, events_per_group: int = 0) -> None:
        self.flush_s = flush_s
        self.events_per_group = events_per_group
        self._group_events: dict[tuple, int] = {}
        self._lock = threading.Lock()
        self._logs: list[tuple] = []
        self._metrics: dict[tuple, list[float]] = {}
        self._last_ts: dict[tuple, int] = {}
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="lambda-telemetry", daemon=True)
        self._thread.start()

    def log(self, spec: FunctionSpec, stream: str, ts: float, message: str) -> None:
        with self._lock:
            self._logs.append((spec.account_id, spec.region, spec.log_group, stream, int(ts * 1000), message))

    def metric(self, spec: FunctionSpec, name: str, value: float, unit: str = "Count") -> None:
        key = (spec.account_id, spec.region, spec.name, name, unit, int(time.time()))
        with self._lock:
            agg = self._metrics.get(key)
            if agg is None:
                self._metrics[key] = [value, value, value, 1.0]
            else:
                agg[0] += value
                agg[1] = min(agg[1], value)
                agg[2] = max(agg[2], value)
                agg[3] += 1

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 — keep flushing whatever one batch does
                log.exception("writing Lambda logs/metrics to moto failed")

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                logs, self._logs = self._logs, []
                metrics, self._metrics = self._metrics, {}
            if logs:
                self._flush_logs(logs)
            if metrics:
                self._flush_metrics(metrics)

    def _flush_logs(self, logs: list[tuple]) -> None:
        from moto.logs.models import logs_backends

        batches: dict[tuple, list[dict]] = {}
        for account, region, group, stream, ts, message in logs:
            key = (account, region, group, stream)
            ts = max(ts, self._last_ts.get(key, 0))  # PutLogEvents wants chronological order
            self._last_ts[key] = ts
            batches.setdefault(key, []).append({"timestamp": ts, "message": message})
        for (account, region, group, stream), events in batches.items():
            backend = logs_backends[account][region]
            if group not in backend.groups:
                backend.create_log_group(group, tags={})
            if stream not in backend.groups[group].streams:
                backend.create_log_stream(group, stream)
            backend.put_log_events(group, stream, events)
            if self.events_per_group:
                self._bound(backend.groups[group], (account, region, group), len(events))

    def _bound(self, group: Any, key: tuple, added: int) -> None:
        """Drop the oldest events past ``events_per_group`` (AWS would keep them; moto keeps them in RAM)."""
        total = self._group_events.get(key, 0) + added
        if total > self.events_per_group:  # recount: the group may have been deleted and created again
            total = sum(len(stream.events) for stream in group.streams.values())
        excess = total - self.events_per_group
        for stream in list(group.streams.values()):
            if excess <= 0:
                break
            n = min(excess, len(stream.events))
            del stream.events[:n]
            excess -= n
            total -= n
        self._group_events[key] = total

    def _flush_metrics(self, metrics: dict[tuple, list[float]]) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        batches: dict[tuple, list[dict]] = {}
        for (account, region, fn, name, unit, second), (total, low, high, count) in metrics.items():
            when = datetime.fromtimestamp(second, timezone.utc).replace(tzinfo=None)
            batches.setdefault((account, region), []).append({
                "MetricName": name, "Dimensions": [{"Name": "FunctionName", "Value": fn}], "Timestamp": when,
                "Unit": unit,
                "StatisticValues": {"Sum": total, "Minimum": low, "Maximum": high, "SampleCount": count}})
        for (account, region), data in batches.items():
            cloudwatch_backends[account][region].put_metric_data("AWS/Lambda", data)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


@dataclass
class Outcome:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_error(status: int, error_type: str, message: str, extra: dict | None = None) -> Outcome:
    body = json.dumps({"Type": "User", "Message": message, "message": message, **(extra or {})}).encode()
    return Outcome(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)], body)


# ---------------------------------------------------------------------------------------------
class LambdaDataPlane:
    """Runs Lambda functions as local execution environments; ``shutdown()`` ends every process group."""

    def __init__(self, options: LambdaOptions, work_dir: Path, endpoint_url: str, account_id: str,
                 region: str) -> None:
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
        self._threads = [threading.Thread(target=self._watchdog, name="lambda-memory", daemon=True),
                         threading.Thread(target=self._reaper, name="lambda-reaper", daemon=True)]
        for t in self._threads:
            t.start()

    # -- invoke ------------------------------------------------------------------------------
    def invoke(self, spec: FunctionSpec, fn: Any, payload: bytes, client_context: str | None = None,
               tail: bool = False) -> Outcome:
        key = Pool.key(spec)
        reserved = None if fn.reserved_concurrency is None else int(fn.reserved_concurrency)
        total = self.catalog.reserved_total(spec.account_id, spec.region) if reserved is None else 0
        reason, in_flight = self.concurrency.try_acquire(key, reserved, total)
        if reason is not None:
            self.telemetry.metric(spec, "Throttles", 1)
            return _json_error(429, "TooManyRequestsException", "Rate Exceeded.", {"Reason": reason})
        try:
            self.telemetry.metric(spec, "ConcurrentExecutions", in_flight)
            return self._invoke_in_slot(spec, payload, client_context, tail)
        finally:
            self.concurrency.release(key, reserved is not None)

    def _invoke_in_slot(self, spec: FunctionSpec, payload: bytes, client_context: str | None,
                        tail: bool) -> Outcome:
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

    def _spawn(self, spec: FunctionSpec) -> Environment:
        env = Environment(spec, self.options.python, self.catalog.runtime_dir, self.endpoint_url, self._on_output)
        self.pool.add(env)
        self._log(env, report_lines.init_start_line(spec.runtime, spec.region) + "\n")
        env.start(self.pump)
        if self._stop.is_set():  # shutting down: no environment may outlive the server
            env.kill("shutdown")
        return env

    def _init_failed(self, env: Environment, inv: Invocation) -> None:
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
        elif env.state == "dead":
            inv.finish(env.killed_for or "exit")
        else:
            env.kill("timeout")
            inv.finish("timeout")
        status = "timeout" if inv.status == "timeout" else "error"
        error_type = {"init_error": inv.error_type, "oom": "Runtime.OutOfMemory"}.get(inv.status or "",
                                                                                       "Runtime.ExitError")
        self._log(env, report_lines.init_report_line(env.init_ms, status, error_type) + "\n")
        self._log(env, report_lines.start_line(inv.request_id, env.spec.version) + "\n", inv)

    def _finish(self, env: Environment, inv: Invocation, cold: bool, tail: bool) -> Outcome:
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
            self._log(env, report_lines.runtime_exit_line(inv.request_id, env.exit_reason or "signal: killed",
                                                          error_type) + "\n", inv)
        self._log(env, report_lines.end_line(inv.request_id) + "\n", inv)
        self._log(env, report_lines.report_line(inv.request_id, duration_ms, billed, spec.memory_mb, used_mb, init_ms,
                                                platform_status, error_type if platform_status == "error" else None)
                  + "\n", inv)
        if inv.status == "timeout":
            self._log(env, report_lines.timeout_line(inv.request_id, duration_ms / 1000) + "\n")
        self._release(env, inv)
        self._metrics(spec, status != "ok", duration_ms)
        headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", spec.version),
                   ("x-amzn-RequestId", inv.request_id)]
        if status != "ok":
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        if tail:
            text = "".join(inv.lines).encode()[-4096:]
            headers.append(("X-Amz-Log-Result", base64.b64encode(text).decode()))
        return Outcome(200, headers, body)

    def _classify(self, env: Environment, inv: Invocation, duration_ms: float) -> tuple:
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

    def _release(self, env: Environment, inv: Invocation) -> None:
        current = self.catalog.current(Pool.key(env.spec))
        if inv.status in ("ok", "error") and env.state != "dead" and current is env.spec:
            self.pool.put_idle(env)
            return
        env.kill(inv.status or "retired")
        self.pool.remove(env)

    def _metrics(self, spec: FunctionSpec, failed: bool, duration_ms: float) -> None:
        self.telemetry.metric(spec, "Invocations", 1)
        self.telemetry.metric(spec, "Errors", 1 if failed else 0)
        self.telemetry.metric(spec, "Duration", duration_ms, "Milliseconds")

    def _log(self, env: Environment, message: str, inv: Invocation | None = None) -> None:
        self.telemetry.log(env.spec, env.log_stream, time.time(), message)
        if inv is not None:
            inv.lines.append(message)

    def _on_output(self, env: Environment, ts: float, message: str) -> None:
        self.telemetry.log(env.spec, env.log_stream, ts, message)
        inv = env.current
        if inv is not None and not inv.closed:
            inv.lines.append(message)

    def _retire(self, key: tuple) -> None:
        """A function's code or configuration changed: its idle environments end (busy ones after their invoke)."""
        for env in self.pool.take_expired(0.0, key):
            env.kill("retired")
            self.pool.remove(env)

    # -- background --------------------------------------------------------------------------
    def _watchdog(self) -> None:
        period = self.options.memory_poll_ms / 1000
        while not self._stop.wait(period):
            for env in self.pool.snapshot():
                if env.state in ("init", "busy") and env.sample_rss() > env.spec.memory_mb * MIB:
                    log.info("environment %s of %s exceeded %d MB", env.id, env.spec.name, env.spec.memory_mb)
                    env.kill("oom")

    def _reaper(self) -> None:
        period = max(0.05, min(1.0, self.options.idle_ttl_s / 4))
        while not self._stop.wait(period):
            for env in self.pool.take_expired(self.options.idle_ttl_s):
                env.kill("reaped")
                self.pool.remove(env)

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

    # -- HTTP ------------------------------------------------------------------------------
    @staticmethod
    def matches_invoke(environ: dict) -> bool:
        path = environ.get("PATH_INFO", "")
        return path.startswith(INVOKE_PREFIX) and path.endswith(INVOKE_SUFFIX) and environ["REQUEST_METHOD"] == "POST"

    @staticmethod
    def matches_admin(environ: dict) -> bool:
        return environ.get("PATH_INFO", "").startswith(ADMIN_PATH)

    def invoke_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        outcome = self._handle_invoke(environ)
        start_response(f"{outcome.status} {_STATUS_TEXT.get(outcome.status, 'OK')}",
                       outcome.headers + [("Content-Length", str(len(outcome.body)))])
        return [outcome.body]

    def _handle_invoke(self, environ: dict) -> Outcome:
        ref = environ["PATH_INFO"][len(INVOKE_PREFIX):-len(INVOKE_SUFFIX)]
        name, _qualifier, account, region = parse_function_ref(ref)
        if region is None:
            m = _CREDENTIAL_REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
            region = m.group(1) if m else self.region
        account = account or self.account_id
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length) if length else b""
        try:
            found = self.catalog.lookup(account, region, name)
        except ValueError as exc:
            return _json_error(400, "InvalidParameterValueException", str(exc))
        if found is None:
            arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
            return _json_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        spec, fn = found
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        invalid = _invalid_payload(payload, invocation_type)
        if invalid is not None:
            return invalid
        if invocation_type == "DryRun":
            return Outcome(204, [("x-amzn-RequestId", "dryrun")], b"")
        client_context = environ.get("HTTP_X_AMZ_CLIENT_CONTEXT")
        if client_context:
            try:
                client_context = base64.b64decode(client_context).decode("utf-8", "replace")
            except ValueError:
                return _json_error(400, "InvalidRequestContentException", "Client context must be base64")
        if invocation_type == "Event":
            self._async.submit(self._invoke_async, spec, fn, payload or b"{}", client_context)
            return Outcome(202, [("Content-Type", "application/json")], b"")
        tail = environ.get("HTTP_X_AMZ_LOG_TYPE") == "Tail"
        return self.invoke(spec, fn, payload or b"{}", client_context, tail)

    def _invoke_async(self, spec: FunctionSpec, fn: Any, payload: bytes, client_context: str | None) -> None:
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

    def admin_app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if method == "DELETE":
            ended = self.end_idle((query.get("FunctionName") or [None])[0])
            body = {"ended": ended}
        else:
            now = time.monotonic()
            body = {"environments": [
                {"id": e.id, "function": e.spec.name, "state": e.state, "pid": e.proc.pid if e.proc else None,
                 "log_stream": e.log_stream, "idle_s": round(now - e.last_used, 3) if e.state == "idle" else 0,
                 "init_ms": e.init_ms, "peak_rss_mb": round(e.peak_rss / MIB, 1)} for e in self.pool.snapshot()],
                "options": {k: v for k, v in self.options.__dict__.items()}}
        data = json.dumps(body).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def _invalid_payload(payload: bytes, invocation_type: str) -> Outcome | None:
    limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
    if len(payload) > limit:
        return _json_error(413, "RequestTooLargeException",
                           f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
    if payload.strip():
        try:
            json.loads(payload)
        except ValueError as exc:
            return _json_error(400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}")
    return None


_STATUS_TEXT = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found",
                429: "Too Many Requests"}


def mount(cloud: Host) -> LambdaDataPlane:
    """Build the data plane from ``cloud.options`` and register its routes and itself on ``cloud``."""
    options = LambdaOptions.from_options(cloud.options)
    plane = LambdaDataPlane(options, Path(cloud.work_dir) / "lambda", cloud.endpoint_url, cloud.account_id,
                            cloud.region)
    cloud.routes.append(Route("lambda-invoke", plane.matches_invoke, plane.invoke_app))
    cloud.routes.append(Route("lambda-admin", plane.matches_admin, plane.admin_app))
    cloud.components.append(plane)
    return plane
