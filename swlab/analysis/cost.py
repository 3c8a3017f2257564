"""Cost model: pure functions with units in their names, an itemized table per run, and per
million workflow runs. Prices come from :mod:`swlab.analysis.prices` (the dated offline table, or on target aws
the Price List API); every table says which. This module reads no files and calls no AWS.

Free tier is never subtracted: :func:`cost_table` shows, beside each line, how much of it a
monthly free tier would cover.

S3 requests and DynamoDB request units are measured: each function writes, per invocation
that made AWS SDK calls, an ``aws_calls`` log line (read by
:func:`swlab.analysis.aws_calls.aws_calls`), and the state machine's direct DynamoDB states are
counted from the execution history (:func:`sfn_dynamodb_units`). A workflow whose functions
wrote no such line (a run directory from before the line existed) falls back to
:data:`REQUEST_PROFILE`, the requests one run makes by design. S3 storage is measured too: the
bytes the run's objects take (``s3_objects``, listed at collection), kept for a month.
DynamoDB storage and API Gateway requests always come from the profile. Every usage line says
which in its ``basis`` column ("measured" or "design").

One concern, kept in one module: the cost model, from a run's tables to usage lines and their
prices; its parts (unit prices, usage per service, the request profile) only make sense together.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from swlab.analysis.aws_calls import aws_calls

BYTES_PER_GB = 1024**3
LOG_EVENT_OVERHEAD_BYTES = 26  # CloudWatch Logs bills each event as UTF-8 message bytes + 26
EXPRESS_MEMORY_MB = 64  # 50 MB + definition + pointer-sized payloads → one 64-MB chunk
# Requests to S3/DynamoDB/API Gateway that one run of each workflow makes (design, not measured):
# API Gateway and DynamoDB storage always; S3/DynamoDB requests only for a run whose functions logged
# no aws_calls line; S3 storage only for a run collected without its bucket's objects (s3_objects).
# Storage: what a run leaves behind, kept for one month (a ~200 KB photo; five ~100 KB
# intermediates; a ~1 KB item).
REQUEST_PROFILE: dict[str, dict[str, float]] = {
    "ingest": {
        "apigateway_requests": 1,
        "s3_put_requests": 1,
        "dynamodb_write_units": 1,
        "s3_storage_gb_month": 200e3 / BYTES_PER_GB,
        "dynamodb_storage_gb_month": 1e3 / BYTES_PER_GB,
    },
    # read metadata; FetchImage→Resize each read one object and write one; 3 models read one each.
    "classify": {
        "apigateway_requests": 1,
        "dynamodb_read_units": 1,
        "dynamodb_write_units": 2,
        "s3_get_requests": 8,
        "s3_put_requests": 5,
        "s3_storage_gb_month": 5 * 100e3 / BYTES_PER_GB,
    },
}


# ---- pure unit functions -------------------------------------------------------------------


def lambda_gb_s(billed_ms: float, memory_mb: float) -> float:
    return billed_ms / 1000.0 * memory_mb / 1024.0


def lambda_compute_cost_usd(billed_ms: float, memory_mb: float, usd_per_gb_s: float) -> float:
    return lambda_gb_s(billed_ms, memory_mb) * usd_per_gb_s


def per_million_cost_usd(count: float, usd_per_million: float) -> float:
    return count / 1e6 * usd_per_million


def per_thousand_cost_usd(count: float, usd_per_1k: float) -> float:
    return count / 1e3 * usd_per_1k


def sfn_standard_cost_usd(transitions: float, usd_per_1k_transitions: float) -> float:
    return per_thousand_cost_usd(transitions, usd_per_1k_transitions)


def sfn_express_billed_gb_s(duration_ms: float, memory_mb: float = EXPRESS_MEMORY_MB) -> float:
    """Express duration billing: time rounded up to 100 ms, memory rounded up to 64-MB chunks."""
    billed_s = math.ceil(duration_ms / 100.0) * 0.1
    billed_gb = math.ceil(memory_mb / 64.0) * 64 / 1024.0
    return billed_s * billed_gb


def sfn_express_cost_usd(
    requests: float, billed_gb_s: float, usd_per_million_requests: float, usd_per_gb_s: float
) -> float:
    return per_million_cost_usd(requests, usd_per_million_requests) + billed_gb_s * usd_per_gb_s


def storage_cost_usd(gb_month: float, usd_per_gb_month: float) -> float:
    return gb_month * usd_per_gb_month


def logs_ingestion_cost_usd(ingested_bytes: float, usd_per_gb: float) -> float:
    return ingested_bytes / BYTES_PER_GB * usd_per_gb


def init_billed_ms(invocations: pd.DataFrame, total_billed_ms: pd.Series) -> pd.Series:
    """The INIT share of each invocation's billed ms (Init Duration rounded up; 0 when warm)."""
    init = np.ceil(invocations["init_duration_ms"].astype(float))
    return np.minimum(init.fillna(0.0), total_billed_ms)


def lambda_billed_ms(invocations: pd.DataFrame, init_billed: bool = True) -> pd.Series:
    """Billed ms per invocation; adds the Init Duration (rounded up) on cold starts when it is billed
    and the REPORT's Billed Duration does not already contain it (it does for images/custom runtimes)."""
    billed = invocations["billed_duration_ms"].astype(float)
    if not init_billed:
        return billed
    init = invocations["init_duration_ms"].astype(float)
    included = billed >= invocations["duration_ms"].astype(float) + init - 1.0
    add = np.ceil(init).where(init.notna() & ~included, 0.0)
    return billed + add


# ---- usage of a run → itemized cost ---------------------------------------------------------

_USAGE_COLUMNS = [
    "workflow",
    "runs",
    "service",
    "item",
    "variant",
    "quantity",
    "unit",
    "price_key",
    "per",
    "free_tier_key",
    "basis",
]
MEASURED, DESIGN = "measured", "design"  # basis of a usage line: the run's telemetry, or REQUEST_PROFILE


def _line(workflow, runs, service, item, quantity, unit, price_key, per=1.0, free=None, variant="all", basis=MEASURED):
    return dict(
        zip(
            _USAGE_COLUMNS, (workflow, runs, service, item, variant, float(quantity), unit, price_key, per, free, basis)
        )
    )


def workflows_of_run(tables: dict[str, pd.DataFrame], stack: str) -> dict[str, dict]:
    """{workflow: {"functions": [...], "runs": n, "state_machine": name|None}}.

    A state machine is a workflow with the functions its Task states called; every other
    function is a workflow of its own (Workflow 1 is one Lambda behind API Gateway).
    """
    empty = pd.DataFrame(columns=["function", "state_machine", "resource"])
    inv, states, ex = (tables.get(name, empty) for name in ("invocations", "states", "executions"))
    out: dict[str, dict] = {}
    used: set[str] = set()
    if len(ex):
        for sm, g in ex.groupby("state_machine"):
            fns = sorted(set(states.loc[states["state_machine"] == sm, "resource"].dropna()) & set(inv["function"]))
            used |= set(fns)
            out[sm.removeprefix(f"{stack}-")] = {"functions": fns, "runs": len(g), "state_machine": sm}
    for fn, g in inv.groupby("function"):
        if fn not in used:
            out[fn.removeprefix(f"{stack}-")] = {"functions": [fn], "runs": len(g), "state_machine": None}
    return out


def usage_lines(
    tables: dict[str, pd.DataFrame], stack: str, profile: dict | None = None, init_billed: bool = True
) -> pd.DataFrame:
    """What a run consumed, per workflow and service (quantities with units; no prices yet).

    ``basis`` says where each quantity comes from: "measured" (REPORT lines, execution histories,
    log bytes, the functions' aws_calls lines) or "design" (``profile``, default
    :data:`REQUEST_PROFILE`: storage, API Gateway requests, and S3/DynamoDB requests of a
    workflow whose functions logged no aws_calls line).
    """
    profile = REQUEST_PROFILE if profile is None else profile
    inv = tables["invocations"]
    events = tables.get("log_events")
    calls = aws_calls([] if events is None else events)
    arch = (
        tables.get("functions", pd.DataFrame()).set_index("function")["architecture"].to_dict()
        if len(tables.get("functions", []))
        else {}
    )
    rows: list[dict] = []
    for wf, info in workflows_of_run(tables, stack).items():
        runs, fns = info["runs"], info["functions"]
        rows += _lambda_lines(wf, runs, inv[inv["function"].isin(fns)], arch, init_billed)
        if info["state_machine"]:
            rows += _sfn_lines(wf, runs, tables, info["state_machine"])
        per_run = profile.get(wf, {})
        if tables.get("s3_objects") is not None and wf in STORAGE_PREFIXES:
            per_run = {k: v for k, v in per_run.items() if k != "s3_storage_gb_month"}
            rows.append(
                _item_line(
                    wf, runs, "s3_storage_gb_month", stored_gb(tables["s3_objects"], STORAGE_PREFIXES[wf]), MEASURED
                )
            )
        rows += _request_lines(
            wf, runs, per_run, calls[calls["function"].isin(fns)], tables.get("states"), info["state_machine"]
        )
        rows += _logs_lines(wf, runs, events, fns, tables.get("state_machine_log_events"), info["state_machine"])
    return pd.DataFrame(rows, columns=_USAGE_COLUMNS)


def _lambda_lines(wf: str, runs: int, inv: pd.DataFrame, arch: dict, init_billed: bool) -> list[dict]:
    rows = [
        _line(
            wf,
            runs,
            "Lambda",
            "requests",
            len(inv),
            "requests",
            "lambda_usd_per_million_requests",
            1e6,
            "lambda_requests",
        )
    ]
    a = inv["function"].map(lambda f: arch.get(f, "x86_64"))
    total_ms = lambda_billed_ms(inv, init_billed)
    init_ms = init_billed_ms(inv, total_ms) if init_billed else total_ms * 0
    gb = inv["memory_size_mb"].astype(float) / 1024
    invoke_gb_s, init_gb_s = (total_ms - init_ms) / 1000 * gb, init_ms / 1000 * gb
    for name in sorted(set(a)):
        key = f"lambda_{name}_usd_per_gb_s"
        rows.append(
            _line(wf, runs, "Lambda", f"duration {name}", invoke_gb_s[a == name].sum(), "GB-s", key, 1, "lambda_gb_s")
        )
        rows.append(
            _line(
                wf,
                runs,
                "Lambda",
                f"init (cold starts) {name}",
                init_gb_s[a == name].sum(),
                "GB-s",
                key,
                1,
                "lambda_gb_s",
            )
        )
    return rows


def _sfn_lines(wf: str, runs: int, tables: dict, sm: str) -> list[dict]:
    states = tables["states"]
    mine = states[states["state_machine"] == sm]
    transitions = int(state_attempts(mine).sum())  # a transition per state entered, plus one per retry
    ex = tables["executions"]
    durations = ex.loc[(ex["state_machine"] == sm) & ex["duration_ms"].notna(), "duration_ms"]
    gb_s = sum(sfn_express_billed_gb_s(d) for d in durations)
    return [
        _line(
            wf,
            runs,
            "Step Functions",
            "Standard state transitions",
            transitions,
            "transitions",
            "sfn_standard_usd_per_1k_transitions",
            1e3,
            "sfn_standard_transitions",
            "standard",
        ),
        _line(
            wf,
            runs,
            "Step Functions",
            "Express requests",
            runs,
            "requests",
            "sfn_express_usd_per_million_requests",
            1e6,
            None,
            "express",
        ),
        _line(
            wf,
            runs,
            "Step Functions",
            "Express duration (64 MB, 100 ms steps)",
            gb_s,
            "GB-s",
            "sfn_express_usd_per_gb_s",
            1,
            None,
            "express",
        ),
    ]


def state_attempts(states: pd.DataFrame) -> pd.Series:
    """Attempts per state visit: 1 + its retries (failed attempts that were tried again; a visit
    whose last attempt failed was not retried after it)."""
    retries = pd.Series(0, index=states.index, dtype="int64")
    if "failed_attempts" in states:
        last_failed = (states["status"] == "failed").astype(int) if "status" in states else 0
        retries = (states["failed_attempts"].fillna(0) - last_failed).clip(lower=0).astype("int64")
    return 1 + retries


# ---- S3 and DynamoDB requests: measured (aws_calls lines, SFN DynamoDB states) or by design -------

# S3 bills PUT, COPY, POST and LIST requests as Tier 1 and GET, SELECT and all other requests as
# Tier 2; DELETE and CANCEL requests are free (https://aws.amazon.com/s3/pricing/). By API operation:
_S3_TIER1_PREFIXES = ("Put", "Copy", "Post", "List", "Create", "Upload", "Complete", "Restore")
_S3_FREE_PREFIXES = ("Delete", "AbortMultipartUpload")
# DynamoDB operations that consume write / read request units (on-demand).
DYNAMODB_WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
DYNAMODB_READ_OPERATIONS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
# Units per call when DynamoDB reported no ConsumedCapacity: one, i.e. single items of <= 1 KB
# written and <= 4 KB read strongly consistently (an eventually consistent read is half a unit;
# batch and transactional calls cost per item, twice for transactions, so they count low).
DYNAMODB_UNITS_PER_CALL = 1.0
# Step Functions' direct DynamoDB integrations (states.resource) → (usage key, units per attempt);
# GetMetadata in asl/classify.asl.json reads with ConsistentRead (1 RRU for an item <= 4 KB).
SFN_DYNAMODB_UNITS = {
    "dynamodb:getItem": ("dynamodb_read_units", 1.0),
    "dynamodb:putItem": ("dynamodb_write_units", 1.0),
    "dynamodb:updateItem": ("dynamodb_write_units", 1.0),
    "dynamodb:deleteItem": ("dynamodb_write_units", 1.0),
}
_MEASURED_KEYS = ("s3_put_requests", "s3_get_requests", "dynamodb_read_units", "dynamodb_write_units")


def request_kind(call: str) -> str | None:
    """``"service:Operation"`` → the usage key it is billed under (``s3_put_requests`` = Tier 1,
    ``s3_get_requests`` = Tier 2, ``dynamodb_read_units``, ``dynamodb_write_units``), or None
    (free, such as S3 DELETE, or not priced by this model)."""
    service, _, op = call.partition(":")
    if service == "s3":
        if op.startswith(_S3_FREE_PREFIXES):
            return None
        return "s3_put_requests" if op.startswith(_S3_TIER1_PREFIXES) else "s3_get_requests"
    if service == "dynamodb":
        if op in DYNAMODB_WRITE_OPERATIONS:
            return "dynamodb_write_units"
        if op in DYNAMODB_READ_OPERATIONS:
            return "dynamodb_read_units"
    return None


def measured_request_usage(calls: pd.DataFrame) -> dict[str, float]:
    """aws_calls rows → {usage key: total}: S3 requests counted; DynamoDB units as reported
    (``capacity_units``), else :data:`DYNAMODB_UNITS_PER_CALL` per call."""
    kind = calls["call"].map(request_kind)
    units = calls["capacity_units"].where(calls["capacity_units"].notna(), calls["count"] * DYNAMODB_UNITS_PER_CALL)
    amount = calls["count"].where(kind.str.startswith("s3_", na=False), units)
    return {k: float(v) for k, v in amount.groupby(kind).sum().items()}


def sfn_dynamodb_units(states: pd.DataFrame | None, sm: str | None) -> dict[str, float]:
    """{usage key: units} of the state machine's direct DynamoDB states: units per attempt
    (:data:`SFN_DYNAMODB_UNITS`) x attempts (visits + retries, as transitions are counted)."""
    if not sm or states is None or not len(states) or "resource" not in states:
        return {}
    mine = states[(states["state_machine"] == sm) & states["resource"].isin(list(SFN_DYNAMODB_UNITS))]
    out: dict[str, float] = {}
    for resource, attempts in state_attempts(mine).groupby(mine["resource"]).sum().items():
        key, per_attempt = SFN_DYNAMODB_UNITS[resource]
        out[key] = out.get(key, 0.0) + float(attempts) * per_attempt
    return out


# Where each workflow's functions write (lambdas/ingest: raw/; swl_s3.processed_key: processed/<id>/<step>.png).
STORAGE_PREFIXES = {"ingest": "raw/", "classify": "processed/"}


def stored_gb(objects: pd.DataFrame, prefix: str) -> float:
    """GB the run left under ``prefix`` (the collected ``s3_objects``: objects written during the run)."""
    return float(objects.loc[objects["key"].str.startswith(prefix), "size"].sum()) / BYTES_PER_GB


def _request_lines(
    wf: str, runs: int, per_run: dict, calls: pd.DataFrame, states: pd.DataFrame | None, sm: str | None
) -> list[dict]:
    """S3/DynamoDB request lines measured when the workflow's functions logged aws_calls lines (plus
    its SFN DynamoDB states), else by design; storage and API Gateway lines by design always."""
    if not len(calls):
        return _profile_lines(wf, runs, per_run)
    rows = _profile_lines(wf, runs, {k: v for k, v in per_run.items() if k not in _MEASURED_KEYS})
    measured = measured_request_usage(calls)
    for key, units in sfn_dynamodb_units(states, sm).items():
        measured[key] = measured.get(key, 0.0) + units
    for key in _MEASURED_KEYS:
        if measured.get(key, 0.0) > 0:
            rows.append(_item_line(wf, runs, key, measured[key], MEASURED))
    return rows


_PROFILE_ITEMS = {  # profile key → (service, item, unit, price key, per, free tier key)
    "apigateway_requests": (
        "API Gateway",
        "REST requests",
        "requests",
        "apigateway_rest_usd_per_million_requests",
        1e6,
        "apigateway_rest_requests",
    ),
    "s3_put_requests": (
        "S3",
        "Tier 1 requests (PUT, COPY, POST, LIST)",
        "requests",
        "s3_put_usd_per_1k_requests",
        1e3,
        "s3_put_requests",
    ),
    "s3_get_requests": (
        "S3",
        "Tier 2 requests (GET and all other)",
        "requests",
        "s3_get_usd_per_1k_requests",
        1e3,
        "s3_get_requests",
    ),
    "dynamodb_read_units": (
        "DynamoDB",
        "read request units",
        "RRU",
        "dynamodb_usd_per_million_read_request_units",
        1e6,
        None,
    ),
    "dynamodb_write_units": (
        "DynamoDB",
        "write request units",
        "WRU",
        "dynamodb_usd_per_million_write_request_units",
        1e6,
        None,
    ),
    "s3_storage_gb_month": (
        "S3",
        "storage (kept one month)",
        "GB-month",
        "s3_standard_usd_per_gb_month",
        1,
        "s3_storage_gb",
    ),
    "dynamodb_storage_gb_month": (
        "DynamoDB",
        "storage (kept one month)",
        "GB-month",
        "dynamodb_usd_per_gb_month",
        1,
        "dynamodb_storage_gb",
    ),
}


def _item_line(wf: str, runs: int, key: str, quantity: float, basis: str) -> dict:
    service, item, unit, price_key, per, free = _PROFILE_ITEMS[key]
    return _line(wf, runs, service, item, quantity, unit, price_key, per, free, basis=basis)


def _profile_lines(wf: str, runs: int, per_run: dict) -> list[dict]:
    """Design lines: a per-run profile value x runs."""
    return [_item_line(wf, runs, key, count * runs, DESIGN) for key, count in per_run.items()]


def _logs_lines(
    wf: str,
    runs: int,
    events: pd.DataFrame | None,
    fns: list[str],
    sm_events: pd.DataFrame | None = None,
    sm: str | None = None,
) -> list[dict]:
    """Ingested bytes of the workflow's function logs and of its state machine's log group."""
    msgs = []
    if events is not None and len(events):
        msgs.append(events.loc[events["function"].isin(fns), "message"])
    if sm and sm_events is not None and len(sm_events):
        msgs.append(sm_events.loc[sm_events["state_machine"] == sm, "message"])
    if not msgs:
        return []
    all_msgs = pd.concat(msgs, ignore_index=True).astype(str)
    nbytes = float(all_msgs.str.encode("utf-8").str.len().sum() + LOG_EVENT_OVERHEAD_BYTES * len(all_msgs))
    return [
        _line(
            wf,
            runs,
            "CloudWatch Logs",
            "ingestion",
            nbytes / BYTES_PER_GB,
            "GB",
            "cloudwatch_logs_ingestion_usd_per_gb",
            1,
            "cloudwatch_logs_ingestion_gb",
        )
    ]


def cost_table(usage: pd.DataFrame, prices: dict[str, Any]) -> pd.DataFrame:
    """Usage lines priced: unit_price_usd, cost_usd, and (separately) free_tier_quantity and the
    free_tier_value_usd a monthly free tier would cover for this line alone (not subtracted)."""
    p, free = prices["prices"], prices.get("free_tier_per_month", {})
    out = usage.copy()
    out["unit_price_usd"] = out["price_key"].map(p)
    out["cost_usd"] = out["quantity"] / out["per"] * out["unit_price_usd"]
    out["free_tier_quantity"] = out["free_tier_key"].map(lambda k: free.get(k) if k else np.nan).astype(float)
    covered = np.minimum(out["quantity"], out["free_tier_quantity"].fillna(0))
    out["free_tier_value_usd"] = covered / out["per"] * out["unit_price_usd"]
    out.attrs["prices_source"] = prices.get("source_kind")
    out.attrs["prices_as_of"] = prices.get("as_of")
    return out


def per_million_runs(costs: pd.DataFrame) -> pd.DataFrame:
    """Cost per 1,000,000 runs of each workflow, per service line (variant standard/express for
    Step Functions; lines with variant 'all' apply to both)."""
    df = costs[costs["runs"] > 0].copy()
    df["usd_per_run"] = df["cost_usd"] / df["runs"]
    df["usd_per_million_runs"] = df["usd_per_run"] * 1e6
    cols = ["workflow", "service", "item", "variant", "basis", "usd_per_run", "usd_per_million_runs"]
    return df[[c for c in cols if c in df.columns]]


def workflow_totals(costs: pd.DataFrame) -> pd.DataFrame:
    """Total per run and per million runs for each workflow, with Standard and with Express."""
    pm = per_million_runs(costs)
    rows = []
    for wf, g in pm.groupby("workflow"):
        variants = sorted(set(g["variant"]) - {"all"}) or ["all"]
        for v in variants:
            sel = g[g["variant"].isin(["all", v])]
            rows.append(
                {
                    "workflow": wf,
                    "step_functions": v if v != "all" else None,
                    "usd_per_run": sel["usd_per_run"].sum(),
                    "usd_per_million_runs": sel["usd_per_million_runs"].sum(),
                }
            )
    return pd.DataFrame(rows)
