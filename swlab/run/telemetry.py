"""``05_collect``: the telemetry of a run's measured window, from the target's APIs into ``<run>/data/``,
and the reconciliation that proves nothing was lost (printed, recorded in the run's manifest)."""

from __future__ import annotations

import time
from typing import Any

from swlab.analysis.collect import collect_run
from swlab.analysis.dataset import RunData, save_run
from swlab.analysis.reconcile import Reconciliation
from swlab.run.measure import client_samples
from swlab.run.records import CollectRecord
from swlab.run.rundir import RunDir
from swlab.run.services import record_faults


def describe_window(run: RunDir) -> str:
    settings, (start, end) = run.settings(), run.window()
    return f"collecting stack {settings.stack} on {settings.target} from {start:%H:%M:%S} to {end:%H:%M:%S} UTC"


def collect_telemetry(run: RunDir, settle_s: float = 5.0, metric_period_s: int = 60, **extra: Any) -> RunData:
    """Wait ``settle_s`` for logs and metrics to arrive, collect the window the notebooks measured, save it."""
    settings, (start, end) = run.settings(), run.window()
    time.sleep(settle_s)
    faults = record_faults(run)
    if faults and faults.get("total"):
        injected = ", ".join(f"{k} {v}" for k, v in faults["counts"].items() if v)
        print(f"faults injected: {faults['total']} ({injected})")
    data = collect_run(
        settings, start, end, jtl=client_samples(run), period_s=metric_period_s, extra={"run_id": run.id, **extra}
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
