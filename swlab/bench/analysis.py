"""Benchmark of log parsing + cold/warm analysis on synthetic REPORT-line logs.

Timed: parse_log_events + cold_warm_table + summarize, after a 1,000-line warm-up (first-call
costs of pyarrow kernels are not per-line costs). Each size runs in a fresh child process so its peak RSS (``ru_maxrss``) is its own: the figure
includes the input events held in memory, i.e. what a notebook holding a run needs.
Prints one ``name: value`` line per figure.

What ``parse_1m_peak_mb`` is made of (1M REPORT lines, measured with mallinfo2/VmRSS in the child):
~115 MB interpreter, pandas and pyarrow after the warm-up; ~230 MB input (message 141 MB, log_stream
57 MB, function 22 MB as Arrow ``large_string``, timestamps 8 MB); ~140 MB result (request_id 44 MB,
seven 8-byte columns, two object columns, log_format 12 MB; function and log_stream are the input's
own); the rest is allocator slack and cold_warm_table's scratch (~10 MB). About 485 MB is therefore
the floor while input and result are both held, with these dtypes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from swlab.analysis.logs import parse_log_events
from swlab.analysis.stats import cold_warm_table, summarize
from swlab.bench.synthetic import report_events


def measure(n: int, with_start_end: bool) -> dict:
    """In this process: build ``n`` synthetic invocations, then time parse + cold/warm table."""
    parse_log_events(report_events(1000, with_start_end=with_start_end))  # warm-up: kernels, imports
    events = report_events(n, with_start_end=with_start_end)
    t0, c0 = time.perf_counter(), time.process_time()
    inv = parse_log_events(events)
    table = cold_warm_table(inv)
    summarize(inv["duration_ms"])
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(inv) == n and int(table["cold"].sum()) == (n + 99) // 100, "parse lost invocations"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": n, "events": len(events), "seconds": elapsed, "cpu_seconds": cpu, "peak_mb": peak_mb}


def _child(n: int, with_start_end: bool) -> dict:
    cmd = [sys.executable, "-m", "swlab.bench.analysis", "--child", str(n)]
    if with_start_end:
        cmd.append("--start-end")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument(
        "--start-end",
        action="store_true",
        help="also emit START/END lines (3 events per invocation) and report those figures",
    )
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.start_end)))
        return 0
    small, big = _child(100_000, False), _child(1_000_000, False)
    print(f"parse_100k_s: {small['seconds']:.2f}")
    print(f"parse_1m_s: {big['seconds']:.2f}")
    print(f"parse_1m_peak_mb: {big['peak_mb']:.0f}")
    print(f"parse_100k_cpu_s: {small['cpu_seconds']:.2f}")
    print(f"parse_1m_cpu_s: {big['cpu_seconds']:.2f}")
    print(f"parse_scaling_1m_over_100k: {big['seconds'] / small['seconds']:.1f}")
    print(f"parse_scaling_cpu_1m_over_100k: {big['cpu_seconds'] / small['cpu_seconds']:.1f}")
    print(f"load_average_1min: {os.getloadavg()[0]:.1f}")
    if args.start_end:
        mixed = _child(1_000_000, True)
        print(f"parse_1m_invocations_with_start_end_s: {mixed['seconds']:.2f}")
        print(f"parse_1m_invocations_with_start_end_cpu_s: {mixed['cpu_seconds']:.2f}")
        print(f"parse_1m_invocations_with_start_end_peak_mb: {mixed['peak_mb']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
