"""CPU follows memory, as on Lambda: a CPU-bound function at 256 MB runs much longer than at 1,769 MB."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from conftest import deploy, invoke_json
from test_lambda_invoke import report_of

from swlab.localcloud.server import LocalCloudProcess
from swlab.settings import client, load_settings

pytestmark = pytest.mark.functional
MECHANISMS = {"cgroup-v1", "cgroup-v2", "sigstop"}


def health(endpoint_url: str) -> dict:
    with urllib.request.urlopen(endpoint_url + "/_localcloud/health", timeout=10) as resp:
        return json.loads(resp.read())


def duration_ms(lam, name: str, n: int) -> float:
    resp, out = invoke_json(lam, name, {"n": n}, LogType="Tail")
    assert "FunctionError" not in resp, out
    return report_of(resp)["duration_ms"]


@pytest.fixture(scope="module")
def default_cloud(tmp_path_factory):
    """A local cloud with its default options (the test session's shared one runs without CPU quotas)."""
    with LocalCloudProcess(port=0, work_dir=tmp_path_factory.mktemp("cpu-cloud")) as cloud:
        yield cloud


def test_health_shows_the_cpu_model_and_its_mechanism(default_cloud):
    body = health(default_cloud.endpoint_url)
    assert body["cpu_model"] == "aws" and body["cpu_share_mechanism"] in MECHANISMS


def test_a_256_mb_function_runs_cpu_bound_code_much_slower_than_1769_mb(default_cloud):
    settings = load_settings(env={}, target="local", endpoint_url=default_cloud.endpoint_url, region="us-east-1")
    lam, iam = client(settings, "lambda"), client(settings, "iam")
    small = deploy(lam, iam, "cpu", MemorySize=256, Timeout=60)
    full = deploy(lam, iam, "cpu", MemorySize=1769, Timeout=60)
    for name in (small, full):  # cold starts out of the way
        duration_ms(lam, name, 1000)
    n = 2_000_000
    full_ms = min(duration_ms(lam, full, n) for _ in range(2))
    small_ms = min(duration_ms(lam, small, n) for _ in range(2))
    # Expected ratio 1769/256 = 6.9; a busy host slows the 1,769 MB one too, so only a generous lower bound.
    assert small_ms / full_ms > 2.5, (small_ms, full_ms)


def test_cpu_model_off_runs_unlimited_and_leaves_no_cgroup(tmp_path):
    with LocalCloudProcess(port=0, work_dir=tmp_path / "off", options={"cpu_model": "off"}) as cloud:
        body = health(cloud.endpoint_url)
        assert body["cpu_model"] == "off" and body["cpu_share_mechanism"] == "off"
    cloud = LocalCloudProcess(port=0, work_dir=tmp_path / "aws").start()
    pid = cloud.pid
    try:
        mechanism = health(cloud.endpoint_url)["cpu_share_mechanism"]
        assert mechanism in MECHANISMS
    finally:
        cloud.stop()
    if mechanism == "cgroup-v1":
        assert not (Path("/sys/fs/cgroup/cpu") / f"swlab-localcloud-{pid}").exists()
