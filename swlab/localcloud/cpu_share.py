"""CPU follows memory, as on AWS Lambda: each execution environment gets CPU time in proportion
to its memory size.

AWS gives 1,769 MB one vCPU-second per second, linearly from 128 MB to 10,240 MB, and shows
2 vCPUs up to 3,008 MB, 3 up to 5,307, 4 up to 7,076, 5 up to 8,845 and 6 above (AWS's
documentation on memory and computing power; public probes of ``/proc/cpuinfo``). Here the share
is also capped by the host's cores: a 3,538 MB function on a 2-core machine gets both cores.

Init boost (``init_cpu="boost"``, the default of ``cpu_model="aws"``): an environment's init phase
(from its spawn until the runtime first asks for an invocation: what REPORT's Init Duration measures)
gets :data:`INIT_VCPUS` whole vCPUs whatever its memory size, then :meth:`Limit.set_share` drops it to
its memory share for the invocations. AWS does not document this; it is a published measurement: Luc
van Donkersgoed, "Lambda Cold Starts and Bootstrap Code" (2022-04-08,
https://lucvandonkersgoed.com/2022/04/08/lambda-cold-starts-and-bootstrap-code/, also
https://bitesizedserverless.com/bite/lambda-cold-start-bootstrap/) timed the same CPU-bound code at
module level and in the handler across memory sizes: the module-level code ran faster than the
handler's for every size up to ~3 GB, as if the init had the 2 vCPUs every size up to 3,008 MB shows,
unthrottled, while the handler got its memory's share. Modelled for on-demand and provisioned inits
alike (the measurement is of on-demand cold starts). ``init_cpu="memory"`` turns the boost off (init
at the memory share, the model before this).

Three mechanisms, tried in this order by :func:`choose_limiter` (the first that works is used,
and its name is shown by the health endpoint and the run manifest):

``cgroup-v1``  the CFS bandwidth controller of cgroup v1 (``cpu.cfs_quota_us`` /
               ``cpu.cfs_period_us``), one cgroup per environment under the ``cpu`` hierarchy;
               needs root (CI and the project's machines run as root with it mounted writable).
``cgroup-v2``  the same through ``cpu.max`` in a delegated cgroup v2 subtree (a desktop Linux
               with systemd delegation, unprivileged).
``sigstop``    portable and unprivileged: a thread measures each environment's CPU time every
               few milliseconds and stops its process group (SIGSTOP) for as long as it ran ahead
               of its budget, then continues it (SIGCONT), as ``cpulimit`` does. Coarser than a
               quota (the tick is 10 ms) but the same average share.
``off``        no limit (``cpu_model="off"``, or nothing above works: then a warning says so).

One concern: giving an execution environment its CPU share; it knows nothing of Lambda itself.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger("swlab.localcloud.cpu")

FULL_VCPU_MB = 1769  # one vCPU-second per second
CPU_MODELS = ("aws", "off")
INIT_CPU_MODES = ("boost", "memory")  # init phase: INIT_VCPUS whole vCPUs, or the memory share as invokes
INIT_VCPUS = 2  # vCPUs an init phase runs on unthrottled, any memory size (van Donkersgoed 2022, module docstring)
PERIOD_US = 20_000  # CFS period: short enough that a 10 ms handler sees its share, not a 100 ms stall
MIN_QUOTA_US = 1_000  # the kernel's minimum quota
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")
CGROUP_ROOT = Path("/sys/fs/cgroup")
_VCPU_STEPS = ((3008, 2), (5307, 3), (7076, 4), (8845, 5))


def aws_vcpus(memory_mb: int) -> int:
    """The number of vCPUs a function of ``memory_mb`` sees on AWS."""
    return next((n for limit, n in _VCPU_STEPS if memory_mb <= limit), 6)


def aws_cpu_share(memory_mb: int) -> float:
    """vCPU-seconds per second AWS gives ``memory_mb`` (1,769 MB → 1.0)."""
    return memory_mb / FULL_VCPU_MB


def host_cpu_share(memory_mb: int, host_cores: int | None = None) -> float:
    """The share an environment gets here: AWS's, capped by the vCPUs AWS shows and the host's cores."""
    cores = host_cores or os.cpu_count() or 1
    return min(aws_cpu_share(memory_mb), aws_vcpus(memory_mb), cores)


def init_cpu_share(memory_mb: int, host_cores: int | None = None) -> float:
    """An init phase's share with the boost: :data:`INIT_VCPUS` (or the memory share if larger), capped by the host."""
    cores = host_cores or os.cpu_count() or 1
    return max(min(INIT_VCPUS, cores), host_cpu_share(memory_mb, cores))


def cfs_quota_us(share: float, period_us: int = PERIOD_US) -> int:
    return max(MIN_QUOTA_US, round(share * period_us))


class Limit(Protocol):
    def set_share(self, share: float) -> None:
        """From now on the environment gets ``share`` (vCPU-seconds per second); no credit carries over."""

    def release(self) -> None: ...


class Limiter(Protocol):
    name: str

    def attach(self, pid: int, share: float, label: str) -> Limit: ...

    def close(self) -> None: ...


# ---- off ------------------------------------------------------------------------------------


class _NoLimit:
    def set_share(self, share: float) -> None:
        pass

    def release(self) -> None:
        pass


class NoLimiter:
    name = "off"

    def attach(self, pid: int, share: float, label: str) -> Limit:
        return _NoLimit()

    def close(self) -> None:
        pass


# ---- cgroups ----------------------------------------------------------------------------------


@dataclass
class _CgroupLimit:
    path: Path
    parent_procs: Path
    version: int = 1

    def set_share(self, share: float) -> None:
        _write_quota(self.path, self.version, share)

    def release(self) -> None:
        """Move any process still inside back to the parent group, then remove the group."""
        try:
            for pid in (self.path / "cgroup.procs").read_text().split():
                try:
                    self.parent_procs.write_text(pid)
                except OSError:
                    pass  # exited meanwhile
        except OSError:
            pass
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)  # the last task is still leaving
        log.warning("cgroup %s could not be removed", self.path)


class CgroupLimiter:
    """One cgroup per environment under ``base`` (created here, removed by :meth:`close`).

    ``version`` 1 writes ``cpu.cfs_period_us`` + ``cpu.cfs_quota_us``, version 2 ``cpu.max``.
    """

    def __init__(self, base: Path, version: int) -> None:
        self.base, self.version = base, version
        self.name = f"cgroup-v{version}"
        base.mkdir(exist_ok=True)
        if version == 2:
            (base / "cgroup.subtree_control").write_text("+cpu")
        self._count = 0
        self._lock = threading.Lock()

    def attach(self, pid: int, share: float, label: str) -> Limit:
        with self._lock:
            self._count += 1
            path = self.base / f"{_safe(label)}-{self._count}"
        path.mkdir()
        if self.version == 1:
            (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        _write_quota(path, self.version, share)
        (path / "cgroup.procs").write_text(str(pid))
        return _CgroupLimit(path, self.base.parent / "cgroup.procs", self.version)

    def close(self) -> None:
        for child in sorted(self.base.glob("*/"), reverse=True):
            _CgroupLimit(child, self.base.parent / "cgroup.procs").release()
        try:
            self.base.rmdir()
        except OSError:
            pass


def _write_quota(path: Path, version: int, share: float) -> None:
    quota = cfs_quota_us(share)
    if version == 1:
        (path / "cpu.cfs_quota_us").write_text(str(quota))
    else:
        (path / "cpu.max").write_text(f"{quota} {PERIOD_US}")


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:64] or "env"


def _cgroup_v1(owner: str) -> CgroupLimiter | None:
    try:
        if not (CGROUP_V1_CPU / "cpu.cfs_quota_us").exists():
            return None
        return CgroupLimiter(CGROUP_V1_CPU / owner, 1)
    except OSError:
        return None


def _own_cgroup_v2() -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    rel = next((line.split("::", 1)[1] for line in lines if line.startswith("0::")), None)
    if rel is None:
        return None
    for mount in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        if (mount / "cgroup.controllers").exists():
            return mount / rel.lstrip("/")
    return None


def _cgroup_v2(owner: str) -> CgroupLimiter | None:
    """A delegated subtree: our own cgroup's parent must offer ``cpu`` and be writable by us."""
    own = _own_cgroup_v2()
    if own is None or own == CGROUP_ROOT:
        return None
    parent = own.parent
    try:
        if "cpu" not in (parent / "cgroup.controllers").read_text().split():
            return None
        if not os.access(parent, os.W_OK):
            return None
        return CgroupLimiter(parent / owner, 2)
    except OSError:
        return None


# ---- SIGSTOP/SIGCONT -------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_s_by_group(pgids: set[int]) -> dict[int, float]:
    """CPU seconds (user + system, all threads) of the processes in each of ``pgids``, one /proc scan."""
    totals: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pgid = int(fields[2])  # field 5 of stat: pgrp
        if pgid in pgids:
            totals[pgid] = totals.get(pgid, 0) + int(fields[11]) + int(fields[12])  # utime, stime
    return {pgid: ticks / _CLOCK_TICKS for pgid, ticks in totals.items()}


@dataclass
class _Budget:
    pgid: int
    share: float
    used_s: float
    since: float
    stopped_until: float = 0.0
    limiter: "StopContLimiter | None" = field(default=None, repr=False)

    def set_share(self, share: float) -> None:
        if self.limiter is not None:
            self.limiter._reshare(self, share)

    def release(self) -> None:
        if self.limiter is not None:
            self.limiter._forget(self)


class StopContLimiter:
    """Keeps each attached process group at its share by stopping it while it is over budget.

    The environment must lead its own process group (the data plane starts it with
    ``start_new_session``). Budget is measured, not assumed: a process waiting on I/O is never
    stopped. A stop lasts exactly as long as the group ran ahead of ``share`` × elapsed time.
    """

    name = "sigstop"
    tick_s = 0.01

    def __init__(self) -> None:
        self._budgets: list[_Budget] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="swlab-cpu-share", daemon=True)
        self._thread.start()

    def attach(self, pid: int, share: float, label: str) -> Limit:
        pgid = os.getpgid(pid)
        budget = _Budget(pgid, share, _cpu_s_by_group({pgid}).get(pgid, 0.0), time.monotonic(), limiter=self)
        with self._lock:
            self._budgets.append(budget)
        return budget

    def _reshare(self, budget: _Budget, share: float) -> None:
        """A new share from now on: the budget restarts from the group's CPU time now (a stop in course runs out)."""
        used = _cpu_s_by_group({budget.pgid}).get(budget.pgid)
        with self._lock:
            budget.share, budget.since = share, time.monotonic()
            if used is not None:
                budget.used_s = used

    def _forget(self, budget: _Budget) -> None:
        with self._lock:  # never interleaved with a tick: a released group is never stopped again
            if budget in self._budgets:
                self._budgets.remove(budget)
            _signal(budget.pgid, signal.SIGCONT)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            with self._lock:
                self._tick(time.monotonic())

    def _tick(self, now: float) -> None:
        running = [b for b in self._budgets if not b.stopped_until]
        cpu = _cpu_s_by_group({b.pgid for b in running}) if running else {}
        for b in self._budgets:
            if b.stopped_until:
                if now >= b.stopped_until:
                    b.stopped_until = 0.0
                    _signal(b.pgid, signal.SIGCONT)
                continue
            used = cpu.get(b.pgid)
            if used is None:
                continue
            ahead_s = (used - b.used_s) - b.share * (now - b.since)
            if ahead_s > self.tick_s * b.share:
                b.stopped_until = now + ahead_s / b.share
                _signal(b.pgid, signal.SIGSTOP)
            elif ahead_s < -1.0:  # idle credit is not saved up beyond a second, as a quota period would not
                b.since = now - (used - b.used_s + 1.0) / b.share

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with self._lock:
            budgets, self._budgets = self._budgets, []
        for b in budgets:
            _signal(b.pgid, signal.SIGCONT)


def _signal(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ---- choice -----------------------------------------------------------------------------------


def choose_limiter(cpu_model: str = "aws", owner: str | None = None, prefer: str | None = None) -> Limiter:
    """The first mechanism that works here for ``cpu_model`` ("aws" or "off").

    ``prefer`` forces one mechanism by name (tests, benchmarks); ``owner`` names this local
    cloud's cgroup (default ``swlab-localcloud-<pid>``).
    """
    if cpu_model not in CPU_MODELS:
        raise ValueError(f"cpu_model must be one of {', '.join(CPU_MODELS)}, not {cpu_model!r}")
    if cpu_model == "off" or prefer == "off":
        return NoLimiter()
    owner = owner or f"swlab-localcloud-{os.getpid()}"
    candidates = {
        "cgroup-v1": lambda: _cgroup_v1(owner),
        "cgroup-v2": lambda: _cgroup_v2(owner),
        "sigstop": lambda: StopContLimiter() if Path("/proc/self/stat").exists() else None,
    }
    for name, make in candidates.items():
        if prefer and name != prefer:
            continue
        limiter = make()
        if limiter is not None:
            return limiter
    log.warning(
        "CPU share cannot be enforced here (no writable cgroup, no /proc): every environment "
        "gets the host's whole CPU, so memory size changes nothing but a label"
    )
    return NoLimiter()
