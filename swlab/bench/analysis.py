"""Benchmark of log parsing + cold/warm analysis on synthetic REPORT-line logs.

Timed: parse_log_events + cold_warm_table + summarize, after a 1,000-line warm-up (first-call
costs of pyarrow kernels are not per-line costs). Each size runs in a fresh child process so its peak RSS (``ru_maxrss``) is its own: the figure
includes the input events held in memory, i.e. what a notebook holding a run needs.
Prints one ``name: value`` line per figure.

What ``parse_1m_peak_mb`` is made of (1M REPORT lines, measured with mallinfo2/VmRSS in the child; the
bench gave 469 and 473 after this breakdown's changes, 529 before; runs differ by about 5 MB):
~115 MB interpreter, pandas and pyarrow after the warm-up; ~247 MB input: 228 MB of Arrow data (message
141 MB, log_stream 57 MB, function 22 MB as ``large_string``, timestamps 8 MB) and ~17 MB that building it
leaves in Python's allocator (pymalloc pools freed but not returned); ~95 MB result of its own (request_id
42 MB in pyarrow's jemalloc pool, six 8-byte columns 46 MB, cold, status and log_format a byte a row each,
error_type one shared all-null block of 0.5 MB; function, log_stream and end_time are views of the input);
~8 MB the glibc heap keeps of the pieces' freed scratch, and ~5 MB more while cold_warm_table and summarize
copy the durations (8 MB each, one after the other). The floor while input and result are both held is
thus ~455 MB with these dtypes; int32 memory columns would save ~5 MB more (measured) at the price of
silent overflow in e.g. ``memory_size_mb * 2**20``, so they stay int64.
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
