"""Cleaning up after a run that did not end normally: Ctrl-C during a run, or a run killed with ``kill -9``.

Ctrl-C (:func:`clean_after_interrupt`, called by :func:`swlab.run.stages.run_lab`): stop the notebook
kernels and JMeter (their process groups), tear the stack down while the cloud still answers, stop the
image server and the local cloud, then end anything else of the run (:mod:`swlab.run.reaper` finds
them); the runner prints the one line it returns and exits with 130.

``kill -9`` of a run (:func:`clean_stale_runs`, at the start of the next batch run in the same runs
directory): a run whose ``runner.json`` names a dead runner left its processes behind (kernel, JMeter,
local cloud, Lambda environments, image server, each in its own session): they are ended, its state
files removed (``runner.json``, the local cloud's and the image server's ``state.json``,
``progress.json``), and a stack left on a cloud that outlives them (AWS, or a local cloud the run did
not start) is torn down; one line per such run says what was cleaned. A lab-started local cloud's stack
dies with it. The deploy lock needs nothing: the kernel releases a dead holder's ``flock``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from swlab.run.provisioning import delete_stack
from swlab.run.reaper import RUNNER_FILE, count_kinds, run_processes, stale_runs, stop
from swlab.run.records import LocalCloudRecord
from swlab.run.rundir import RunDir, now_iso
from swlab.run.services import stop_image_server, stop_local_cloud

# The processes a teardown still needs: stopped after the stack is gone.
CLOUD_SIDE = ("local cloud", "Lambda environment", "image server")
STATE_FILES = (RUNNER_FILE, "localcloud/state.json", "imageserver/state.json", "progress.json")


class RunInterrupted(Exception):
    """The user pressed Ctrl-C; the run was cleaned up. ``line``: the one line saying what was done."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def clean_after_interrupt(run: RunDir, worker: threading.Thread | None = None) -> str:
    """Ctrl-C: stop JMeter and the kernels, tear the stack down, stop the services; the one line to show.

    ``worker``: the thread that was executing the interrupted notebook (joined once its kernel is gone).
    A second Ctrl-C abandons the clean-up and says what may be left.
    """
    parts: list[str] = []
    try:
        front = stop([p for p in run_processes(run.dir) if p.kind not in CLOUD_SIDE])
        if front:
            parts.append(f"stopped {count_kinds(front)}")
        if worker is not None:
            worker.join(timeout=30)
        parts.append(_teardown(run))
        services = [name for name, stopped in (("the image server", stop_image_server(run)),) if stopped]
        services += ["the local cloud"] if stop_local_cloud(run) else []
        if services:
            parts.append("stopped " + " and ".join(services))
        rest = stop(run_processes(run.dir))
        if rest:
            parts.append(f"ended {count_kinds(rest)} left over")
    except KeyboardInterrupt:
        parts.append("clean-up abandoned (Ctrl-C again)")
    left = run_processes(run.dir)
    parts.append(
        "no process left"
        if not left
        else f"STILL RUNNING: {count_kinds(left)} (pids {' '.join(str(p.pid) for p in left)})"
    )
    run.record("interrupted", {"at": now_iso(), "summary": "; ".join(parts)})
    return f"interrupted: {'; '.join(parts)} (run {run.dir})"


def _teardown(run: RunDir) -> str:
    """Delete the run's stack if one may exist; what happened, in a few words."""
    manifest = run.manifest()
    settings = manifest.get("settings") or {}
    cloud = run.load(LocalCloudRecord)
    if not settings or (settings.get("target") == "local" and (cloud is None or not cloud.endpoint)):
        return "no stack was deployed"
    if isinstance(manifest.get("teardown"), dict):
        return f"stack {settings.get('stack')} was already torn down"
    try:
        report = delete_stack(run, progress=None)
    except Exception as exc:  # noqa: BLE001 - the clean-up goes on; the line says what to do
        first = (str(exc).splitlines() or [""])[0][:160]
        return (
            f"teardown of stack {settings.get('stack')} failed ({type(exc).__name__}: {first}); "
            f"run scripts/teardown --stack {settings.get('stack')} --target {settings.get('target')}"
        )
    if report is None:
        return f"stack {settings.get('stack')} kept"
    summary = (run.manifest().get("teardown") or {}).get("summary")
    if summary:
        return str(summary)
    if report.clean:
        return f"tore down stack {report.stack} ({len(report.deleted)} resources deleted, nothing left)"
    return f"stack {report.stack} NOT fully torn down, left: {', '.join(report.remaining)}"


def clean_stale_runs(base: Path, exclude: Path | None = None) -> list[str]:
    """End what runs under ``base`` killed with ``kill -9`` left behind; one line per run cleaned."""
    lines = []
    for run_dir in stale_runs(base, exclude):
        run = RunDir(run_dir)
        manifest = run.manifest()
        cloud = run.load(LocalCloudRecord)
        stopped = stop(run_processes(run_dir))
        removed = [name for name in STATE_FILES if (run_dir / name).exists()]
        for name in removed:
            (run_dir / name).unlink(missing_ok=True)
        what = [f"stopped {count_kinds(stopped)}"] if stopped else ["no process of it was left"]
        what.append(f"removed its stale state files ({', '.join(removed)})")
        has_stack = bool(manifest.get("settings")) and not isinstance(manifest.get("teardown"), dict)
        if has_stack and manifest.get("target") == "local" and cloud is not None and cloud.started_by_lab:
            what.append("its stack died with its local cloud")
        elif has_stack:
            what.append(_teardown(run))
        run.record("abandoned", {"cleaned_at": now_iso(), "summary": "; ".join(what)})
        lines.append(f"cleaned up after run {run.id} (its runner was killed): {'; '.join(what)}")
    return lines
