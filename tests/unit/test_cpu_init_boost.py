"""The init boost: an environment's init phase gets INIT_VCPUS, its invocations its memory share.

No cgroup and no local cloud here: a recording limiter, plain directories standing in for cgroups,
and a stand-in runtime that only asks for its first invocation (the end of the init phase).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from swlab.localcloud import cpu_share
from swlab.localcloud.lambda_runtime.execution_environment import ExecutionEnvironment
from swlab.localcloud.lambda_runtime.output_pump import OutputPump
from swlab.localcloud.lambda_runtime.spec import RuntimeSpec

FIRST_NEXT = (
    "import os, urllib.request; "
    "urllib.request.urlopen('http://' + os.environ['AWS_LAMBDA_RUNTIME_API'] + '/2018-06-01/runtime/invocation/next')"
)


class RecordingLimit:
    def __init__(self, calls: list) -> None:
        self.calls = calls

    def set_share(self, share: float) -> None:
        self.calls.append(("set_share", share))

    def release(self) -> None:
        self.calls.append(("release",))


class RecordingLimiter:
    name = "recording"

    def __init__(self) -> None:
        self.calls: list = []

    def attach(self, pid: int, share: float, label: str) -> RecordingLimit:
        self.calls.append(("attach", share))
        return RecordingLimit(self.calls)

    def close(self) -> None:
        pass


def test_init_share_is_two_vcpus_whatever_the_memory_capped_by_the_host():
    assert cpu_share.INIT_VCPUS == 2
    assert cpu_share.init_cpu_share(128, host_cores=2) == 2
    assert cpu_share.init_cpu_share(128, host_cores=1) == 1
    assert cpu_share.init_cpu_share(128, host_cores=8) == 2
    assert cpu_share.init_cpu_share(10240, host_cores=8) == pytest.approx(10240 / 1769)  # never below the memory's
    assert cpu_share.init_cpu_share(10240, host_cores=2) == 2


@pytest.mark.parametrize("version", [1, 2])
def test_a_cgroup_limit_rewrites_its_quota_on_set_share(tmp_path, version):
    limiter = cpu_share.CgroupLimiter(tmp_path / "owner", version)
    limit = limiter.attach(12345, 2.0, "fn")
    group = next((tmp_path / "owner").glob("fn-*"))
    quota = (
        (lambda: (group / "cpu.cfs_quota_us").read_text())
        if version == 1
        else (lambda: (group / "cpu.max").read_text())
    )
    assert quota() == ("40000" if version == 1 else "40000 20000")
    limit.set_share(128 / 1769)
    assert quota() == ("1447" if version == 1 else "1447 20000")


def _spec(tmp_path: Path, python: Path) -> RuntimeSpec:
    code = tmp_path / "code"
    code.mkdir()
    return RuntimeSpec(
        name="probe",
        arn="arn:aws:lambda:us-east-1:123456789012:function:probe",
        account_id="123456789012",
        region="us-east-1",
        handler="handler.handler",
        runtime="python3.11",
        memory_mb=128,
        timeout_s=10,
        code_dir=code,
        user_env=(),
        isolated=False,
        signature=(),
        python=str(python),
    )


@pytest.mark.parametrize("boost", [True, False])
def test_the_first_next_drops_a_boosted_init_to_the_memory_share(tmp_path, boost):
    runtime = tmp_path / "python"  # a runtime that asks for its first invocation and waits
    runtime.write_text(f'#!/bin/sh\nexec {sys.executable} -c "{FIRST_NEXT}"\n')
    runtime.chmod(0o755)
    (tmp_path / "runtime").mkdir()
    limiter, pump = RecordingLimiter(), OutputPump()
    env = ExecutionEnvironment(
        _spec(tmp_path, runtime),
        str(runtime),
        tmp_path / "runtime",
        "http://127.0.0.1:1",
        lambda *a: None,
        limiter,
        boost,
    )
    try:
        env.start(pump)
        assert env.wait_ready(20), "the stand-in runtime never asked for work"
        memory = cpu_share.host_cpu_share(128)
        if boost:
            assert limiter.calls == [("attach", cpu_share.init_cpu_share(128)), ("set_share", memory)]
        else:
            assert limiter.calls == [("attach", memory)]
        env.end_init_boost()  # once only
        assert len(limiter.calls) == (2 if boost else 1)
    finally:
        env.kill("test")
        env.release()
        pump.stop()
