"""The local-cloud benchmarks measure what they say: the Lambda and Step Functions probes at one
full vCPU (1,769 MB), their conditions printed with the figures, and the S3 benchmark's server CPU."""

from __future__ import annotations

import pytest

from swlab.bench import localcloud_lambda, localcloud_s3
from swlab.localcloud.server import health_of

pytestmark = pytest.mark.functional


def test_lambda_benchmark_probes_at_one_full_vcpu_and_says_so(local_cloud, aws):
    results = localcloud_lambda.run(local_cloud.endpoint_url, warm_n=5, boto3_n=2, seconds=0.2, cold_n=1)
    assert results["probe_memory_mb"] == 1769.0
    health = health_of(local_cloud.endpoint_url)  # the session's cloud runs with cpu_model "off"
    assert (results["cpu_model"], results["cpu_share_mechanism"]) == (
        health["cpu_model"],
        health["cpu_share_mechanism"],
    )
    probes = [
        f
        for page in aws("lambda").get_paginator("list_functions").paginate()
        for f in page["Functions"]
        if f["FunctionName"].startswith("bench-trivial-")
    ]
    assert probes and all(f["MemorySize"] == 1769 for f in probes)
    assert results["invoke_warm_p50_ms"] > 0 and results["cold_init_p50_ms"] > 0


def test_s3_benchmark_reports_the_servers_cpu_per_request(local_cloud):
    with_pid = localcloud_s3.run(local_cloud.endpoint_url, n=5, warmup=1, pid=local_cloud.pid)
    assert with_pid["s3_server_cpu_ms_per_request"] > 0
    without = localcloud_s3.run(local_cloud.endpoint_url, n=2, warmup=1)
    assert "s3_server_cpu_ms_per_request" not in without and without["s3_get_128k_p50_ms"] > 0
