"""JMeter's distributed mode: two remote engines on loopback driven by one client (``-R``).

The client sends the lab's plan and properties to both engines; each runs it at half the rate,
their samples come back into the client's one JTL and dashboard. Every RMI socket is bound to
127.0.0.1 only (RMI SSL off: nothing leaves the machine), and the engines end with the test.
"""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from swlab.loadtest.install import JMeterSetupError, ensure_jmeter
from swlab.loadtest.jtl import parse_jtl
from swlab.loadtest.plans import LoadProfile, write_data_file
from swlab.loadtest.remote import start_engines, stop_engines
from swlab.loadtest.runner import run_workflow
from swlab.loadtest.stub import StubApi

pytestmark = pytest.mark.jmeter


@pytest.fixture(scope="module")
def install():
    try:
        return ensure_jmeter()
    except JMeterSetupError as exc:
        pytest.skip(str(exc))


def _listeners(pid):
    out = []
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        out += [
            c
            for c in proc.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN or c.type == socket.SOCK_DGRAM
        ]
    return out


def test_two_loopback_engines_share_the_rate_and_return_every_sample(install, tmp_path):
    rows = [f"http://127.0.0.1/images/{i:03d}.jpg" for i in range(8)]
    data = write_data_file(tmp_path / "urls.csv", rows, "image_url")
    engines = start_engines(install, 2, tmp_path / "engines")
    try:
        for engine in engines:
            listening = _listeners(engine.process.pid)
            assert listening, "the engine listens on nothing"
            assert all(c.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1") for c in listening), listening
        client_sockets = []

        def watch(progress):
            for child in psutil.Process().children(recursive=True):
                if child.name() == "java":
                    client_sockets.extend(_listeners(child.pid))

        with StubApi() as stub:
            run = run_workflow(
                "wf1",
                stub.endpoint(),
                data,
                tmp_path / "run",
                LoadProfile(rate_per_s=4, duration_s=4, timeout_ms=2000),
                install=install,
                remote=[e.address for e in engines],
                progress=watch,
            )
        df = parse_jtl(run.jtl)
        assert run.properties["rate"] == "2"  # 4 requests/s split between the two engines
        assert run.samples_planned == 16 and len(df) == 16 and len(stub.requests) == 16
        assert df["success"].all(), df.loc[~df["success"], "failureMessage"].tolist()
        # each engine ran the whole plan: every row twice
        assert sorted(df["row_index"]) == sorted(list(range(8)) * 2)
        assert run.dashboard.is_file()
        assert client_sockets and all(c.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1") for c in client_sockets)
        logs = [(tmp_path / "engines" / f"engine-{e.port}.log").read_text() for e in engines]
        assert all("Starting the test" in log or "Running the test" in log for log in logs), logs[0][-2000:]
    finally:
        stop_engines(engines)
    assert all(e.process.poll() is not None for e in engines)


def test_jmeter_run_takes_any_jmx_and_drives_engines(install, tmp_path):
    """``scripts/jmeter-run`` with a plan of the user's own (here a copy of the lab's, renamed) and -J properties."""
    root = Path(__file__).resolve().parents[2]
    plan = shutil.copy(root / "jmeter" / "ingest.jmx", tmp_path / "my-plan.jmx")
    data = write_data_file(tmp_path / "urls.csv", [f"http://127.0.0.1/{i}.jpg" for i in range(4)], "image_url")
    with StubApi() as stub:
        props = {
            "protocol": "http",
            "host": "127.0.0.1",
            "port": stub.port,
            "base_path": stub.base_path,
            "api_key": stub.api_key,
            "data_file": data,
        }
        done = subprocess.run(
            [
                sys.executable,
                str(root / "scripts" / "jmeter-run"),
                str(plan),
                "--rate",
                "4",
                "--duration",
                "2",
                "--timeout-ms",
                "2000",
                "--engines",
                "2",
                "--run-dir",
                str(tmp_path / "run"),
                "--no-download",
                *(f"-J{k}={v}" for k, v in props.items()),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert out["samples"] == "8" and out["errors"] == "0"
    assert Path(out["dashboard"]).is_file() and len(stub.requests) == 8
