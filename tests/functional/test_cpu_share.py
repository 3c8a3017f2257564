"""CPU follows memory: each mechanism keeps a CPU-bound process group near its share.

Bounds are one-sided where the machine's load could move them (a busy machine gives a process
less CPU, never more), so the tests hold on a loaded 2-core machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swlab.localcloud import cpu_share

pytestmark = pytest.mark.functional

BURN = "while True: pass"


def _mechanisms() -> list[str]:
    names = ["sigstop"]
    if os.geteuid() == 0 and (cpu_share.CGROUP_V1_CPU / "cpu.cfs_quota_us").exists():
        names.insert(0, "cgroup-v1")
    return names


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_aws_share_and_visible_vcpus_follow_memory():
    assert cpu_share.aws_cpu_share(1769) == 1.0
    assert cpu_share.aws_cpu_share(3538) == 2.0
    assert round(cpu_share.aws_cpu_share(128), 3) == 0.072
    assert [cpu_share.aws_vcpus(m) for m in (128, 3008, 3009, 5307, 7076, 8845, 10240)] == [2, 2, 3, 3, 4, 5, 6]
    assert cpu_share.host_cpu_share(10240, host_cores=2) == 2  # capped by the host
    assert cpu_share.host_cpu_share(512, host_cores=2) == pytest.approx(512 / 1769)
    assert cpu_share.cfs_quota_us(0.01) == cpu_share.MIN_QUOTA_US
    with pytest.raises(ValueError, match="cpu_model"):
        cpu_share.choose_limiter("fast")


@pytest.mark.parametrize("mechanism", _mechanisms())
def test_a_cpu_bound_group_gets_about_its_share(mechanism):
    limiter = cpu_share.choose_limiter("aws", owner=f"swlab-test-{os.getpid()}", prefer=mechanism)
    assert limiter.name == mechanism
    proc = subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True)
    try:
        limit = limiter.attach(proc.pid, 0.25, "burner")
        time.sleep(0.3)  # let the interpreter start
        c0, t0 = _cpu_s(proc.pid), time.monotonic()
        time.sleep(2.0)
        used, wall = _cpu_s(proc.pid) - c0, time.monotonic() - t0
        assert 0.02 < used / wall < 0.25 * 1.5, f"{mechanism}: {used:.2f} CPU-s in {wall:.2f} s"
        limit.release()
        c1 = _cpu_s(proc.pid)
        time.sleep(1.0)
        # released: not stopped, and free of the quota (unless the machine is too busy to show it)
        assert Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T"
        assert _cpu_s(proc.pid) - c1 > 0
    finally:
        proc.kill()
        proc.wait()
        limiter.close()
    if mechanism.startswith("cgroup"):
        assert not (cpu_share.CGROUP_V1_CPU / f"swlab-test-{os.getpid()}").exists()


def test_off_limits_nothing():
    limiter = cpu_share.choose_limiter("off")
    assert limiter.name == "off"
    limiter.attach(os.getpid(), 0.1, "self").release()


@pytest.mark.parametrize("mechanism", _mechanisms())
def test_set_share_lowers_a_running_groups_share(mechanism):
    """The init boost's switch: a group attached with 2 cores gets about its new share once set_share lowers it."""
    limiter = cpu_share.choose_limiter("aws", owner=f"swlab-test-{os.getpid()}", prefer=mechanism)
    proc = subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True)
    try:
        limit = limiter.attach(proc.pid, 2.0, "burner")
        time.sleep(0.5)  # runs as fast as the machine lets it
        limit.set_share(0.25)
        time.sleep(0.2)  # a stop in course (sigstop) runs out
        c0, t0 = _cpu_s(proc.pid), time.monotonic()
        time.sleep(2.0)
        used, wall = _cpu_s(proc.pid) - c0, time.monotonic() - t0
        assert 0.02 < used / wall < 0.25 * 1.5, f"{mechanism}: {used:.2f} CPU-s in {wall:.2f} s"
        limit.release()
    finally:
        proc.kill()
        proc.wait()
        limiter.close()
