"""The processes a run starts, which outlive the notebook that started them: the local cloud and the image server.

Each notebook runs in its own kernel (papermill), so ``00_setup`` starts both
as detached processes (their own session, so a kernel's exit does not end them)
and records them in the manifest (:class:`LocalCloudRecord`,
:class:`ImageServerRecord`); ``08_teardown`` — or the runner's safety stop —
ends them by process group from that record. The local cloud is started
through :class:`swlab.localcloud.server.LocalCloudProcess`, the image server
is :class:`swlab.samples.ImageServer` in a child (``python -m swlab.run
image-server``) that writes its address into a state file in the run directory.

:func:`plan_teardown` decides what ``08_teardown`` removes: the stack on AWS is
always deleted (it bills), ``keep_local_cloud`` only keeps the local cloud and
the stack inside it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from swlab.localcloud.faults import FaultInjector, FaultRuleError
from swlab.localcloud.server import LocalCloudError, LocalCloudProcess, add_faults, faults_of, health_of, wait_healthy
from swlab.run.paths import LabError
from swlab.run.reaper import running
from swlab.run.records import ImageServerRecord, LocalCloudRecord
from swlab.run.rundir import RunDir, now_iso, record_settings
from swlab.samples import ImageServer
from swlab.settings import Settings, client

# ----------------------------------------------------------------------------- stopping a detached process


def terminate_group(pid: int, grace_s: float) -> None:
    """SIGTERM ``pid``, wait up to ``grace_s`` for it to exit, then SIGKILL its whole process group.

    The services lead their own session, so the group holds every child they started
    (the local cloud's Lambda environments): no straggler outlives the run.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and running(pid):
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + 5.0  # a killed process is not gone at once: wait (and reap our own child)
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


# ----------------------------------------------------------------------------- the local cloud of a run


def ensure_local_cloud(run: RunDir, settings: Settings, options: dict[str, Any] | None = None) -> Settings:
    """Target ``local``: use the endpoint in ``settings`` when one answers, else start a local cloud.

    A cloud started here lives in ``<run>/localcloud/`` (state file, log),
    survives the notebook's kernel, and is stopped by :func:`stop_local_cloud`.
    Returns the settings with the endpoint; recorded in the manifest so that
    later notebooks find it. Target ``aws``: nothing to start.
    """
    rules = list((options or {}).get("faults") or [])
    if settings.target != "local":
        if rules:
            raise LabError("faults are injected by the local cloud only (target local), not on AWS")
        run.record(LocalCloudRecord.KEY, None)
        return settings
    try:
        FaultInjector(rules)  # refuse a bad rule before anything starts
    except FaultRuleError as exc:
        raise LabError(f"faults: {exc}") from None
    if settings.endpoint_url and wait_healthy(settings.endpoint_url, timeout_s=2):
        if rules:
            try:
                add_faults(settings.endpoint_url, rules)
            except LocalCloudError as exc:
                raise LabError(str(exc)) from None
        health = health_of(settings.endpoint_url)
        run.save(
            LocalCloudRecord(
                endpoint=settings.endpoint_url,
                started_by_lab=False,
                cpu_model=health.get("cpu_model"),
                cpu_share_mechanism=health.get("cpu_share_mechanism"),
                init_cpu=health.get("init_cpu"),
            )
        )
        return settings
    cloud = LocalCloudProcess(port=0, work_dir=run.localcloud_dir, options=options or {})
    try:
        cloud.start()
    except LocalCloudError as exc:
        raise LabError(f"the local cloud did not start:\n{exc}") from exc
    cloud.proc = None  # detached: it outlives this kernel; stop_local_cloud ends it by its recorded pid
    health = health_of(cloud.endpoint_url)
    run.save(
        LocalCloudRecord(
            endpoint=cloud.endpoint_url,
            started_by_lab=True,
            work_dir=str(cloud.work_dir),
            pid=cloud.pid,
            options=options or {},
            cpu_model=health.get("cpu_model"),
            cpu_share_mechanism=health.get("cpu_share_mechanism"),
            init_cpu=health.get("init_cpu"),
            started_at=now_iso(),
        )
    )
    settings = settings.with_(endpoint_url=cloud.endpoint_url)
    record_settings(run, settings)
    return settings


def record_faults(run: RunDir) -> dict[str, Any] | None:
    """The local cloud's fault report (rules, injections per type) into the manifest (``faults``), while it runs."""
    cloud = run.load(LocalCloudRecord)
    report = faults_of(cloud.endpoint) if cloud is not None and cloud.endpoint else {}
    if not report:
        return None
    run.record("faults", report)
    return report


def stop_local_cloud(run: RunDir, grace_s: float = 15.0) -> bool:
    """Stop the local cloud this run started (if still running). True when one was stopped."""
    info = run.load(LocalCloudRecord)
    if info is None or not info.started_by_lab or not info.pid:
        return False
    state = Path(info.work_dir or run.localcloud_dir) / "state.json"
    if not state.exists():
        return False
    was_running = running(int(info.pid))
    terminate_group(int(info.pid), grace_s)  # also when it died: its group may hold Lambda environments
    state.unlink(missing_ok=True)
    run.save(replace(info, stopped_at=now_iso()))
    return was_running


def local_cloud_gone(run: RunDir) -> bool:
    """True when the run started its own local cloud and that process is no longer running (it died)."""
    info = run.load(LocalCloudRecord)
    if info is None or not info.started_by_lab or not info.pid or info.stopped_at:
        return False
    return not running(int(info.pid))


def check_target(settings: Settings) -> dict[str, Any]:
    """Ask the target who we are (STS GetCallerIdentity): proves the endpoint and credentials work."""
    identity = client(settings, "sts").get_caller_identity()
    return {
        "target": settings.target,
        "region": settings.region,
        "stack": settings.stack,
        "endpoint": settings.endpoint_url or "AWS (default endpoints)",
        "account": identity["Account"],
        "caller": identity["Arn"],
    }


# ----------------------------------------------------------------------------- the local image server of a run


def start_image_server(run: RunDir, timeout_s: float = 30.0) -> ImageServerRecord:
    """Serve the sample photos on 127.0.0.1 from a detached process that lives as long as the run.

    Workflow 1 downloads from it; its ``allowed_host`` goes into the ingest
    function's allow-list at deploy time, so it must keep one port from deploy
    to the last load test (a server inside one notebook's kernel would not).
    """
    state = run.image_server_state
    state.parent.mkdir(parents=True, exist_ok=True)
    state.unlink(missing_ok=True)
    with open(run.image_server_log, "ab") as log_fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "swlab.run", "image-server", "--state-file", str(state)],
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise LabError(f"the image server did not start; see {run.image_server_log}")
        time.sleep(0.05)
    info = ImageServerRecord.from_dict({**json.loads(state.read_text()), "started_at": now_iso()})
    run.save(info)
    return info


def stop_image_server(run: RunDir, grace_s: float = 10.0) -> bool:
    """Stop the run's image server if it runs. True when one was stopped."""
    info = run.load(ImageServerRecord)
    if info is None or not info.pid or not run.image_server_state.exists():
        return False
    terminate_group(int(info.pid), grace_s)
    run.image_server_state.unlink(missing_ok=True)
    run.save(replace(info, stopped_at=now_iso()))
    return True


def serve_images(state_file: Path) -> None:
    """Body of the detached image server: serve until SIGTERM, address and sample URLs in ``state_file``."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with ImageServer() as server:
        info = {
            "pid": os.getpid(),
            "allowed_host": server.allowed_host,
            "base_url": server.url("/"),
            "sample_urls": server.sample_urls(),
        }
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(state_file)
        stop.wait()


def image_urls(run: RunDir, given: list[str] | None = None) -> list[str]:
    """The images Workflow 1 ingests: ``given`` (public URLs, needed on AWS), else the run's image server's."""
    server = run.load(ImageServerRecord)
    urls = list(given or (server.sample_urls if server else []))
    if not urls:
        raise LabError(
            "no image URLs: this run has no local image server (target aws?); pass the parameter "
            "image_urls=[...] with public http(s) URLs of images"
        )
    return urls


def allowed_hosts(run: RunDir) -> str:
    """The ingest function's allow-list entry for the run's image server ("" without one)."""
    server = run.load(ImageServerRecord)
    return server.allowed_host if server else ""


# ----------------------------------------------------------------------------- what a teardown removes


@dataclass(frozen=True)
class TeardownPlan:
    """What ``08_teardown`` removes: the stack, and the run's local processes (local cloud, image server)."""

    delete_stack: bool
    stop_processes: bool


def plan_teardown(target: str, keep_local_cloud: bool = False) -> TeardownPlan:
    """``keep_local_cloud`` keeps the local cloud and the stack inside it, to explore them by hand.

    It never keeps a stack on AWS: that stack is billed, and there is no local cloud to keep.
    """
    keep = keep_local_cloud and target == "local"
    return TeardownPlan(delete_stack=not keep, stop_processes=not keep)


def stop_processes(run: RunDir, keep_local_cloud: bool = False) -> dict[str, bool]:
    """``08_teardown``: stop the run's image server and local cloud (unless :func:`plan_teardown` keeps them).

    Which of them were running (empty when kept).
    """
    target = str(run.manifest().get("target") or "local")
    if not plan_teardown(target, keep_local_cloud).stop_processes:
        return {}
    return {"image server": stop_image_server(run), "local cloud": stop_local_cloud(run)}
