"""Lambda's telemetry into moto: log events (CloudWatch Logs) and AWS/Lambda metrics (CloudWatch).

Both are buffered on the invoke path (a list append, a dict update) and written
into moto's backends in batches every ``log_flush_s`` by one thread: log events
per stream in chronological order, metrics as per-second statistic sets
(Sum, Minimum, Maximum, SampleCount). moto keeps logs in memory, so a group
keeps at most ``log_events_per_group`` events (the oldest are dropped). The
platform lines themselves (START/END/REPORT ...) are written by
:mod:`swlab.localcloud.report_lines`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from swlab.localcloud.lambda_runtime.spec import RuntimeSpec

log = logging.getLogger("swlab.localcloud.lambda")


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

    def log(self, spec: RuntimeSpec, stream: str, ts: float, message: str) -> None:
        with self._lock:
            self._logs.append((spec.account_id, spec.region, spec.log_group, stream, int(ts * 1000), message))

    def metric(self, spec: RuntimeSpec, name: str, value: float, unit: str = "Count") -> None:
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
            batches.setdefault((account, region), []).append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "FunctionName", "Value": fn}],
                    "Timestamp": when,
                    "Unit": unit,
                    "StatisticValues": {"Sum": total, "Minimum": low, "Maximum": high, "SampleCount": count},
                }
            )
        for (account, region), data in batches.items():
            cloudwatch_backends[account][region].put_metric_data("AWS/Lambda", data)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
