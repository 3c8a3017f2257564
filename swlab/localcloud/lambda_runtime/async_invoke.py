"""Asynchronous invokes (``InvocationType: Event``) as Lambda runs them: retries, event age, destinations.

The caller gets 202 with the event's ``x-amzn-RequestId`` at once; the event then runs on a worker:

* a throttled attempt (no concurrency) is tried again with backoff (0.25 s doubling, six times;
  AWS keeps trying for up to the event's maximum age, 6 h);
* a function error (an exception, a timeout, a crash) is retried ``MaximumRetryAttempts`` times
  (default 2) after AWS's delays, 1 min then 2 min (the option ``async_retry_delays_s``, so tests
  can shorten them), with the same request id; an event older than ``MaximumEventAgeInSeconds``
  is not tried again;
* the function's event invoke configuration (PutFunctionEventInvokeConfig, moto stores it) may
  name destinations: ``OnFailure`` receives AWS's invocation record when the retries are exhausted
  (``condition`` ``RetriesExhausted``) or the event got too old (``EventAgeExceeded``),
  ``OnSuccess`` when an attempt succeeds. Destinations the local cloud delivers to: an SQS queue
  (moto's queue) or a Lambda function (an Event invoke of it); SNS and EventBridge are logged and skipped.

Retries wait on timers, not on the workers, so failing events do not hold the async pool.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from swlab.localcloud.lambda_runtime.catalog import parse_function_ref
from swlab.localcloud.lambda_runtime.dataplane import LambdaDataPlane, Outcome
from swlab.localcloud.lambda_runtime.spec import RuntimeSpec

log = logging.getLogger("swlab.localcloud.lambda")

THROTTLE_TRIES = 6
DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE_S = 21600


class Event:
    """One asynchronous event: its id, payload and attempts so far."""

    def __init__(
        self, spec: RuntimeSpec, fn: Any, payload: bytes, client_context: str | None, invoked_arn: str | None
    ) -> None:
        self.request_id = str(uuid.uuid4())
        self.spec, self.fn, self.payload = spec, fn, payload
        self.client_context, self.invoked_arn = client_context, invoked_arn
        self.received = time.monotonic()
        self.attempts = 0  # attempts that ran the function (throttles do not count)


class AsyncInvoker:
    """Runs Event invokes on the data plane's async workers; ``submit`` → the event's request id."""

    def __init__(self, plane: LambdaDataPlane) -> None:
        self.plane = plane
        self.delays = tuple(float(d) for d in plane.options.async_retry_delays_s) or (0.0,)
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()

    def submit(
        self, spec: RuntimeSpec, fn: Any, payload: bytes, client_context: str | None, invoked_arn: str | None = None
    ) -> str:
        event = Event(spec, fn, payload, client_context, invoked_arn)
        self.plane.run_async(self._attempt, event)
        return event.request_id

    def shutdown(self) -> None:
        with self._lock:
            timers, self._timers = list(self._timers), set()
        for timer in timers:
            timer.cancel()

    # -- one attempt -----------------------------------------------------------------------------
    def _attempt(self, event: Event) -> None:
        config = _event_config(event.fn)
        outcome = self._invoke_unthrottled(event)
        if outcome is None:
            log.warning("async invoke %s of %s dropped after repeated throttling", event.request_id, event.spec.name)
            return
        event.attempts += 1
        failed = any(k.lower() == "x-amz-function-error" for k, _ in outcome.headers)
        if not failed:
            self._deliver(event, config, outcome, "Success")
            return
        retries = int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES))
        if event.attempts > retries:
            self._deliver(event, config, outcome, "RetriesExhausted")
            return
        delay = self.delays[min(event.attempts - 1, len(self.delays) - 1)]
        max_age = float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S))
        if time.monotonic() + delay - event.received > max_age:
            self._deliver(event, config, outcome, "EventAgeExceeded")
            return
        self._later(delay, event)

    def _invoke_unthrottled(self, event: Event) -> Outcome | None:
        backoff = 0.25
        for _ in range(THROTTLE_TRIES):
            if self.plane.stopping():
                return None
            outcome = self.plane.invoke(
                event.spec,
                event.fn,
                event.payload,
                event.client_context,
                invoked_arn=event.invoked_arn,
                request_id=event.request_id,
            )
            if outcome.status != 429:
                return outcome
            if self.plane.stopping(backoff):
                return None
            backoff *= 2
        return None

    def _later(self, delay_s: float, event: Event) -> None:
        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            if not self.plane.stopping():
                self.plane.run_async(self._attempt, event)

        timer = threading.Timer(delay_s, fire)
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    # -- destinations ----------------------------------------------------------------------------
    def _deliver(self, event: Event, config: dict[str, Any], outcome: Outcome, condition: str) -> None:
        which = "OnSuccess" if condition == "Success" else "OnFailure"
        target = ((config.get("DestinationConfig") or {}).get(which) or {}).get("Destination")
        if not target:
            return
        record = invocation_record(event, outcome, condition)
        try:
            self._send(target, record)
        except Exception as exc:  # noqa: BLE001 — a destination that cannot take it: logged, as AWS's metric would
            log.warning("async %s destination %s of %s failed: %s", which, target, event.spec.name, exc)

    def _send(self, target: str, record: dict[str, Any]) -> None:
        parts = target.split(":")
        service, region, account = parts[2], parts[3], parts[4]
        if service == "sqs":
            from moto.sqs.models import sqs_backends

            sqs_backends[account][region].send_message(parts[5], json.dumps(record))
        elif service == "lambda":
            name, qualifier, _, _ = parse_function_ref(target)
            found = self.plane.catalog.lookup(account, region, name, qualifier)
            if found is None:
                raise ValueError(f"function {target} not found")
            self.submit(found[0], found[1], json.dumps(record).encode(), None, target)
        else:
            log.warning("async destination %s: the local cloud delivers to SQS and Lambda only", target)


def _event_config(fn: Any) -> dict[str, Any]:
    """The function's event invoke configuration (moto appends on every put; the last one is current)."""
    configs = getattr(fn, "event_invoke_config", None) or []
    return dict(configs[-1].config) if configs else {}


def invocation_record(event: Event, outcome: Outcome, condition: str) -> dict[str, Any]:
    """AWS's asynchronous invocation record, as an OnSuccess/OnFailure destination receives it."""
    version = dict(outcome.headers).get("X-Amz-Executed-Version", event.spec.version)
    error = next((v for k, v in outcome.headers if k.lower() == "x-amz-function-error"), None)
    try:
        response = json.loads(outcome.body) if outcome.body else None
    except ValueError:
        response = outcome.body.decode("utf-8", "replace")
    try:
        request = json.loads(event.payload)
    except ValueError:
        request = event.payload.decode("utf-8", "replace")
    now = datetime.now(timezone.utc)
    response_context: dict[str, Any] = {"statusCode": outcome.status, "executedVersion": version}
    if error:
        response_context["functionError"] = error
    return {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": f"{event.spec.arn}:{version}",
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": request,
        "responseContext": response_context,
        "responsePayload": response,
    }
