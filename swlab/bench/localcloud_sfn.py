"""Benchmark of Step Functions on the local cloud: ``python -m swlab.bench.localcloud_sfn``.

Prints ``name: value`` lines:

* ``sfn_task_overhead_p50_ms`` — time Step Functions adds per Lambda task: an
  Express chain of 10 zero-work ``arn:aws:states:::lambda:invoke`` tasks run with
  StartSyncExecution; per execution, (client-observed round trip − the sum of
  its 10 functions' ``Duration`` from their REPORT lines) / 10; the median
  over ``--sample`` executions (plus ``_p90_ms`` and ``_mean_ms``);
* ``rss_growth_mb`` — growth of the local cloud process's resident memory
  (psutil, the server process; Lambda environments are separate processes)
  over ``--executions`` executions of that chain (default 5,000), measured
  after a warm-up; with ``rss_before_mb``, ``rss_after_mb``,
  ``rss_executions``, ``rss_failed_executions``, ``rss_elapsed_s`` and
  ``executions_per_s``; ``load_avg_1m_at_end`` says how busy the machine was.

The chain's function is the Lambda benchmark's probe at 1,769 MB (one full core, see
:mod:`swlab.bench.localcloud_lambda`): the figure is what Step Functions adds, and at 128 MB the
runtime client's own work between invocations (0.07 of a core) would be counted as overhead.
``probe_memory_mb``, ``cpu_model`` and ``cpu_share_mechanism`` are printed with the figures.

It starts its own local cloud (``--endpoint`` + ``--pid`` use a running one).
Sequential executions keep one warm Lambda environment, so the REPORT lines
arrive in invocation order and are grouped ten by ten (the count is checked).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil

from swlab.analysis.log_lines import parse_report_line
from swlab.bench.localcloud_lambda import deploy_trivial, percentile, probe_conditions
from swlab.localcloud.server import LocalCloudProcess
from swlab.settings import client, load_settings

CHAIN_LENGTH = 10


def chain_definition(function_name: str, n: int = CHAIN_LENGTH) -> dict:
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_name, "Payload.$": "$"},
        "OutputPath": "$.Payload",
    }
    states = {f"T{i}": {**task, **({"Next": f"T{i + 1}"} if i < n - 1 else {"End": True})} for i in range(n)}
    return {"StartAt": "T0", "States": states}


def _clients(endpoint_url: str) -> tuple[Any, Any]:
    settings = load_settings(env={}, target="local", endpoint_url=endpoint_url)
    return (client(settings, "stepfunctions", max_pool_connections=32, read_timeout=120), client(settings, "logs"))


def create_chain(sfn: Any, function_name: str) -> str:
    role = "arn:aws:iam::123456789012:role/bench-sfn"
    return sfn.create_state_machine(
        name=f"bench-chain-{int(time.time() * 1000)}",
        type="EXPRESS",
        roleArn=role,
        definition=json.dumps(chain_definition(function_name)),
    )["stateMachineArn"]


def run_once(sfn: Any, arn: str) -> float:
    """One execution, StartSyncExecution; returns its round trip in ms (fails loudly if it failed)."""
    t0 = time.perf_counter()
    resp = sfn.start_sync_execution(stateMachineArn=arn, input='{"n": 1}')
    elapsed = (time.perf_counter() - t0) * 1000
    if resp["status"] != "SUCCEEDED":
        raise RuntimeError(f"benchmark execution {resp['status']}: {resp.get('error')} {resp.get('cause')}")
    return elapsed


def report_durations(logs: Any, function_name: str, expected: int, timeout_s: float = 30.0) -> list[float]:
    """Every REPORT Duration of the function, in log order; waits until ``expected`` are there."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = []
        paginator = logs.get_paginator("filter_log_events")
        for page in paginator.paginate(logGroupName=f"/aws/lambda/{function_name}", filterPattern="REPORT"):
            events += page["events"]
        reports = [r for r in (parse_report_line(e["message"]) for e in events) if r]
        if len(reports) >= expected or time.monotonic() > deadline:
            return [r["duration_ms"] for r in reports]
        time.sleep(0.3)


def bench_overhead(endpoint_url: str, function_name: str, arn: str, sample: int, warmup: int) -> dict[str, float]:
    sfn, logs = _clients(endpoint_url)
    for _ in range(warmup):
        run_once(sfn, arn)
    round_trips = [run_once(sfn, arn) for _ in range(sample)]
    durations = report_durations(logs, function_name, (warmup + sample) * CHAIN_LENGTH)
    if len(durations) != (warmup + sample) * CHAIN_LENGTH:
        raise RuntimeError(f"expected {(warmup + sample) * CHAIN_LENGTH} REPORT lines, found {len(durations)}")
    mine = durations[warmup * CHAIN_LENGTH :]
    per_task = [
        (rt - sum(mine[i * CHAIN_LENGTH : (i + 1) * CHAIN_LENGTH])) / CHAIN_LENGTH for i, rt in enumerate(round_trips)
    ]
    return {
        "sfn_task_overhead_p50_ms": statistics.median(per_task),
        "sfn_task_overhead_p90_ms": percentile(per_task, 0.90),
        "sfn_task_overhead_mean_ms": statistics.fmean(per_task),
        "sfn_execution_p50_ms": statistics.median(round_trips),
        "lambda_duration_p50_ms": statistics.median(mine),
    }


def bench_rss(endpoint_url: str, pid: int, arn: str, executions: int, threads: int) -> dict[str, float]:
    """RSS of the local cloud before/after ``executions`` runs of the chain (``threads`` clients)."""
    proc = psutil.Process(pid)
    sfn, _ = _clients(endpoint_url)
    before = proc.memory_info().rss
    done, lock = [0], threading.Lock()

    failed = [0]

    def worker(count: int) -> None:
        for _ in range(count):
            try:
                run_once(sfn, arn)
            except RuntimeError:  # counted and reported, not hidden
                with lock:
                    failed[0] += 1
            with lock:
                done[0] += 1

    t0 = time.perf_counter()
    shares = [executions // threads + (1 if i < executions % threads else 0) for i in range(threads)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(worker, n) for n in shares]:
            future.result()
    elapsed = time.perf_counter() - t0
    time.sleep(1.0)  # let log/metric batches land
    after = proc.memory_info().rss
    return {
        "rss_growth_mb": (after - before) / 2**20,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "rss_executions": done[0],
        "rss_failed_executions": failed[0],
        "rss_elapsed_s": elapsed,
        "executions_per_s": done[0] / elapsed,
    }


def run(endpoint_url: str, pid: int, sample: int, warmup: int, executions: int, threads: int) -> dict[str, float | str]:
    function_name = deploy_trivial(endpoint_url)
    sfn, _ = _clients(endpoint_url)
    arn = create_chain(sfn, function_name)
    results: dict[str, float | str] = dict(probe_conditions(endpoint_url))
    results.update(bench_overhead(endpoint_url, function_name, arn, sample, warmup))
    if executions:
        results.update(bench_rss(endpoint_url, pid, arn, executions, threads))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=200, help="executions timed for the overhead (default 200)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--executions", type=int, default=5000, help="executions for rss_growth_mb (0 skips)")
    parser.add_argument("--threads", type=int, default=2, help="concurrent clients in the RSS phase")
    parser.add_argument("--endpoint", help="use a running local cloud (then --pid is required)")
    parser.add_argument("--pid", type=int)
    parser.add_argument("--options", default="{}", help="JSON options for the local cloud it starts")
    args = parser.parse_args(argv)
    if args.endpoint:
        if not args.pid:
            parser.error("--endpoint needs --pid (the local cloud's process id, for its RSS)")
        results = run(args.endpoint, args.pid, args.sample, args.warmup, args.executions, args.threads)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-sfn-") as work_dir:
            with LocalCloudProcess(port=0, work_dir=work_dir, options=json.loads(args.options)) as cloud:
                results = run(cloud.endpoint_url, cloud.pid, args.sample, args.warmup, args.executions, args.threads)
    results["load_avg_1m_at_end"] = os.getloadavg()[0]
    results["cpu_count"] = os.cpu_count() or 0
    for name, value in results.items():
        print(f"{name}: {value:.2f}" if isinstance(value, float) else f"{name}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
