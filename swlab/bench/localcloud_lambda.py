"""Benchmark of the Lambda data plane: ``python -m swlab.bench.localcloud_lambda`` prints ``name: value`` lines.

* ``invoke_warm_p50_ms`` / ``invoke_warm_p99_ms`` — warm invoke round trip of a
  trivial handler through the local endpoint, raw HTTP/1.1 with keep-alive
  (what an HTTP client or the API Gateway data plane pays);
  ``invoke_warm_boto3_p50_ms`` — the same through boto3 (adds SigV4 signing and
  response parsing on the client side);
* ``invoke_throughput_per_s`` — sustained invokes per second, two client
  threads (keep-alive connections) on two warm environments;
* ``cold_init_p50_ms`` — Init Duration (spawn → first ``/next``) of the trivial
  handler, read back from the REPORT line; ``cold_invoke_p50_ms`` — the whole
  cold invoke round trip.

The probe is a 1,769 MB function (``PROBE_MEMORY_MB``), on a local cloud with the default
``cpu_model="aws"``. These figures measure the *platform's* overhead (HTTP, routing, the Runtime
API, spawning an environment), and their targets (issue 2: warm p50 <= 3 ms, p99 <= 15 ms,
throughput >= 300/s, cold init <= 150 ms) were set when every environment had the host's cores.
Since CPU follows memory, a 128 MB probe gets 0.07 of a core, so its cold init and tail measure
the CPU share AWS gives 128 MB, not the platform (2026-11-29, ``--quick``: cold init 320 ms at
load 0.5; 411 ms at 128 MB against 90 ms at 1,769 MB back to back at load 8.4). At 1,769 MB the
environment's share is one full core, which a single-threaded handler and its runtime client
never exceed, so the limiter does not slow the probe — yet it stays in the measured path (the
per-environment cgroup or ``sigstop`` bookkeeping is part of what a cold start costs here), which
``cpu_model="off"`` would have hidden. ``probe_memory_mb``, ``cpu_model`` and
``cpu_share_mechanism`` are printed with the figures. ``localcloud_sfn`` uses the same probe.

It starts its own local cloud (``--endpoint`` uses a running one instead).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import re
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
import zipfile
from typing import Any
from urllib.parse import urlsplit

from swlab.localcloud.cpu_share import FULL_VCPU_MB
from swlab.localcloud.server import LocalCloudProcess, health_of

TRIVIAL_HANDLER = "def handler(event, context):\n    return event\n"
PROBE_MEMORY_MB = FULL_VCPU_MB  # one full vCPU: the platform's overhead, not a CPU share (module docstring)
_INIT = re.compile(r"Init Duration: ([\d.]+) ms")


def trivial_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", TRIVIAL_HANDLER)
    return buf.getvalue()


def deploy_zip(endpoint_url: str, name: str, zip_bytes: bytes, memory_mb: int = 128, timeout_s: int = 10) -> str:
    """Create function ``name`` from ``zip_bytes`` on the local cloud (with a role of its own); returns ``name``."""
    import boto3

    kw = dict(
        endpoint_url=endpoint_url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    iam, lam = boto3.client("iam", **kw), boto3.client("lambda", **kw)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}
        ],
    }
    role = iam.create_role(RoleName=f"bench-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust))
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": zip_bytes},
        MemorySize=memory_mb,
        Timeout=timeout_s,
    )
    return name


def deploy_trivial(endpoint_url: str, memory_mb: int = PROBE_MEMORY_MB) -> str:
    return deploy_zip(endpoint_url, f"bench-trivial-{uuid.uuid4().hex[:8]}", trivial_zip(), memory_mb=memory_mb)


def probe_conditions(endpoint_url: str, memory_mb: int = PROBE_MEMORY_MB) -> dict[str, float | str]:
    """What the figures were measured under: the probe's memory size and the cloud's CPU model."""
    health = health_of(endpoint_url)
    return {
        "probe_memory_mb": float(memory_mb),
        "cpu_model": str(health.get("cpu_model", "unknown")),
        "cpu_share_mechanism": str(health.get("cpu_share_mechanism", "unknown")),
    }


class Invoker:
    """Raw HTTP/1.1 keep-alive invokes on one connection."""

    def __init__(self, endpoint_url: str, name: str) -> None:
        parts = urlsplit(endpoint_url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        self.path = f"/2015-03-31/functions/{name}/invocations"

    def invoke(self, payload: bytes = b"{}", tail: bool = False) -> tuple[int, dict, bytes]:
        headers = {"Content-Type": "application/json"}
        if tail:
            headers["X-Amz-Log-Type"] = "Tail"
        self.conn.request("POST", self.path, payload, headers)
        resp = self.conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def bench_warm(endpoint_url: str, name: str, n: int) -> dict[str, float]:
    inv = Invoker(endpoint_url, name)
    for _ in range(50):
        inv.invoke()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, _, _ = inv.invoke()
        samples.append((time.perf_counter() - t0) * 1000)
        assert status == 200
    return {"invoke_warm_p50_ms": percentile(samples, 0.5), "invoke_warm_p99_ms": percentile(samples, 0.99)}


def bench_boto3(endpoint_url: str, name: str, n: int) -> dict[str, float]:
    import boto3

    lam = boto3.client(
        "lambda",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for _ in range(20):
        lam.invoke(FunctionName=name, Payload=b"{}")
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()
        samples.append((time.perf_counter() - t0) * 1000)
    return {"invoke_warm_boto3_p50_ms": percentile(samples, 0.5)}


def bench_throughput(endpoint_url: str, name: str, seconds: float, threads: int = 2) -> dict[str, float]:
    invokers = [Invoker(endpoint_url, name) for _ in range(threads)]
    barrier = threading.Barrier(threads)
    for inv in invokers:  # make sure `threads` environments are warm
        threading.Thread(target=lambda i=inv: (barrier.wait(), i.invoke(b'{"sleep": 0}'))).start()
    time.sleep(1.0)
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def run(k: int) -> None:
        while time.perf_counter() < stop:
            status, _, _ = invokers[k].invoke()
            counts[k] += status == 200

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"invoke_throughput_per_s": sum(counts) / (time.perf_counter() - t0)}


def bench_cold(endpoint_url: str, name: str, n: int) -> dict[str, float]:
    inv = Invoker(endpoint_url, name)
    inits, totals = [], []
    for _ in range(n):
        req = urllib.request.Request(f"{endpoint_url}/_localcloud/lambda?FunctionName={name}", method="DELETE")
        urllib.request.urlopen(req, timeout=10).read()
        t0 = time.perf_counter()
        status, headers, _ = inv.invoke(tail=True)
        totals.append((time.perf_counter() - t0) * 1000)
        tail = base64.b64decode(headers["X-Amz-Log-Result"]).decode()
        match = _INIT.search(tail)
        assert status == 200 and match, tail
        inits.append(float(match.group(1)))
    return {"cold_init_p50_ms": statistics.median(inits), "cold_invoke_p50_ms": statistics.median(totals)}


def run(
    endpoint_url: str,
    warm_n: int = 3000,
    boto3_n: int = 500,
    seconds: float = 10.0,
    cold_n: int = 30,
    memory_mb: int = PROBE_MEMORY_MB,
) -> dict[str, float | str]:
    name = deploy_trivial(endpoint_url, memory_mb)
    results: dict[str, float | str] = dict(probe_conditions(endpoint_url, memory_mb))
    results.update(bench_warm(endpoint_url, name, warm_n))
    results.update(bench_boto3(endpoint_url, name, boto3_n))
    results.update(bench_throughput(endpoint_url, name, seconds))
    results.update(bench_cold(endpoint_url, name, cold_n))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="a running local cloud (default: start one)")
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument(
        "--memory", type=int, default=PROBE_MEMORY_MB, help=f"the probe's memory size in MB (default {PROBE_MEMORY_MB})"
    )
    args = parser.parse_args(argv)
    sizes: dict[str, Any] = dict(warm_n=300, boto3_n=50, seconds=2.0, cold_n=5) if args.quick else {}
    sizes["memory_mb"] = args.memory
    if args.endpoint:
        results = run(args.endpoint, **sizes)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-lambda-") as tmp:
            with LocalCloudProcess(port=0, work_dir=tmp, options={"idle_ttl_s": 600}) as cloud:
                results = run(cloud.endpoint_url, **sizes)
    for key, value in results.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
