"""Execution environments over time: cold then warm, new code/config, reaping, forced cold starts, shutdown."""

from __future__ import annotations

import json
import urllib.request

import psutil
import pytest
from conftest import deploy, environments, invoke_json, wait_for
from test_lambda_invoke import report_of

from swlab.localcloud.server import LocalCloudProcess
from swlab.settings import client, load_settings

pytestmark = pytest.mark.functional


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_cold_then_warm_in_the_same_environment(aws, deploy_probe, local_cloud):
    name = deploy_probe("echo")
    reports, pids = [], set()
    for i in range(3):
        resp, out = invoke_json(aws("lambda"), name, {"i": i}, LogType="Tail")
        reports.append(report_of(resp))
        pids.add(out["pid"])
        assert out["cold"] is (i == 0)
    assert [r["cold"] for r in reports] == [True, False, False]
    cold = reports[0]
    assert 0 < cold["init_duration_ms"] < 5000
    # The INIT phase is billed: billed = ceil(duration + init) on the cold start, ceil(duration) warm.
    assert cold["billed_duration_ms"] >= cold["init_duration_ms"] + cold["duration_ms"]
    for warm in reports[1:]:
        assert warm["init_duration_ms"] is None and warm["billed_duration_ms"] >= warm["duration_ms"]
        assert warm["billed_duration_ms"] <= warm["duration_ms"] + 1
        assert warm["memory_size_mb"] == 128 and 5 < warm["max_memory_used_mb"] < 128
    assert len(pids) == 1 and len(environments(local_cloud.endpoint_url, name)) == 1


def test_updating_code_or_configuration_starts_new_environments(aws, deploy_probe, local_cloud):
    name = deploy_probe("echo", Environment={"Variables": {"PROBE_VAR": "v1"}})
    _, first = invoke_json(aws("lambda"), name)
    aws("lambda").update_function_configuration(FunctionName=name, Environment={"Variables": {"PROBE_VAR": "v2"}})
    resp, second = invoke_json(aws("lambda"), name, LogType="Tail")
    assert second["env"]["PROBE_VAR"] == "v2" and second["cold"] and report_of(resp)["cold"]
    assert wait_for(lambda: gone(first["pid"]), 5), "the old environment was retired"
    from conftest import zip_probe

    aws("lambda").update_function_code(FunctionName=name, ZipFile=zip_probe("raise"))
    resp, out = invoke_json(aws("lambda"), name)
    assert out["errorType"] == "ProbeError"  # the new code runs
    assert wait_for(lambda: gone(second["pid"]), 5)


def test_admin_endpoint_forces_cold_starts(aws, deploy_probe, local_cloud):
    name = deploy_probe("echo")
    _, first = invoke_json(aws("lambda"), name)
    req = urllib.request.Request(f"{local_cloud.endpoint_url}/_localcloud/lambda?FunctionName={name}", method="DELETE")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read()) == {"ended": 1}
    _, second = invoke_json(aws("lambda"), name)
    assert second["cold"] and second["pid"] != first["pid"]
    assert wait_for(lambda: gone(first["pid"]), 5)


@pytest.fixture(scope="module")
def small_cloud(tmp_path_factory):
    """A second local cloud: short idle TTL and a tiny account concurrency limit."""
    cloud = LocalCloudProcess(
        port=0,
        work_dir=tmp_path_factory.mktemp("small-cloud"),
        options={"idle_ttl_s": 1.5, "account_concurrency": 3, "log_events_per_group": 40},
    )
    cloud.start()
    yield cloud
    cloud.stop()


def small_clients(cloud):
    settings = load_settings(env={}, target="local", endpoint_url=cloud.endpoint_url, region="us-east-1")
    config = {"retries": {"total_max_attempts": 1}, "read_timeout": 30}
    return client(settings, "lambda", **config), client(settings, "iam")


def test_idle_environments_are_reaped_after_the_ttl(small_cloud):
    lam, iam = small_clients(small_cloud)
    name = deploy(lam, iam, "echo")
    _, first = invoke_json(lam, name)
    _, again = invoke_json(lam, name)
    assert not again["cold"] and again["pid"] == first["pid"]  # within the TTL: warm
    assert wait_for(lambda: environments(small_cloud.endpoint_url, name) == [], 5)
    assert wait_for(lambda: gone(first["pid"]), 5)
    resp, later = invoke_json(lam, name, LogType="Tail")
    assert later["cold"] and report_of(resp)["cold"]


def test_account_concurrency_limit_throttles_unreserved_functions(small_cloud):
    from concurrent.futures import ThreadPoolExecutor

    lam, iam = small_clients(small_cloud)
    name = deploy(lam, iam, "sleep", Timeout=10)

    def call(_):
        try:
            return invoke_json(lam, name, {"seconds": 1.0})[0]["StatusCode"]
        except lam.exceptions.TooManyRequestsException as exc:
            return exc.response["Reason"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    assert results.count(200) >= 1 and results.count(200) <= 3
    assert "ConcurrentInvocationLimitExceeded" in results
    assert set(results) <= {200, "ConcurrentInvocationLimitExceeded"}


def test_log_groups_keep_a_bounded_number_of_events(small_cloud):
    from conftest import log_messages

    lam, iam = small_clients(small_cloud)
    settings = load_settings(env={}, target="local", endpoint_url=small_cloud.endpoint_url, region="us-east-1")
    logs = client(settings, "logs")
    name = deploy(lam, iam, "echo")
    last = [invoke_json(lam, name, {"i": i})[0]["ResponseMetadata"]["RequestId"] for i in range(25)][-1]
    events = wait_for(
        lambda: (lambda ev: ev if any(last in e["message"] and "REPORT" in e["message"] for e in ev) else None)(
            log_messages(logs, name)
        ),
        10,
    )
    assert events and 30 <= len(events) <= 40  # 25 invokes wrote 100 events; the oldest were dropped


def test_shutdown_leaves_no_process_behind(tmp_path):
    cloud = LocalCloudProcess(port=0, work_dir=tmp_path / "cloud", options={"idle_ttl_s": 300}).start()
    try:
        lam, iam = small_clients(cloud)
        names = [deploy(lam, iam, "echo"), deploy(lam, iam, "echo"), deploy(lam, iam, "sleep", Timeout=30)]
        for name in names[:2]:
            invoke_json(lam, name)
        from concurrent.futures import ThreadPoolExecutor

        busy = ThreadPoolExecutor(1).submit(invoke_json, lam, names[2], {"seconds": 30})
        # an environment is listed as soon as it is being created; its pid once its process has started
        assert wait_for(lambda: len([e for e in environments(cloud.endpoint_url) if e["pid"]]) == 3, 30)
        pids = [e["pid"] for e in environments(cloud.endpoint_url)]
        server = psutil.Process(cloud.pid)
        tree = {p.pid for p in server.children(recursive=True)}
        assert set(pids) <= tree
    finally:
        cloud.stop()
    assert all(gone(pid) for pid in tree | {server.pid})
    try:  # the in-flight invoke was cut off (answered as an error, or the connection closed), not left hanging
        resp, _ = busy.result(timeout=10)
        assert resp["FunctionError"] == "Unhandled"
    except Exception as exc:  # noqa: BLE001
        assert not isinstance(exc, TimeoutError)


def test_forcing_cold_starts_of_one_function_leaves_the_others_warm(aws, deploy_probe, local_cloud):
    lam = aws("lambda")
    target, other = deploy_probe("echo"), deploy_probe("echo")
    _, target_first = invoke_json(lam, target)
    _, other_first = invoke_json(lam, other)
    req = urllib.request.Request(
        f"{local_cloud.endpoint_url}/_localcloud/lambda?FunctionName={target}", method="DELETE"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read()) == {"ended": 1}
    _, other_again = invoke_json(lam, other)
    assert not other_again["cold"] and other_again["pid"] == other_first["pid"]  # still warm, and reused
    assert [e["pid"] for e in environments(local_cloud.endpoint_url, other)] == [other_first["pid"]]
    assert wait_for(lambda: gone(target_first["pid"]), 5)


def test_deleting_a_function_ends_its_environments(aws, deploy_probe, local_cloud):
    lam = aws("lambda")
    name = deploy_probe("echo")
    _, first = invoke_json(lam, name)
    lam.delete_function(FunctionName=name)
    assert wait_for(lambda: gone(first["pid"]), 10)
    assert wait_for(lambda: environments(local_cloud.endpoint_url, name) == [], 5)
