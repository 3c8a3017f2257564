"""The book's robustness page for one run: faults injected (the local cloud's report, recorded by the collect
stage) against outcomes (the collected executions and state histories), per fault type."""

from __future__ import annotations

from typing import Any

import pandas as pd

from swlab.analysis.robustness import by_fault_type, outcome_counts, outcomes, terminal_pct
from swlab.run.rundir import RunDir


def _read(run: RunDir, table: str) -> pd.DataFrame:
    path = run.data_dir / f"{table}.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def _markdown(df: pd.DataFrame) -> list[str]:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |")
    return lines


def robustness_section(run: RunDir) -> str:
    """Markdown: faults per type vs the task errors seen, the outcomes, what the reconciliation found."""
    manifest: dict[str, Any] = run.manifest()
    faults = manifest.get("faults") or {}
    executions, states = _read(run, "executions"), _read(run, "states")
    lines = ["## This run", ""]
    if not faults.get("total"):
        lines += ["No fault was injected in this run (its `faults` parameter was empty, or the target was AWS).", ""]
    else:
        rules = faults.get("rules") or []
        lines += [f"{faults['total']} faults injected by {len(rules)} rules.", "", "### Faults per type", ""]
        lines += _markdown(by_fault_type(faults.get("counts") or {}, states))
        lines += [
            "",
            "`task_errors_seen`: tasks of the executions' histories whose last error is the one that fault "
            "produces (a task retried several times counts once; S3 and DynamoDB faults are mostly absorbed by "
            "the SDKs' retries inside the functions and show as injected only, but for the direct DynamoDB task).",
            "",
        ]
    if executions.empty:
        lines += ["This run collected no execution.", ""]
    else:
        table = outcomes(executions, states)
        lines += ["### How the executions ended", ""]
        lines += _markdown(outcome_counts(table))
        lines += ["", f"{terminal_pct(executions)} % of the executions are in a terminal state.", ""]
    collect = manifest.get("collect") or {}
    accounted = collect.get("accounted") or []
    if accounted:
        lines += ["### Reconciliation", "", *[f"    {line}" for line in accounted], ""]
    return "\n".join(lines)
