"""Running a JMeter plan headless: the command line, the process and its live progress, what it left.

:func:`run_jmeter` runs a plan headless (``-n -t -l -j -e -o``), shows live
progress from the summariser, and returns a :class:`JMeterRun`;
:func:`run_workflow` does so for one of the lab's workflows with its data file.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

from swlab.loadtest import remote as remote_mod
from swlab.loadtest.install import JMeterInstall, ensure_jmeter
from swlab.loadtest.jtl import SAMPLE_VARIABLES
from swlab.loadtest.plans import WORKFLOWS, ApiEndpoint, LoadProfile, plan_path, plan_properties, read_data_file
from swlab.loadtest.progress import Progress, SummaryTracker, arrivals_due

# JMeter engine/output settings: no 60 s hang on exit, no UDP port on all interfaces, a CSV JTL.
ENGINE_PROPERTIES = {
    "jmeterengine.force.system.exit": "true",
    "jmeterengine.nongui.port": "0",
    "summariser.name": "summary",
    "summariser.interval": "2",
    "summariser.out": "true",
    "sample_variables": ",".join(SAMPLE_VARIABLES),
    "jmeter.save.saveservice.output_format": "csv",
    "jmeter.save.saveservice.print_field_names": "true",
    "jmeter.save.saveservice.timestamp_format": "ms",
    "sampleresult.timestamp.start": "true",  # timeStamp = sample start (arrival), not its end
    "jmeter.save.saveservice.default_delimiter": ",",
    "jmeter.save.saveservice.assertion_results_failure_message": "true",
    "jmeter.save.saveservice.latency": "true",
    "jmeter.save.saveservice.connect_time": "true",
    "jmeter.save.saveservice.response_code": "true",
    "jmeter.save.saveservice.successful": "true",
    "jmeter.save.saveservice.label": "true",
    "jmeter.reportgenerator.overall_granularity": "5000",
}
# C1 only (TieredStopAtLevel=1): at a few requests/s JMeter never needs C2's peak speed; measured
# here (3 alternating runs each, load average ~5): JVM CPU time 3.2 s instead of 6.5 s per short
# run, launch -> first sample 3.6-4.4 s instead of 3.5-9.3 s, and less CPU taken from the system
# under test, which shares the machine on the local cloud.
JVM_ARGS = (
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=100",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)


class JMeterRunError(RuntimeError):
    """JMeter ran but failed (non-zero exit, no JTL, timeout); the message carries the log tail."""


@dataclass(frozen=True)
class JMeterRun:
    """What one JMeter run left behind, and when it ran."""

    plan: Path
    run_dir: Path
    jtl: Path
    log: Path
    stdout: Path
    dashboard: Path  # index.html of the HTML report
    returncode: int
    properties: dict[str, str]  # plan properties, api_key redacted
    samples_planned: int
    launched_at: float  # epoch seconds, just before the JVM was spawned
    wall_s: float
    jmeter_startup_s: float | None  # launch -> first sample's start
    first_arrival_late_s: float | None = None  # first sample's start - (schedule start + warmup_s)
    warnings: tuple[str, ...] = ()
    version: str = ""
    source: str = ""

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def jmeter_command(
    install: JMeterInstall,
    plan: Path,
    properties: Mapping[str, str],
    jtl: Path,
    log: Path,
    report_dir: Path,
    remote: Sequence[str] = (),
) -> list[str]:
    """The headless command line: engine settings first, plan properties last.

    ``remote``: ``host:port`` of JMeter engines (:mod:`swlab.loadtest.remote`); this process is then
    their client and sends them the plan and every property; on loopback, through the launcher that
    keeps RMI off other interfaces.
    """
    props = {**ENGINE_PROPERTIES, **properties}
    on_loopback = all(r.split(":")[0] in ("127.0.0.1", "localhost") for r in remote)
    java = (
        remote_mod.loopback_java(install, JVM_ARGS, report_dir.parent)
        if remote and on_loopback
        else [str(install.java), *JVM_ARGS, "-jar", str(install.launcher_jar)]
    )
    return [
        *java,
        "-n",
        "-t",
        str(plan),
        "-l",
        str(jtl),
        "-j",
        str(log),
        "-e",
        "-o",
        str(report_dir),
        *(f"-J{k}={v}" for k, v in props.items()),
        *(remote_mod.client_arguments(remote, props) if remote else []),
    ]


def _pump(stream, lines: "queue.Queue[str | None]", copy) -> None:
    for line in stream:
        copy.write(line)
        copy.flush()
        lines.put(line)
    lines.put(None)


def _watch(
    proc: subprocess.Popen,
    copy,
    label: str,
    planned_s: float,
    deadline_s: float,
    progress: Callable[[Progress], None] | None,
    arrivals: tuple[float, float, int] = (0.0, 0.0, 0),
) -> SummaryTracker:
    """Follow JMeter's stdout until it exits, reporting progress about once a second.

    ``arrivals``: (rate per second, warm-up seconds, planned samples) of the schedule, for "sent".
    """
    rate, warmup_s, planned_samples = arrivals
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines, copy), daemon=True).start()
    tracker, launched, last_report = SummaryTracker(), time.monotonic(), 0.0
    while True:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            line = ""
        now = time.monotonic()
        if line is None:
            break
        tracker.feed(line, now)
        if now - launched > deadline_s:
            os.killpg(proc.pid, 9)
            raise JMeterRunError(f"JMeter did not finish within {deadline_s:.0f} s; killed")
        if progress and now - last_report >= 1.0:
            last_report = now
            sent = arrivals_due(tracker.schedule_start_epoch_s, time.time(), warmup_s, rate, planned_samples)
            progress(
                Progress(
                    label,
                    now - (tracker.started_at or now),
                    planned_s,
                    tracker.samples,
                    tracker.errors,
                    sent=sent if planned_samples else None,
                    planned_samples=planned_samples,
                )
            )
    proc.wait()
    if progress:
        progress(
            Progress(
                label,
                time.monotonic() - (tracker.started_at or launched),
                planned_s,
                tracker.samples,
                tracker.errors,
                done=True,
                sent=arrivals_due(tracker.schedule_start_epoch_s, time.time(), warmup_s, rate, planned_samples)
                if planned_samples
                else None,
                planned_samples=planned_samples,
            )
        )
    return tracker


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _spawn(
    cmd: list[str],
    run_dir: Path,
    out: Path,
    label: str,
    planned_s: float,
    timeout_s: float,
    progress: Callable[[Progress], None] | None,
    arrivals: tuple[float, float, int] = (0.0, 0.0, 0),
) -> tuple[int, SummaryTracker]:
    """Run JMeter in its own process group, copying its stdout to ``out``; kill it on overrun."""
    with open(out, "w") as copy:
        proc = subprocess.Popen(
            cmd,
            cwd=run_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            tracker = _watch(proc, copy, label, planned_s, timeout_s, progress, arrivals)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
    return proc.returncode, tracker


def run_jmeter(
    plan: Path,
    properties: Mapping[str, str],
    run_dir: Path,
    *,
    install: JMeterInstall | None = None,
    progress: Callable[[Progress], None] | None = None,
    label: str | None = None,
    timeout_s: float | None = None,
    remote: Sequence[str] = (),
) -> JMeterRun:
    """Run ``plan`` headless into ``run_dir`` (results.jtl, jmeter.log, stdout.txt, run.json, dashboard/).

    ``properties`` are the plan properties (see :func:`plan_properties`).
    ``progress`` is called about once a second with a :class:`Progress`.
    ``remote``: run it on these JMeter engines (each runs the whole plan at ``properties["rate"]``).
    Raises :class:`JMeterRunError` if JMeter fails or overruns ``timeout_s``
    (default: the whole schedule + 300 s).
    """
    install = install or ensure_jmeter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    jtl, log, out, report = (run_dir / n for n in ("results.jtl", "jmeter.log", "stdout.txt", "dashboard"))
    for stale in (jtl, log):
        stale.unlink(missing_ok=True)
    shutil.rmtree(report, ignore_errors=True)
    rate, duration_s = float(properties.get("rate", 1)), float(properties.get("duration", 180))
    warmup_s = float(properties.get("warmup_s", 1))
    # The schedule: warm-up pause, arrivals, then a pause of one response timeout for the slowest
    # answers. The lab's plans end the test as soon as every arrival is answered (their "load data
    # file" step), so progress counts the arrivals only; the deadline allows the whole schedule.
    planned_s = warmup_s + duration_s
    schedule_s = planned_s + float(properties.get("timeout_ms", 35_000)) / 1000
    cmd = jmeter_command(install, Path(plan).resolve(), properties, jtl, log, report, remote)
    launched_at, t0 = time.time(), time.monotonic()
    arrivals = (rate, warmup_s, round(rate * duration_s))
    code, tracker = _spawn(
        cmd, run_dir, out, label or Path(plan).stem, planned_s, timeout_s or schedule_s + 300, progress, arrivals
    )
    if code != 0 or not jtl.exists():
        raise JMeterRunError(f"JMeter exited with {code} (see {log}):\n{_tail(out)}\n{_tail(log)}")
    first = _first_sample_epoch_s(jtl)
    clock = tracker.schedule_start_epoch_s or tracker.test_start_epoch_s
    late = round(first - clock - warmup_s, 3) if first is not None and clock is not None else None
    result = JMeterRun(
        Path(plan),
        run_dir,
        jtl,
        log,
        out,
        report / "index.html",
        code,
        {k: ("***" if k == "api_key" and v else v) for k, v in properties.items()},
        round(rate * duration_s) * max(len(remote), 1),
        launched_at,
        time.monotonic() - t0,
        None if first is None else round(first - launched_at, 3),
        late,
        _late_warning(late, rate),
        install.version,
        install.source,
    )
    (run_dir / "run.json").write_text(
        json.dumps({**result.as_dict(), "java": str(install.java), "jmeter_home": str(install.home)}, indent=2)
    )
    return result


def _late_warning(late_s: float | None, rate_per_s: float) -> tuple[str, ...]:
    """Warn when the first sample started later than one inter-arrival time after it was due.

    The first arrival pays for compiling the plan's per-sample scripts (0.1-0.4 s here); more
    means the schedule clock was not restarted after setUp and the first arrivals were bunched.
    """
    if late_s is None or late_s <= 1.0 / rate_per_s:
        return ()
    return (
        f"first sample started {late_s:.2f} s after its scheduled arrival: the first arrivals were "
        "bunched (see 'swlab:' lines in jmeter.log)",
    )


def run_workflow(
    workflow: str,
    endpoint: ApiEndpoint,
    data_file: Path,
    run_dir: Path,
    profile: LoadProfile = LoadProfile(),
    *,
    install: JMeterInstall | None = None,
    progress: Callable[[Progress], None] | None = None,
    plans_dir: Path | None = None,
    remote: Sequence[str] = (),
) -> JMeterRun:
    """Load-test one workflow ("wf1" ingest, "wf2" classify) with its plan; checks the data file first.

    With ``remote`` engines, the profile's rate is split between them (each runs the whole plan)."""
    spec = WORKFLOWS[workflow]
    read_data_file(data_file, spec.field)  # fail here, clearly, rather than in every sample
    props = plan_properties(endpoint, profile, data_file, workflow)
    mode = f" ({profile.mode})" if "mode" in props else ""
    if remote:
        props["rate"] = f"{remote_mod.split_rate(profile.rate_per_s, len(remote)):g}"
    return run_jmeter(
        plan_path(workflow, plans_dir),
        props,
        run_dir,
        install=install,
        progress=progress,
        label=f"{workflow} {spec.label}{mode}",
        remote=remote,
    )


def _first_sample_epoch_s(jtl: Path) -> float | None:
    stamps = pd.read_csv(jtl, usecols=["timeStamp"])["timeStamp"]
    return None if stamps.empty else float(stamps.min()) / 1000.0
