"""Burn ``BURN_CPU_S`` seconds of CPU at module level (the init phase) and again in each invocation.

The burn is measured in CPU time (``time.process_time``), so it is the same work whatever the share:
the wall time it takes shows the CPU the environment was given. ``init_cpu_s`` is all the CPU the
process used up to the end of its module-level code (the runtime's bootstrap included).
"""

import os
import time

BURN_CPU_S = float(os.environ.get("BURN_CPU_S", "0.2"))


def burn(cpu_s):
    """Spin until this process has used ``cpu_s`` more CPU seconds; → (wall s, CPU s) it took."""
    t0, c0 = time.perf_counter(), time.process_time()
    total = 0
    while time.process_time() - c0 < cpu_s:
        for i in range(10_000):
            total += i * i % 7
    return time.perf_counter() - t0, time.process_time() - c0


INIT_BURN_WALL_S, INIT_BURN_CPU_S = burn(BURN_CPU_S)
INIT_CPU_S = time.process_time()


def handler(event, context):
    wall_s, cpu_s = burn(float(event.get("cpu_s", BURN_CPU_S)))
    return {
        "init_cpu_s": INIT_CPU_S,
        "init_burn_wall_s": INIT_BURN_WALL_S,
        "init_burn_cpu_s": INIT_BURN_CPU_S,
        "handler_wall_s": wall_s,
        "handler_cpu_s": cpu_s,
    }
