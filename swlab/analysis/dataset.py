"""The telemetry of a run as named tables, saved as one Parquet file each plus ``manifest.json``.

:func:`load_run` re-reads a directory written by :func:`save_run` without any cloud: analysis,
plots and cost work from that directory alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

TABLES = (
    "functions",
    "log_events",
    "invocations",
    "metrics",
    "state_machines",
    "executions",
    "states",
    "state_machine_log_events",
    "s3_objects",
    "jtl",
    "items",
    "raw_objects",
    "reconciliation",
    "reconciliation_exceptions",
)


@dataclass
class RunData:
    """The telemetry of one run: named tables plus the manifest that describes them."""

    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables.get(name, pd.DataFrame())


def tidy_strings(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding only strings and missing values → the ``str`` dtype (as Parquet gives back)."""
    out = df.copy()
    for col in [c for c in out.columns if pd.api.types.is_object_dtype(out[c].dtype)]:
        values = out[col].dropna()
        if len(values) == 0 or values.map(type).eq(str).all():
            out[col] = out[col].astype("str")
    return out


def save_run(run: RunData, run_dir: str | Path) -> Path:
    """Write every table as Parquet and ``manifest.json`` (with the table list) into ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, df in run.tables.items():
        path = run_dir / f"{name}.parquet"
        df.reset_index(drop=True).to_parquet(path, index=False)
        files[name] = {"file": path.name, "rows": int(len(df))}
    manifest = {**run.manifest, "tables": files}
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    run.manifest = manifest
    return run_dir


def load_run(run_dir: str | Path) -> RunData:
    """Re-read a run directory written by :func:`save_run` (no cloud needed)."""
    run_dir = Path(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    tables = {name: pd.read_parquet(run_dir / info["file"]) for name, info in manifest.get("tables", {}).items()}
    return RunData(manifest=manifest, tables=tables)
