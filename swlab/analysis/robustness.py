"""Faults injected against outcomes (issue 13's robustness page): pure pandas over the collected tables.

Inputs: the local cloud's fault report (``counts`` per fault type, recorded by the collect stage), the
``executions`` table (``status``, ``error``) and the ``states`` table (per state: ``status``, ``error``,
``failed_attempts``) of the classification state machine.

* :func:`outcomes`: one row per Workflow 2 execution: ``retried`` (a state failed at least one attempt
  and the execution went on), ``degraded`` (models that failed: a ``<Model>Failed`` branch state was
  entered), ``outcome`` (``succeeded``, ``succeeded after retries``, ``degraded to 2 of 3 models``...,
  ``FAILED: <error>``);
* :func:`by_fault_type`: per fault type, how many were injected and how many task attempts failed with
  the error that type produces (S3/DynamoDB faults are absorbed by the SDKs' retries inside the
  functions, so they show as injected only, unless a direct DynamoDB task saw them);
* :func:`outcome_counts`: how many executions ended each way.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# What each fault type is called when it reaches Step Functions (the task's error name).
FAULT_ERRORS = {
    "lambda_kill": ("Runtime.ExitError",),
    "lambda_timeout": ("Sandbox.Timedout",),
    "lambda_oom": ("Runtime.OutOfMemory",),
    "lambda_error": ("Runtime.Unknown",),
    "function_down": ("Lambda.ServiceException",),
    "s3_throttle": ("SlowDown",),
    "s3_error": ("InternalError",),
    "dynamodb_throttle": ("DynamoDB.ProvisionedThroughputExceededException", "DynamoDB.ThrottlingException"),
    "dynamodb_error": ("DynamoDB.InternalServerErrorException", "DynamoDB.InternalServerError"),
}
MODEL_FAILED_SUFFIX = "Failed"
MODELS = ("AlexNet", "ResNet", "MobileNet")


def outcomes(executions: pd.DataFrame, states: pd.DataFrame) -> pd.DataFrame:
    """One row per execution: ``execution_arn``, ``status``, ``retries``, ``models_failed``, ``outcome``."""
    cols = ["execution_arn", "status", "error", "retries", "models_failed", "outcome"]
    if executions.empty:
        return pd.DataFrame(columns=cols)
    st = states if not states.empty else pd.DataFrame(columns=["execution_arn", "state", "failed_attempts"])
    retries = st.groupby("execution_arn")["failed_attempts"].sum() if "failed_attempts" in st else pd.Series()
    failed_models = (
        st[st["state"].isin([m + MODEL_FAILED_SUFFIX for m in MODELS])].groupby("execution_arn")["state"].nunique()
    )
    out = executions[["execution_arn", "status"]].copy()
    out["error"] = executions["error"] if "error" in executions else None
    out["retries"] = out["execution_arn"].map(retries).fillna(0).astype(int)
    out["models_failed"] = out["execution_arn"].map(failed_models).fillna(0).astype(int)
    out["outcome"] = [_outcome(r) for r in out.to_dict("records")]
    return out[cols]


def _outcome(row: dict[str, Any]) -> str:
    if row["status"] != "SUCCEEDED":
        return f"{row['status']}: {row.get('error') or 'no error recorded'}"
    if row["models_failed"]:
        return f"degraded to {len(MODELS) - row['models_failed']} of {len(MODELS)} models"
    return "succeeded after retries" if row["retries"] else "succeeded"


def outcome_counts(table: pd.DataFrame) -> pd.DataFrame:
    """How many executions ended each way (``outcome``, ``executions``), most frequent first."""
    if table.empty:
        return pd.DataFrame(columns=["outcome", "executions"])
    counts = table["outcome"].value_counts()
    return pd.DataFrame({"outcome": counts.index, "executions": counts.to_numpy()})


def by_fault_type(counts: dict[str, int], states: pd.DataFrame) -> pd.DataFrame:
    """Per fault type: ``injected``, ``task_errors_seen``: Task states of the histories whose (last) error is
    the one that fault produces (a task retried several times under one fault type counts once)."""
    tasks = states[states["state_type"] == "Task"] if "state_type" in states else states
    errors = tasks["error"].dropna().astype(str) if "error" in tasks else pd.Series(dtype=str)
    rows = []
    for kind, names in FAULT_ERRORS.items():
        seen = int(sum(errors.str.contains(n, regex=False).sum() for n in names)) if len(errors) else 0
        rows.append({"fault": kind, "injected": int(counts.get(kind, 0)), "task_errors_seen": seen})
    return pd.DataFrame(rows, columns=["fault", "injected", "task_errors_seen"])


def terminal_pct(executions: pd.DataFrame) -> float:
    """Share of executions in a terminal state, in percent (100 when there are none)."""
    if executions.empty:
        return 100.0
    terminal = executions["status"].isin(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]).sum()
    return round(100.0 * terminal / len(executions), 2)
