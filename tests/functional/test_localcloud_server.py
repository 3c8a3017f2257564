"""The local cloud as users run it: ``scripts/localcloud start|status|stop`` with
``--port 0``, a health endpoint, loopback-only listening sockets, a log file, no
process left behind after stop, and the AWS CLI working against it."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path

import psutil
import pytest

from swlab.settings import client, load_settings

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "localcloud"
HANDLER = "def handler(event, context):\n    return {'pong': event}\n"


def _script(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """A local cloud started by the script; stopped by the test below (or at the end, if it failed)."""
    work_dir = tmp_path_factory.mktemp("scripted")
    out = _script("start", "--port", "0", "--work-dir", str(work_dir))
    endpoint = out.stdout.strip().splitlines()[-1]
    state = json.loads(_script("status", "--work-dir", str(work_dir)).stdout)
    yield {"endpoint": endpoint, "state": state, "work_dir": work_dir}
    _script("stop", "--work-dir", str(work_dir), check=False)


def test_start_with_port_zero_reports_the_chosen_port(started):
    state = started["state"]
    assert started["endpoint"] == state["endpoint"] == f"http://127.0.0.1:{state['port']}"
    assert state["port"] > 0 and state["healthy"] is True


def test_health_endpoint(started):
    with urllib.request.urlopen(started["endpoint"] + "/_localcloud/health", timeout=5) as resp:
        health = json.loads(resp.read())
    assert health["status"] == "ok" and health["pid"] == started["state"]["pid"]
    assert {"apigateway"} <= set(health["routes"])


def test_listens_on_loopback_only(started):
    sockets = [
        c
        for c in psutil.Process(started["state"]["pid"]).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert sockets, "no listening socket found"
    assert {c.laddr.ip for c in sockets} == {"127.0.0.1"}


def test_logs_to_a_file(started):
    log = (started["work_dir"] / "localcloud.log").read_text()
    assert "listening on " + started["endpoint"] in log


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed (pip/OS package 'awscli')")
def test_aws_cli_works_against_the_endpoint(started, tmp_path):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }

    def run(*args, **extra):
        return subprocess.run(["aws", *args], capture_output=True, text=True, timeout=120, env={**env, **extra})

    made = run("--endpoint-url", started["endpoint"], "s3", "mb", "s3://cli-bucket")
    assert made.returncode == 0, made.stderr
    listed = run("s3api", "list-buckets", AWS_ENDPOINT_URL=started["endpoint"])  # endpoint from the environment
    assert listed.returncode == 0, listed.stderr
    assert "cli-bucket" in [b["Name"] for b in json.loads(listed.stdout)["Buckets"]]
    identity = run("--endpoint-url", started["endpoint"], "sts", "get-caller-identity")
    assert identity.returncode == 0 and json.loads(identity.stdout)["Account"] == "123456789012"


def test_stop_ends_the_server_and_every_lambda_environment(started):
    settings = load_settings(env={}, endpoint_url=started["endpoint"])
    lam, iam = client(settings, "lambda"), client(settings, "iam")
    role = iam.create_role(RoleName="server-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", HANDLER)
    lam.create_function(
        FunctionName="pinger",
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": buf.getvalue()},
    )
    resp = lam.invoke(FunctionName="pinger", Payload=b'"hi"')
    assert json.loads(resp["Payload"].read()) == {"pong": "hi"}

    server = psutil.Process(started["state"]["pid"])
    children = server.children(recursive=True)
    assert children, "the invoke should have left a warm environment running"
    out = _script("stop", "--work-dir", str(started["work_dir"]))
    assert out.returncode == 0
    gone, alive = psutil.wait_procs([server, *children], timeout=10)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
    assert _script("status", "--work-dir", str(started["work_dir"]), check=False).returncode == 1
    time.sleep(0.2)
    with pytest.raises(OSError):
        urllib.request.urlopen(started["endpoint"] + "/_localcloud/health", timeout=2)
