"""Benchmark of CPU following memory: ``python -m swlab.bench.localcloud_cpu`` prints ``name: value`` lines.

A CPU-bound function (a fixed number of loop iterations) at 256, 512, 1,024, 1,769 and 3,538 MB.
Its warm Duration (REPORT line) at each size is compared with the one at 1,769 MB: the expected
ratio is the inverse of the share ratio, the share being AWS's (memory / 1,769 MB) capped by the
vCPUs AWS shows and the host's cores — and a single-threaded loop never uses more than one core,
so above 1,769 MB the expected ratio is 1.

* ``cpu_share_max_error_pct`` — the largest deviation, in %, of a measured ratio from its expected
  one (target <= 15);
* ``cpu_share_ratio_<MB>`` — each measured ratio (Duration at MB / Duration at 1,769 MB);
* ``cpu_share_mechanism`` — how the local cloud enforces the share (cgroup-v1, cgroup-v2, sigstop, off).

It needs a quiet machine: the ratios assume the 1,769 MB reference gets a whole core. Measured
2026-11-29 on this project's 2-core machine at load average 8.5-10 (other agents' work): the
reference took 420 ms for 3 M iterations (146 ms for the quick run's 1 M), so the ratios shrank
(3.24 at 256 MB instead of 6.91) and ``cpu_share_max_error_pct`` read 53-55 %, against 6.73 at load
0.5. Read it with the load average the script prints.

It starts its own local cloud (``--endpoint`` uses a running one instead).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import statistics
import tempfile
import urllib.request
import uuid
import zipfile

from swlab.bench.localcloud_lambda import Invoker, deploy_zip
from swlab.localcloud.cpu_share import FULL_VCPU_MB, host_cpu_share
from swlab.localcloud.server import LocalCloudProcess

SIZES_MB = (256, 512, 1024, 1769, 3538)
CPU_HANDLER = """import time

def handler(event, context):
    total = 0
    for i in range(int(event["n"])):
        total += i * i % 7
    return {"total": total}
"""
_DURATION = re.compile(r"\tDuration: ([\d.]+) ms")


def deploy_cpu(endpoint_url: str, memory_mb: int) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", CPU_HANDLER)
    name = f"bench-cpu-{memory_mb}-{uuid.uuid4().hex[:6]}"
    return deploy_zip(endpoint_url, name, buf.getvalue(), memory_mb=memory_mb, timeout_s=120)


def warm_duration_ms(endpoint_url: str, name: str, n: int, repeats: int) -> float:
    """Median Duration (REPORT line) of ``repeats`` warm invokes of ``n`` iterations."""
    inv = Invoker(endpoint_url, name)
    inv.invoke(json.dumps({"n": 1000}).encode())  # the cold start
    samples = []
    for _ in range(repeats):
        status, headers, body = inv.invoke(json.dumps({"n": n}).encode(), tail=True)
        tail = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
        match = _DURATION.search(tail)
        assert status == 200 and match and "X-Amz-Function-Error" not in headers, (body, tail)
        samples.append(float(match.group(1)))
    return statistics.median(samples)


def expected_ratio(memory_mb: int) -> float:
    """Duration at ``memory_mb`` over Duration at 1,769 MB, for single-threaded CPU-bound code."""
    return min(1.0, host_cpu_share(FULL_VCPU_MB)) / min(1.0, host_cpu_share(memory_mb))


def run(endpoint_url: str, n: int = 3_000_000, repeats: int = 3) -> dict[str, float | str]:
    durations = {mb: warm_duration_ms(endpoint_url, deploy_cpu(endpoint_url, mb), n, repeats) for mb in SIZES_MB}
    base = durations[FULL_VCPU_MB]
    results: dict[str, float | str] = {}
    errors = []
    for mb in SIZES_MB:
        ratio = durations[mb] / base
        results[f"cpu_share_ratio_{mb}"] = ratio
        errors.append(abs(ratio / expected_ratio(mb) - 1) * 100)
    with urllib.request.urlopen(endpoint_url + "/_localcloud/health", timeout=10) as resp:
        mechanism = json.loads(resp.read()).get("cpu_share_mechanism", "unknown")
    results["cpu_share_duration_1769_ms"] = base
    results["cpu_share_max_error_pct"] = max(errors)
    results["cpu_share_mechanism"] = mechanism
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="a running local cloud (default: start one)")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter samples (a smoke run)")
    args = parser.parse_args(argv)
    sizes = dict(n=1_000_000, repeats=1) if args.quick else {}
    if args.endpoint:
        results = run(args.endpoint, **sizes)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
            with LocalCloudProcess(port=0, work_dir=tmp, options={"idle_ttl_s": 600}) as cloud:
                results = run(cloud.endpoint_url, **sizes)
    for key, value in results.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
