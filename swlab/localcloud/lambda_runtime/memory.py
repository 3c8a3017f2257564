"""Resident memory of an environment's process tree, and the watchdog that ends environments past their sizes.

Lambda's sandbox is a cgroup: a function that grows past its memory size is
killed (``Runtime.OutOfMemory``). The watchdog samples every environment that
is initialising or busy every ``memory_poll_ms`` and kills the ones above
their memory size; the samples are also the REPORT line's ``Max Memory Used``.
About twice a second it also measures each running environment's private ``/tmp`` and kills the
ones past their ephemeral storage size (reason ``storage``): AWS's /tmp would answer ENOSPC
instead, which a plain directory cannot do.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Iterable, Protocol

import psutil

from swlab.localcloud.lambda_runtime.spec import MIB, RuntimeSpec

log = logging.getLogger("swlab.localcloud.lambda")
STORAGE_PERIOD_S = 0.5  # how often the private /tmp of each running environment is measured


class TreeRss:
    """Resident set size of a process and its descendants, cheaply.

    ``/proc/<pid>/statm`` stays open and is re-read with ``pread`` (psutil
    opens it on every call: ~10x slower on the invoke path); descendants come
    from ``/proc/<pid>/task/*/children``, refreshed twice a second. Where
    ``/proc`` is missing (macOS), psutil does the same work.
    """

    PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd: int | None = None
        self._children: list[int] = []
        self._children_at = 0.0
        try:
            self._fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY)
        except OSError:
            self._ps = psutil.Process(pid)

    def read(self) -> int:
        try:
            if self._fd is None:
                return self._ps.memory_info().rss + sum(c.memory_info().rss for c in self._ps.children(recursive=True))
            rss = int(os.pread(self._fd, 128, 0).split()[1]) * self.PAGE
        except (OSError, ValueError, IndexError, psutil.Error):
            return 0
        now = time.monotonic()
        if now - self._children_at > 0.5:
            self._children, self._children_at = _descendants(self.pid), now
        for child in self._children:
            try:
                with open(f"/proc/{child}/statm", "rb") as fh:
                    rss += int(fh.read().split()[1]) * self.PAGE
            except (OSError, ValueError, IndexError):
                pass
        return rss

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", "rb") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


class Watched(Protocol):
    """An execution environment as the watchdog sees it."""

    id: str
    spec: RuntimeSpec

    def is_running(self) -> bool: ...

    def sample_rss(self) -> int: ...

    def tmp_bytes(self) -> int: ...

    def kill(self, reason: str) -> None: ...


class MemoryWatchdog:
    """Kills (reason ``oom``) every running environment whose process tree exceeds its memory size."""

    def __init__(self, environments: Callable[[], Iterable[Watched]], period_s: float, stop: threading.Event) -> None:
        self._environments = environments
        self._period_s = period_s
        self._stop = stop

    def run(self) -> None:
        storage_checked = 0.0
        while not self._stop.wait(self._period_s):
            check_storage = time.monotonic() - storage_checked >= STORAGE_PERIOD_S
            if check_storage:
                storage_checked = time.monotonic()
            for env in self._environments():
                if not env.is_running():
                    continue
                if env.sample_rss() > env.spec.memory_mb * MIB:
                    log.info("environment %s of %s exceeded %d MB", env.id, env.spec.name, env.spec.memory_mb)
                    env.kill("oom")
                elif check_storage and env.tmp_bytes() > env.spec.ephemeral_mb * MIB:
                    log.info(
                        "environment %s of %s exceeded its %d MB of /tmp", env.id, env.spec.name, env.spec.ephemeral_mb
                    )
                    env.kill("storage")
