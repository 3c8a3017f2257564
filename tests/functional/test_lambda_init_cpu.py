"""The init boost, as measured on AWS: init code runs on 2 vCPUs whatever the memory, the handler on its share.

A 128 MB function (0.072 of a core) burns the same CPU at module level and in its handler. With the
boost (``init_cpu="boost"``, the default of ``cpu_model="aws"``) its Init Duration stays near the CPU
its init used, far below what 0.072 of a core would take, while its handler's Duration still follows
the share. Bounds are one-sided where load could move them (a busy machine slows, never speeds up).
"""

from __future__ import annotations

import pytest
from conftest import deploy, invoke_json
from test_lambda_cpu import health
from test_lambda_invoke import report_of

from swlab.localcloud.cpu_share import host_cpu_share
from swlab.localcloud.server import LocalCloudError, LocalCloudProcess
from swlab.settings import client, load_settings

pytestmark = pytest.mark.functional
MEMORY_MB = 128
BURN_CPU_S = 0.2  # at 128 MB: ~2.8 s of wall at the memory share, ~0.2 s unthrottled


def cold_invoke(cloud: LocalCloudProcess) -> tuple[dict, dict]:
    """Deploy the probe at 128 MB and invoke it once (cold): → (its REPORT, its answer)."""
    settings = load_settings(env={}, target="local", endpoint_url=cloud.endpoint_url, region="us-east-1")
    lam, iam = client(settings, "lambda"), client(settings, "iam")
    name = deploy(
        lam,
        iam,
        "initburn",
        MemorySize=MEMORY_MB,
        Timeout=60,
        Environment={"Variables": {"BURN_CPU_S": str(BURN_CPU_S)}},
    )
    resp, out = invoke_json(lam, name, {}, LogType="Tail")
    assert "FunctionError" not in resp, out
    return report_of(resp), out


def test_init_runs_unthrottled_and_the_handler_at_its_memory_share(tmp_path):
    with LocalCloudProcess(port=0, work_dir=tmp_path / "cloud", options={"cpu_model": "aws"}) as cloud:
        body = health(cloud.endpoint_url)
        assert body["init_cpu"] == "boost"
        if body["cpu_share_mechanism"] == "off":
            pytest.skip("no CPU share mechanism works here")
        report, out = cold_invoke(cloud)
    share = host_cpu_share(MEMORY_MB)
    init_at_share_ms = out["init_cpu_s"] / share * 1000  # the init's CPU at 0.072 of a core
    assert report["init_duration_ms"] is not None, report
    assert report["init_duration_ms"] < 0.4 * init_at_share_ms, (report, out)
    handler_at_share_ms = out["handler_cpu_s"] / share * 1000
    assert report["duration_ms"] > 0.6 * handler_at_share_ms, (report, out)  # the handler still gets its share
    assert out["handler_wall_s"] > 3 * out["init_burn_wall_s"], out  # same CPU work, much slower in the handler


def test_init_cpu_memory_throttles_the_init_too(tmp_path):
    options = {"cpu_model": "aws", "init_cpu": "memory"}
    with LocalCloudProcess(port=0, work_dir=tmp_path / "cloud", options=options) as cloud:
        body = health(cloud.endpoint_url)
        assert body["init_cpu"] == "memory"
        if body["cpu_share_mechanism"] == "off":
            pytest.skip("no CPU share mechanism works here")
        report, out = cold_invoke(cloud)
    init_burn_at_share_s = out["init_burn_cpu_s"] / host_cpu_share(MEMORY_MB)
    assert out["init_burn_wall_s"] > 0.6 * init_burn_at_share_s, out
    assert report["init_duration_ms"] > 0.6 * out["init_cpu_s"] / host_cpu_share(MEMORY_MB) * 1000, (report, out)


def test_a_bad_init_cpu_option_is_refused(tmp_path):
    cloud = LocalCloudProcess(port=0, work_dir=tmp_path / "cloud", options={"init_cpu": "fast"})
    try:
        with pytest.raises(LocalCloudError, match="init_cpu must be one of boost, memory"):
            cloud.start(timeout_s=30)
    finally:
        cloud.stop()
