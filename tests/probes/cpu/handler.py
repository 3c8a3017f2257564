"""Burn CPU: event["n"] loop iterations (default 2,000,000, ~0.15 s of one core); no I/O, no sleep."""

import time


def handler(event, context):
    n = int(event.get("n", 2_000_000))
    t0, c0 = time.perf_counter(), time.process_time()
    total = 0
    for i in range(n):
        total += i * i % 7
    return {"n": n, "total": total, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
