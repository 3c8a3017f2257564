"""One-line JSON logs on stdout (CloudWatch Logs keeps one event per line), and the AWS calls each invocation made.

Every function whose handler calls AWS writes, at the end of each invocation
that made calls, one line the lab's cost model reads (``swlab.analysis``)::

    {"ts": ..., "level": "INFO", "message": "aws_calls",
     "calls": {"s3:GetObject": 1, "dynamodb:UpdateItem": 1},
     "capacity_units": {"dynamodb:UpdateItem": 1.0}}

``calls`` counts SDK calls per ``service:Operation`` (one per call, whatever
botocore's own retries did); ``capacity_units`` sums the ``ConsumedCapacity``
DynamoDB returned when asked (``ReturnConsumedCapacity="TOTAL"``). Usage::

    S3 = swl_log.watch_calls(boto3.client("s3"))

    @swl_log.reports_calls
    def handler(event, context): ...
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections import Counter, defaultdict
from typing import Any, Callable, TextIO

_CALLS: Counter = Counter()
_CAPACITY: defaultdict = defaultdict(float)


def log(message: str, level: str = "INFO", stream: TextIO | None = None, **fields: Any) -> dict[str, Any]:
    """Write one JSON log line and return the record (handy in tests)."""
    record = {"ts": round(time.time(), 3), "level": level, "message": message, **fields}
    print(json.dumps(record, default=str, separators=(",", ":")), file=stream or sys.stdout, flush=True)
    return record


def watch_calls(client: Any) -> Any:
    """Count every call ``client`` makes (botocore's after-call event, which fires for error answers too)."""
    client.meta.events.register("after-call", _count_call)
    return client


def _count_call(model: Any = None, parsed: Any = None, **_: Any) -> None:
    key = f"{model.service_model.service_name}:{model.name}"
    _CALLS[key] += 1
    consumed = parsed.get("ConsumedCapacity") if isinstance(parsed, dict) else None
    for item in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
        _CAPACITY[key] += float(item.get("CapacityUnits") or 0.0)


def reports_calls(handler: Callable) -> Callable:
    """Wrap a Lambda handler: after each invocation (returned or raised), log the calls it made, if any.

    Calls made during the init phase (module scope) count towards the first invocation.
    """

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            if _CALLS:
                log("aws_calls", calls=dict(_CALLS), capacity_units=dict(_CAPACITY))
            _CALLS.clear()
            _CAPACITY.clear()

    return wrapper


class Timer:
    """``with Timer() as t: ...`` then ``t.ms`` (wall-clock milliseconds, 3 decimals)."""

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter()
        self.ms = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.ms = round((time.perf_counter() - self._start) * 1000.0, 3)
