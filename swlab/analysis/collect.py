"""Collect the telemetry of one run (a stack and a time window) and save/load it as a run directory.

Works unchanged on the local cloud and on AWS: it uses only what both offer
(``filter_log_events`` without a pattern, ``get_metric_data`` with
Sum/Average/SampleCount/Maximum, ``list_executions`` + ``get_execution_history``).
Percentiles and every other aggregation are computed client-side
(:mod:`swlab.analysis.stats`), because moto computes none of them.

Express state machines on AWS keep no history and cannot be listed; their
events exist only in the state machine's CloudWatch log group (level ALL,
include execution data). :func:`collect_run` reads that group when the
machine is EXPRESS and logs to one, and falls back to the history API
(which the local cloud offers for Express too) when the group is empty.

The result is a :class:`swlab.analysis.dataset.RunData`; :mod:`swlab.analysis.dataset` saves
it as a run directory that analysis reads without any cloud. History parsing is pure and lives
in :mod:`swlab.analysis.histories`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd
from botocore.exceptions import ClientError

from swlab.analysis.dataset import RunData, tidy_strings
from swlab.analysis.histories import (
    executions_frame,
    executions_from_history,
    express_log_records,
    history_to_states,
    normalise_history_event,
)
from swlab.analysis.inventory import collect_inventory
from swlab.analysis.logs import parse_log_events
from swlab.analysis.reconcile import reconcile
from swlab.loadtest.jtl import parse_jtl
from swlab.run.provenance import git_info, tool_versions
from swlab.settings import STACK_TAG_KEY
from swlab.settings import client as make_client

METRIC_STATS = {  # AWS/Lambda metric → statistics collected (no percentiles: moto has none)
    "Invocations": ("Sum",),
    "Errors": ("Sum",),
    "Throttles": ("Sum",),
    "Duration": ("Average", "Maximum", "SampleCount"),
    "ConcurrentExecutions": ("Maximum",),
}


def _paginate(
    call: Callable[..., dict], key: str, token: str = "nextToken", request_token: str | None = None, **kwargs: Any
) -> Iterable[dict]:
    """Items under ``key`` from every page; ``token`` names the response's continuation field."""
    while True:
        page = call(**kwargs)
        yield from page.get(key, [])
        nxt = page.get(token)
        if not nxt:
            return
        kwargs[request_token or token] = nxt


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


# ---- Lambda: functions, logs, metrics -------------------------------------------------------


def list_stack_functions(lambda_client: Any, stack: str) -> pd.DataFrame:
    """The stack's functions (name prefix ``<stack>-``) with the configuration cost needs."""
    rows = []
    for fn in _paginate(lambda_client.list_functions, "Functions", token="NextMarker", request_token="Marker"):
        name = fn["FunctionName"]
        if not name.startswith(f"{stack}-"):
            continue
        logging_cfg = fn.get("LoggingConfig") or {}
        rows.append(
            {
                "function": name,
                "memory_mb": int(fn.get("MemorySize", 128)),
                "architecture": (fn.get("Architectures") or ["x86_64"])[0],
                "timeout_s": int(fn.get("Timeout", 3)),
                "package_type": fn.get("PackageType", "Zip"),
                "log_group": logging_cfg.get("LogGroup") or f"/aws/lambda/{name}",
                "log_format": logging_cfg.get("LogFormat", "Text"),
            }
        )
    cols = ["function", "memory_mb", "architecture", "timeout_s", "package_type", "log_group", "log_format"]
    return pd.DataFrame(rows, columns=cols)


def fetch_log_events(logs_client: Any, log_group: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Every event of ``log_group`` in [start, end], all pages (no filter pattern: moto ignores them)."""
    kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": _ms(start), "endTime": _ms(end)}
    try:
        events = list(_paginate(logs_client.filter_log_events, "events", **kwargs))
    except logs_client.exceptions.ResourceNotFoundException:
        events = []
    df = pd.DataFrame(events, columns=["logStreamName", "timestamp", "message", "ingestionTime"])
    df = df.rename(columns={"logStreamName": "log_stream", "ingestionTime": "ingestion_time"})
    df.insert(0, "log_group", log_group)
    return df


def fetch_lambda_metrics(
    cw_client: Any, functions: Iterable[str], start: datetime, end: datetime, period_s: int = 60
) -> pd.DataFrame:
    """AWS/Lambda metrics per function → long table (function, metric, stat, timestamp, value)."""
    queries: list[dict[str, Any]] = []
    labels: dict[str, tuple[str, str, str]] = {}
    for fn in functions:
        for metric, stats in METRIC_STATS.items():
            for stat in stats:
                qid = f"m{len(queries)}"
                labels[qid] = (fn, metric, stat)
                queries.append(
                    {
                        "Id": qid,
                        "ReturnData": True,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/Lambda",
                                "MetricName": metric,
                                "Dimensions": [{"Name": "FunctionName", "Value": fn}],
                            },
                            "Period": period_s,
                            "Stat": stat,
                        },
                    }
                )
    rows = []
    for i in range(0, len(queries), 500):  # API limit: 500 queries per call
        for res in _paginate(
            cw_client.get_metric_data,
            "MetricDataResults",
            token="NextToken",
            MetricDataQueries=queries[i : i + 500],
            StartTime=start,
            EndTime=end,
        ):
            fn, metric, stat = labels[res["Id"]]
            rows += [(fn, metric, stat, t, v) for t, v in zip(res.get("Timestamps", []), res.get("Values", []))]
    df = pd.DataFrame(rows, columns=["function", "metric", "stat", "timestamp", "value"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df.sort_values(["function", "metric", "stat", "timestamp"]).reset_index(drop=True)


# ---- Step Functions: executions and per-state rows -----------------------------------------


def list_stack_objects(s3_client: Any, bucket: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Objects of the stack's bucket written in [start, end] (key, size, last_modified): what the run stored.

    A bucket that does not exist (torn down already) gives an empty table.
    """
    rows: list[dict] = []
    try:
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            rows += [
                {"key": o["Key"], "size": int(o["Size"]), "last_modified": o["LastModified"]}
                for o in page.get("Contents", [])
            ]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
    df = _objects_frame(rows)
    # S3 keeps whole seconds: an object written in the run's first second still counts
    within = (df["last_modified"] >= pd.Timestamp(start).floor("s")) & (df["last_modified"] <= pd.Timestamp(end))
    return df[within].reset_index(drop=True)


def _objects_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["key", "size", "last_modified"])
    df["last_modified"] = pd.to_datetime(df["last_modified"], utc=True)
    return df


def stack_bucket(s3_client: Any, stack: str) -> str | None:
    """The stack's image bucket: named ``<stack>-images-...`` and tagged with the stack, or None."""
    for name in sorted(b["Name"] for b in s3_client.list_buckets().get("Buckets", [])):
        if name.startswith(f"{stack}-images-") and _bucket_stack(s3_client, name) == stack:
            return name
    return None


def _bucket_stack(s3_client: Any, bucket: str) -> str | None:
    try:
        tags = s3_client.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
    except ClientError:
        return None
    return next((t["Value"] for t in tags if t["Key"] == STACK_TAG_KEY), None)


def list_stack_state_machines(sfn_client: Any, stack: str) -> pd.DataFrame:
    """The stack's state machines (name prefix ``<stack>-``) with type and log group."""
    rows = []
    for sm in _paginate(sfn_client.list_state_machines, "stateMachines"):
        if not sm["name"].startswith(f"{stack}-"):
            continue
        desc = sfn_client.describe_state_machine(stateMachineArn=sm["stateMachineArn"])
        rows.append(
            {
                "state_machine": sm["name"],
                "arn": sm["stateMachineArn"],
                "type": desc.get("type", sm.get("type", "STANDARD")),
                "log_group": _log_group_of(desc.get("loggingConfiguration") or {}),
                "definition": desc.get("definition", ""),
            }
        )
    return pd.DataFrame(rows, columns=["state_machine", "arn", "type", "log_group", "definition"])


def _log_group_of(logging_cfg: dict) -> str | None:
    """``arn:aws:logs:<region>:<acct>:log-group:<name>:*`` → ``<name>`` (None when not logging ALL)."""
    if logging_cfg.get("level") != "ALL":
        return None
    for dest in logging_cfg.get("destinations") or []:
        arn = (dest.get("cloudWatchLogsLogGroup") or {}).get("logGroupArn", "")
        if ":log-group:" in arn:
            return arn.split(":log-group:", 1)[1].removesuffix(":*")
    return None


def fetch_executions(sfn_client: Any, state_machine_arn: str, start: datetime, end: datetime) -> list[dict]:
    """Executions started in [start, end].

    AWS lists newest first, so paging stops at the first older execution, but only while the
    listing has been in that order (an emulator may list oldest first).
    """
    out, previous, descending = [], None, True
    for ex in _paginate(sfn_client.list_executions, "executions", stateMachineArn=state_machine_arn):
        started = ex["startDate"]
        ordered = previous is not None and descending and started <= previous
        descending = descending and (previous is None or started <= previous)
        previous = started
        if started < start and ordered:
            break
        if start <= started <= end:
            out.append(ex)
    return out


def fetch_history(sfn_client: Any, execution_arn: str) -> list[dict]:
    """All history events of one execution, normalised by :func:`normalise_history_event`."""
    events = _paginate(sfn_client.get_execution_history, "events", executionArn=execution_arn, maxResults=1000)
    return [normalise_history_event(e) for e in events]


def _has_log_group(sm: dict) -> bool:
    return isinstance(sm.get("log_group"), str) and bool(sm["log_group"])


def collect_state_machine(
    sfn_client: Any, logs_client: Any, sm: dict, start: datetime, end: datetime, log_events: pd.DataFrame | None = None
) -> tuple[list[dict], list[pd.DataFrame]]:
    """Executions rows and per-state frames of one state machine, from logs (Express) or the API.

    ``log_events``: the machine's log group events if already fetched (else fetched here).
    """
    histories: dict[str, list[dict]] = {}
    source = "history_api"
    if sm["type"] == "EXPRESS" and _has_log_group(sm):
        if log_events is None:
            log_events = fetch_log_events(logs_client, sm["log_group"], start, end)
        histories = express_log_records(log_events)
        source = "cloudwatch_logs"
    if not histories:
        source = "history_api"
        try:
            for ex in fetch_executions(sfn_client, sm["arn"], start, end):
                histories[ex["executionArn"]] = fetch_history(sfn_client, ex["executionArn"])
        except ClientError as err:  # e.g. AWS: Express executions cannot be listed
            if sm["type"] != "EXPRESS":
                raise
            histories = {}
            source = f"unavailable: {err}"
    rows, states = [], []
    for arn, events in histories.items():
        events = sorted(events, key=lambda e: e["id"])
        rows.append({**executions_from_history(events, arn, sm["state_machine"]), "source": source})
        states.append(history_to_states(events, arn).assign(state_machine=sm["state_machine"]))
    return rows, states


# ---- one run ---------------------------------------------------------------------------------


def collect_run(
    settings: Any,
    start: datetime,
    end: datetime,
    *,
    jtl: pd.DataFrame | str | Path | None = None,
    clients: dict[str, Any] | None = None,
    period_s: int = 60,
    extra: dict | None = None,
    bucket: str | None = None,
    table: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunData:
    """Collect everything of ``settings.stack`` in [start, end] into a :class:`RunData`.

    ``clients`` may inject boto3 clients by service name (logs, cloudwatch,
    lambda, stepfunctions, s3); missing ones come from :func:`swlab.settings.client`.
    ``bucket``: the stack's bucket (the deploy outputs name it); found by its name prefix
    ``<stack>-images-`` when not given. ``table``: the stack's table (``<stack>-images`` when not given).
    ``progress`` gets one line after each log group ("log events collected N (k of m log groups)").

    With a JTL, the run's items and raw objects are listed (:mod:`swlab.analysis.inventory`) and
    reconciled with JMeter's samples (:mod:`swlab.analysis.reconcile`): tables ``items``,
    ``raw_objects``, ``reconciliation`` and ``reconciliation_exceptions``.
    """
    clients = dict(clients or {})

    def get(service: str) -> Any:
        if service not in clients:
            clients[service] = make_client(settings, service)
        return clients[service]

    functions = list_stack_functions(get("lambda"), settings.stack)
    machines = list_stack_state_machines(get("stepfunctions"), settings.stack)
    groups, collected = len(functions) + sum(map(_has_log_group, machines.to_dict("records"))), 0

    def fetched(df: pd.DataFrame) -> pd.DataFrame:
        nonlocal collected
        collected += len(df)
        if progress is not None:
            done = len(log_events) + len(sm_logs) + 1
            progress(f"log events collected {collected} ({done} of {groups} log groups)")
        return df

    log_events: list[pd.DataFrame] = []
    sm_logs: list[pd.DataFrame] = []
    for f, g in zip(functions["function"], functions["log_group"]):
        log_events.append(fetched(fetch_log_events(get("logs"), g, start, end).assign(function=f)))
    events = (
        pd.concat(log_events, ignore_index=True)
        if log_events
        else pd.DataFrame(columns=["log_group", "log_stream", "timestamp", "message", "ingestion_time", "function"])
    )
    ex_rows, state_frames = [], []
    for sm in machines.to_dict("records"):
        sm_events = (
            fetched(
                fetch_log_events(get("logs"), sm["log_group"], start, end).assign(state_machine=sm["state_machine"])
            )
            if _has_log_group(sm)
            else None
        )
        rows, frames = collect_state_machine(get("stepfunctions"), get("logs"), sm, start, end, sm_events)
        ex_rows += rows
        state_frames += frames
        sm_logs += [] if sm_events is None else [sm_events]
    bucket = bucket or stack_bucket(get("s3"), settings.stack)
    tables = {
        "functions": functions,
        "log_events": events,
        "invocations": parse_log_events(events),
        "s3_objects": list_stack_objects(get("s3"), bucket, start, end) if bucket else _objects_frame([]),
        "metrics": fetch_lambda_metrics(get("cloudwatch"), functions["function"], start, end, period_s),
        "state_machines": machines,
        "executions": executions_frame(ex_rows),
        "states": pd.concat(state_frames, ignore_index=True) if state_frames else history_to_states([], ""),
        "state_machine_log_events": pd.concat(sm_logs, ignore_index=True)
        if sm_logs
        else pd.DataFrame(
            columns=["log_group", "log_stream", "timestamp", "message", "ingestion_time", "state_machine"]
        ),
    }
    if jtl is not None:
        tables["jtl"] = jtl if isinstance(jtl, pd.DataFrame) else parse_jtl(Path(jtl))
        tables.update(_reconciled(get, bucket, table or f"{settings.stack}-images", tables))
    tables = {name: tidy_strings(df) for name, df in tables.items()}
    return RunData(manifest=make_manifest(settings, start, end, period_s, extra), tables=tables)


def _reconciled(get: Callable[[str], Any], bucket: str | None, table: str, tables: dict) -> dict[str, pd.DataFrame]:
    """The run's items and raw objects, and their reconciliation with the JTL."""
    if not bucket:
        return {}  # the stack is gone: nothing to reconcile (the caller says so)
    try:
        items, raw = collect_inventory(get("dynamodb"), get("s3"), table, bucket, tables["jtl"], tables["s3_objects"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("ResourceNotFoundException", "NoSuchBucket"):
            raise
        return {}
    result = reconcile(tables["jtl"], items, raw, tables["executions"])
    return {
        "items": items,
        "raw_objects": raw,
        "reconciliation": result.table(),
        "reconciliation_exceptions": result.exceptions,
    }


def make_manifest(settings: Any, start: datetime, end: datetime, period_s: int, extra: dict | None) -> dict:
    """Provenance of a run: resolved settings, target, stack, window, git commit, tool versions."""
    return {
        "settings": settings.as_dict(),
        "target": settings.target,
        "stack": settings.stack,
        "region": settings.region,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "metric_period_s": period_s,
        "git_commit": git_commit(),
        "tool_versions": tool_versions(),
        "collected_at": datetime.now(timezone.utc).isoformat(),
        **(extra or {}),
    }


def git_commit(repo_dir: Path | None = None) -> str | None:
    """HEAD of the lab's repository (``-dirty`` appended when the tree has changes), or None."""
    git = git_info(repo_dir or Path(__file__).resolve().parents[2])
    return git["commit"] and git["commit"] + ("-dirty" if git["dirty"] else "")
