"""Every process of a run, found by what points at its run directory, and stopping them by process group.

A run's processes are spread over several sessions (the notebooks' kernels, JMeter, the local cloud,
its Lambda environments and the image server each lead their own), so neither Ctrl-C at a terminal
nor ``kill -9`` of the runner's process group reaches them. They are found here instead by walking
``/proc``: a process belongs to run ``R`` when its environment carries ``SWLAB_RUN_DIR=R`` (set by the
runner with :func:`mark`, inherited by every kernel and what it starts), or its working directory or
an argument of its command line lies inside ``R`` (JMeter runs in ``R/jmeter/<wf>``, the local cloud
and the image server are given ``R/localcloud`` and ``R/imageserver/state.json``, a Lambda
environment runs in ``R/localcloud/lambda/code/...``).

:class:`RunnerMark` (``R/runner.json``: the runner's pid and its start time) tells a run in progress
from one whose runner died (``kill -9``): :func:`stale_runs` lists the latter. Linux only (``/proc``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

RUN_ENV = "SWLAB_RUN_DIR"
RUNNER_FILE = "runner.json"

# What a process is, from its command line (first match wins); "process" otherwise.
KINDS = (
    ("ApacheJMeter", "JMeter"),
    ("swlab.localcloud", "local cloud"),
    ("image-server", "image server"),
    ("awslambdaric", "Lambda environment"),
    ("ipykernel", "notebook kernel"),
)


@dataclass(frozen=True)
class Proc:
    pid: int
    pgid: int
    kind: str
    cmdline: str


def mark(run_dir: Path) -> None:
    """Every process started from now on (kernels, and what they start) carries ``SWLAB_RUN_DIR=run_dir``."""
    os.environ[RUN_ENV] = str(Path(run_dir).resolve())


def _inside(path: str, run_dir: str) -> bool:
    return path == run_dir or path.startswith(run_dir + os.sep)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _belongs(pid: int, run_dir: str) -> str | None:
    """The process's command line when it belongs to ``run_dir``, else None."""
    base = f"/proc/{pid}"
    args = [a.decode(errors="replace") for a in _read(f"{base}/cmdline").split(b"\0") if a]
    if not args:
        return None  # a kernel thread, or gone
    env = _read(f"{base}/environ").split(b"\0")
    try:
        cwd = os.readlink(f"{base}/cwd")
    except OSError:
        cwd = ""
    marked = f"{RUN_ENV}={run_dir}".encode() in env
    if marked or _inside(cwd, run_dir) or any(_inside(a, run_dir) or f"={run_dir}{os.sep}" in a for a in args):
        return " ".join(args)
    return None


def run_processes(run_dir: str | Path) -> list[Proc]:
    """The live processes of the run in ``run_dir`` (never this process nor its ancestors)."""
    target = str(Path(run_dir).resolve())
    spared = _ancestors()
    found: list[Proc] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in spared:
            continue
        pid = int(entry)
        cmdline = _belongs(pid, target)
        if cmdline is None or _zombie(pid):
            continue
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            continue
        kind = next((name for needle, name in KINDS if needle in cmdline), "process")
        found.append(Proc(pid, pgid, kind, cmdline))
    return found


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        stat = _read(f"/proc/{pid}/stat").decode(errors="replace")
        try:
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (IndexError, ValueError):
            break
    return pids


def _zombie(pid: int) -> bool:
    stat = _read(f"/proc/{pid}/stat").decode(errors="replace")
    return not stat or stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def running(pid: int) -> bool:
    """True while ``pid`` runs: a zombie (exited, not yet reaped) has ended; our own exited child is reaped here."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child
    except ChildProcessError:
        pass
    return os.path.exists(f"/proc/{pid}") and not _zombie(pid)


def stop(procs: list[Proc], grace_s: float = 5.0) -> list[Proc]:
    """SIGTERM each process's group (its own pid where the group is ours), SIGKILL what is left after ``grace_s``.

    Returns the processes that were stopped.
    """
    own_group = os.getpgrp()

    def signal_all(sig: int) -> None:
        for p in procs:
            try:
                if p.pgid != own_group and p.pgid > 1:
                    os.killpg(p.pgid, sig)
                os.kill(p.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(running(p.pid) for p in procs):
        time.sleep(0.05)
    if any(running(p.pid) for p in procs):
        signal_all(signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(running(p.pid) for p in procs):
            time.sleep(0.05)
    return procs


def count_kinds(procs: list[Proc]) -> str:
    """``"JMeter, 2 notebook kernels and the local cloud"``-style wording of what ``procs`` are."""
    counts: dict[str, int] = {}
    for p in procs:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    parts = [(kind if kind == "JMeter" else f"the {kind}") if n == 1 else f"{n} {kind}s" for kind, n in counts.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] if parts else "nothing"


# ----------------------------------------------------------------------------- the runner's own mark


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a live pid from a reused one)."""
    stat = _read(f"/proc/{pid}/stat").decode(errors="replace")
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class RunnerMark:
    """``<run>/runner.json``: this run has a live runner. Written when a batch run starts, removed when it ends."""

    run_dir: Path

    @property
    def path(self) -> Path:
        return self.run_dir / RUNNER_FILE

    def claim(self) -> None:
        pid = os.getpid()
        self.path.write_text(json.dumps({"pid": pid, "start_ticks": _start_ticks(pid)}))
        mark(self.run_dir)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        if os.environ.get(RUN_ENV) == str(self.run_dir.resolve()):
            del os.environ[RUN_ENV]

    def runner_alive(self) -> bool:
        try:
            data = json.loads(self.path.read_text())
            pid, ticks = int(data["pid"]), data.get("start_ticks")
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return running(pid) and (ticks is None or _start_ticks(pid) == ticks)


def stale_runs(base: Path, exclude: Path | None = None) -> list[Path]:
    """Run directories under ``base`` whose runner died without ending the run (``runner.json`` left behind)."""
    found = []
    for marker in sorted(Path(base).glob(f"*/{RUNNER_FILE}")):
        run_dir = marker.parent
        if exclude is not None and run_dir.resolve() == Path(exclude).resolve():
            continue
        if not RunnerMark(run_dir).runner_alive():
            found.append(run_dir)
    return found
