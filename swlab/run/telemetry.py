"""``05_collect``: the telemetry of a run's measured window, from the target's APIs into ``<run>/data/``,
and the reconciliation that proves nothing was lost (printed, recorded in the run's manifest)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any, Callable

from swlab.analysis.collect import collect_run, fetch_log_events, list_stack_functions
from swlab.analysis.dataset import RunData, save_run
from swlab.analysis.reconcile import Reconciliation
from swlab.run.measure import client_samples
from swlab.run.progress import ProgressFile
from swlab.run.records import CollectRecord
from swlab.run.rundir import RunDir
from swlab.run.services import record_faults
from swlab.settings import Settings, client

_REQUEST = re.compile(r"^(START|REPORT) RequestId: (\S+)")


def describe_window(run: RunDir) -> str:
    settings, (start, end) = run.settings(), run.window()
    return f"collecting stack {settings.stack} on {settings.target} from {start:%H:%M:%S} to {end:%H:%M:%S} UTC"


def collect_telemetry(run: RunDir, settle_s: float = 5.0, metric_period_s: int = 60, **extra: Any) -> RunData:
    """Wait (at most ``settle_s``, see :func:`wait_for_logs`) for the window's logs, collect the window the
    notebooks measured, save it."""
    settings, (start, end) = run.settings(), run.window()
    waited = wait_for_logs(settings, start, end, settle_s)
    print(f"waited {waited:.1f} s for the window's logs (at most {settle_s:g} s)")
    faults = record_faults(run)
    if faults and faults.get("total"):
        injected = ", ".join(f"{k} {v}" for k, v in faults["counts"].items() if v)
        print(f"faults injected: {faults['total']} ({injected})")
    data = collect_run(
        settings,
        start,
        end,
        jtl=client_samples(run),
        period_s=metric_period_s,
        extra={"run_id": run.id, **extra},
        progress=ProgressFile(run.dir, every_s=0.0),
    )
    save_run(data, run.data_dir)
    checked = reconciliation(data)
    lines = checked.lines() if checked else ["not reconciled: the stack's bucket or table is gone"]
    print("\n".join(lines))
    run.save(
        CollectRecord(
            data=str(run.data_dir),
            window=[start.isoformat(), end.isoformat()],
            accounted=lines,
            lost=checked.lost if checked else None,
        )
    )
    return data


def reconciliation(data: RunData) -> Reconciliation | None:
    """The run's reconciliation as collected (None when it could not be done): the book's "N of N"."""
    if "reconciliation" not in data.tables:
        return None
    return Reconciliation.from_tables(data["reconciliation"], data["reconciliation_exceptions"])


def wait_for_logs(
    settings: Settings,
    start: datetime,
    end: datetime,
    max_wait_s: float,
    *,
    clients: dict[str, Any] | None = None,
    poll_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Seconds waited until the stack's function logs of [start, end] are in, at most ``max_wait_s``.

    On the local cloud the logs are in when every invocation that started has its REPORT line and two
    looks ``poll_s`` apart find the same events (instead of a fixed sleep). AWS delivers logs in batches,
    minutes late at worst, where a complete-looking window proves nothing: there it waits ``max_wait_s``.
    """
    if settings.target != "local":
        sleep(max_wait_s)
        return max_wait_s
    clients = clients or {}
    lam, logs = clients.get("lambda") or client(settings, "lambda"), clients.get("logs") or client(settings, "logs")
    groups = list(list_stack_functions(lam, settings.stack)["log_group"])
    waited, previous = 0.0, None
    while True:
        started: set[str] = set()
        reported: set[str] = set()
        for group in groups:
            for message in fetch_log_events(logs, group, start, end)["message"]:
                match = _REQUEST.match(message)
                if match:
                    (started if match.group(1) == "START" else reported).add(match.group(2))
        seen = (len(started), len(reported))
        if started <= reported and seen == previous or waited >= max_wait_s:
            return waited
        previous = seen
        sleep(poll_s)
        waited += poll_s
