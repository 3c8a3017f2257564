"""Benchmark of S3 through the local cloud: ``python -m swlab.bench.localcloud_s3`` prints ``name: value`` lines.

* ``s3_put_128k_p50_ms`` (target <= 4) / ``s3_get_128k_p50_ms`` (target <= 3) — the round trip of
  a ``PutObject`` / ``GetObject`` of a 128 KiB object through boto3 with its default configuration
  (what the image steps pay per image: one GET of the input, one PUT of the output), keep-alive
  connection, warm client; ``_p95_ms`` beside each.

It starts its own local cloud (``--endpoint`` uses a running one instead).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from typing import Any

from swlab.localcloud.server import LocalCloudProcess

SIZE = 128 * 1024


def _client(endpoint_url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(endpoint_url: str, n: int = 300, warmup: int = 30) -> dict[str, float]:
    s3 = _client(endpoint_url)
    bucket = f"bench-s3-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(SIZE)  # incompressible, like a PNG
    puts: list[float] = []
    gets: list[float] = []
    try:
        for i in range(warmup + n):
            key = f"processed/{i % 20}/step.png"  # overwrites, as repeated runs of a step do
            t0 = time.perf_counter()
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/png")
            t1 = time.perf_counter()
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            t2 = time.perf_counter()
            if len(data) != SIZE:
                raise RuntimeError(f"GetObject returned {len(data)} bytes, expected {SIZE}")
            if i >= warmup:
                puts.append((t1 - t0) * 1000)
                gets.append((t2 - t1) * 1000)
    finally:
        for i in range(20):
            s3.delete_object(Bucket=bucket, Key=f"processed/{i}/step.png")
        s3.delete_bucket(Bucket=bucket)
    return {
        "s3_put_128k_p50_ms": statistics.median(puts),
        "s3_put_128k_p95_ms": _p(puts, 0.95),
        "s3_get_128k_p50_ms": statistics.median(gets),
        "s3_get_128k_p95_ms": _p(gets, 0.95),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="a running local cloud (default: start one)")
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    args = parser.parse_args(argv)
    n = 50 if args.quick else 300
    if args.endpoint:
        results = run(args.endpoint, n=n)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
            with LocalCloudProcess(port=0, work_dir=tmp) as cloud:
                results = run(cloud.endpoint_url, n=n)
    for key, value in results.items():
        print(f"{key}: {value:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
