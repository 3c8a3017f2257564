"""The stage runner: the lab's notebooks executed in order with papermill into one run directory.

:func:`run_lab` (CLI ``scripts/run-lab``) executes the notebooks in order,
prints each stage's time, names the notebook and cell that failed, always runs
the teardown stage, stops whatever process the run left running, then builds
the book (:mod:`swlab.run.book`). :func:`prepare_notebooks` writes
parameterized, unexecuted copies for other executors (nbval).

Robustness (:mod:`swlab.run.cleanup`, :mod:`swlab.run.reaper`): a run marks every process it starts
with its directory and holds ``runner.json`` while it runs; Ctrl-C stops JMeter and the kernels,
tears the stack down, stops the services and raises :class:`~swlab.run.cleanup.RunInterrupted`
(one line, exit 130); a run starting cleans up after earlier runs in the same runs directory whose
runner was killed (one line each); when the local cloud died, the summary's ``teardown:`` line says so.
Two runs at once get their own directory, local cloud, ports and JMeter folders.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from swlab.run import book
from swlab.run.cleanup import RunInterrupted, clean_after_interrupt, clean_stale_runs
from swlab.run.paths import LabError, notebooks, project_root
from swlab.run.profiles import LabProfile, declared_parameters, plan_parameters
from swlab.run.progress import LiveLine
from swlab.run.reaper import RunnerMark, count_kinds, run_processes, stop
from swlab.run.records import BookRecord, CollectRecord, ProfileRecord
from swlab.run.rundir import RunDir, start_run
from swlab.run.services import stop_image_server, stop_local_cloud

ALWAYS_RUN = ("teardown",)
# A notebook error that means the cloud endpoint is gone (the local cloud died, or the network did).
CLOUD_GONE = {"EndpointConnectionError", "ConnectionRefusedError", "NewConnectionError", "ConnectionClosedError"}
CLOUD_GONE_MESSAGES = (
    "Could not connect to the endpoint URL",
    "Connection refused",
)  # stages whose name contains one of these run even after a failure


@dataclass
class Stage:
    name: str
    notebook: str
    status: str = "pending"  # pending | ok | failed | skipped
    seconds: float | None = None
    error: str | None = None


@dataclass
class LabResult:
    run: RunDir
    stages: list[Stage] = field(default_factory=list)
    book_html: Path | None = None
    lost: int = 0  # requests or objects the reconciliation could not account for (swlab.analysis.reconcile)

    @property
    def ok(self) -> bool:
        return all(s.status == "ok" for s in self.stages) and not self.lost

    @property
    def failed(self) -> list[Stage]:
        return [s for s in self.stages if s.status == "failed"]


def describe_failure(exc: BaseException, notebook: Path, executed: Path) -> str:
    """One message naming the notebook, the cell (numbered as in the notebook, from 1) and the error."""
    from papermill.exceptions import PapermillExecutionError

    if not isinstance(exc, PapermillExecutionError):
        return f"{notebook.name}: {type(exc).__name__}: {_plain_text(str(exc))}"
    cell = _source_cell_number(executed, exc.cell_index)
    if exc.ename in CLOUD_GONE or any(m in (exc.evalue or "") for m in CLOUD_GONE_MESSAGES):
        first = _plain_text(exc.evalue or "").splitlines()[0][:200] if exc.evalue else exc.ename
        return (
            f"{notebook.name}, cell {cell}: the cloud stopped answering ({exc.ename}: {first}). "
            "If it is the local cloud, it died: see localcloud.log in the run's local cloud directory; "
            "the teardown stage ran and the summary says what is left; start again with scripts/run-lab"
        )
    lines = [line for line in (exc.source or "").splitlines() if line.strip()]
    source = "\n".join(f"    | {line}" for line in lines[:6]) + ("\n    | ..." if len(lines) > 6 else "")
    return (
        f"{notebook.name}, cell {cell} (In [{exc.exec_count}]): {exc.ename}: {_plain_text(exc.evalue)}\n"
        f"{source}\n  executed copy with the traceback: {executed}"
    )


def _plain_text(text: str) -> str:
    """Without the terminal colour codes tracebacks and pip carry."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _source_cell_number(executed: Path, cell_index: int) -> int:
    """Papermill's cell index counts its injected parameters cell; the author's notebook does not."""
    try:
        cells = json.loads(executed.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return cell_index + 1
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    return cell_index + (0 if injected and injected[0] < cell_index else 1)


class StageInterrupted(KeyboardInterrupt):
    """Ctrl-C while a stage ran; ``worker`` is the thread still executing its notebook (its kernel runs on)."""

    def __init__(self, worker: threading.Thread) -> None:
        super().__init__()
        self.worker = worker


def execute_stage(
    notebook: Path, run: RunDir, parameters: dict[str, Any], verbose: bool = False, interruptible: bool = False
) -> Stage:
    """Execute one notebook with papermill into ``<run>/notebooks/``; never raises for a notebook error.

    ``interruptible``: papermill runs in a worker thread, so that Ctrl-C reaches this (main) thread as
    :class:`StageInterrupted` instead of papermill's own SIGINT handler (which only shuts the kernel
    down, leaving what the kernel started running); the caller cleans up (:mod:`swlab.run.cleanup`).
    Without it a Ctrl-C fails the stage ("interrupted by the user") and the caller goes on.
    """
    if not interruptible:
        return _execute_stage(notebook, run, parameters, verbose)
    done: list[Stage] = []
    worker = threading.Thread(
        target=lambda: done.append(_execute_stage(notebook, run, parameters, verbose)),
        name=f"stage-{notebook.stem}",
        daemon=True,
    )
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        raise StageInterrupted(worker) from None
    return done[0]


def _execute_stage(notebook: Path, run: RunDir, parameters: dict[str, Any], verbose: bool = False) -> Stage:
    import papermill as pm

    stage = Stage(name=notebook.stem, notebook=notebook.name)
    executed = run.executed_notebook(notebook.name)
    log_path = run.stage_log(notebook.stem)
    started = time.monotonic()
    with open(log_path, "w") as log_fh, _kernel_stderr_to(None if verbose else log_fh):
        out = _Tee(log_fh, sys.stdout) if verbose else log_fh
        try:
            pm.execute_notebook(
                str(notebook),
                str(executed),
                parameters=parameters,
                cwd=str(notebook.parent),
                progress_bar=False,
                stdout_file=out,
                stderr_file=out,
                kernel_name="python3",
            )
            stage.status = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure of a stage is reported, then the run goes on to teardown
            stage.status, stage.error = "failed", describe_failure(exc, notebook, executed) + f"\n  log: {log_path}"
        except KeyboardInterrupt:  # Ctrl-C stops this stage, not the teardown (press again there to abandon it)
            stage.status, stage.error = "failed", f"{notebook.name}: interrupted by the user"
    stage.seconds = round(time.monotonic() - started, 2)
    return stage


@contextmanager
def _kernel_stderr_to(log_fh: Any) -> Iterator[None]:
    """The kernel process inherits file descriptor 2: send its chatter to the stage's log, not the terminal."""
    if log_fh is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(log_fh.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


class _Tee:
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
            s.flush()
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def _always(name: str) -> bool:
    return any(word in name for word in ALWAYS_RUN)


def run_stages(
    run: RunDir,
    books: list[Path],
    plan: dict[str, dict[str, Any]],
    say: Callable[[str], None],
    verbose: bool = False,
    live_to: TextIO | None = None,
    interruptible: bool = False,
) -> list[Stage]:
    """Execute the notebooks in order; after a failure skip the rest but still run teardown stages.

    One line per stage (its status, time and last progress line); with ``live_to`` (a terminal) a live
    line of the stage's progress (:mod:`swlab.run.progress`) is redrawn there while it runs.
    ``interruptible``: Ctrl-C raises :class:`StageInterrupted` (see :func:`execute_stage`).
    """
    stages: list[Stage] = []
    failed = False
    for nb in books:
        if failed and not _always(nb.stem):
            stages.append(Stage(name=nb.stem, notebook=nb.name, status="skipped"))
            say(f"[{nb.stem}] skipped (an earlier stage failed)")
            continue
        if verbose:  # the notebooks' output follows; no live line over it
            say(f"[{nb.stem}] running ...")
        params = {**plan.get(nb.name, {}), "run_dir": str(run.dir)}
        with LiveLine(run.dir, nb.stem, None if verbose else live_to) as live:
            stage = execute_stage(nb, run, params, verbose=verbose, interruptible=interruptible)
        stages.append(stage)
        say(f"[{nb.stem}] {stage.status} in {stage.seconds:.1f} s{live.suffix()}")
        if stage.status == "failed":
            failed = True
            say(f"FAILED: {stage.error}")
        run.record("stages", [vars(s) for s in stages])
    return stages


def run_lab(
    profile: LabProfile,
    overrides: dict[str, Any] | None = None,
    *,
    run_dir: str | Path = "",
    only: list[str] | None = None,
    build_book: bool = True,
    verbose: bool = False,
    root: Path | None = None,
    say: Callable[[str], None] = print,
    live_to: TextIO | None = None,
) -> LabResult:
    """Run the lab's notebooks for one profile into a run directory, then build the book.

    ``live_to``: where the running stage's live line goes; by default the terminal, when ``say`` is
    ``print`` and standard output is one (never in a pipe or a CI log).
    """
    if live_to is None and say is print and sys.stdout.isatty():
        live_to = sys.stdout
    root = root or project_root()
    parameters = {**profile.parameters, **(overrides or {})}
    books = [nb for nb in notebooks(root) if not only or any(nb.name.startswith(p) for p in only)]
    if not books:
        raise LabError(f"no notebook in {root / 'notebooks'} matches {only}")
    plan = plan_parameters(parameters, notebooks(root))
    run = start_run(run_dir, profile=profile.name, parameters=parameters, root=root)
    run.save(ProfileRecord(name=profile.name, description=profile.description, source=profile.source))
    runner = RunnerMark(run.dir)
    runner.claim()  # every process of the run carries its directory (swlab.run.reaper)
    try:
        say(f"run {run.id} ({profile.name}) in {run.dir}")
        for line in clean_stale_runs(run.dir.parent, exclude=run.dir):
            say(line)
        started = time.monotonic()
        try:
            stages = run_stages(run, books, plan, say, verbose, live_to, interruptible=True)
        except KeyboardInterrupt as exc:  # Ctrl-C: clean up, one line, exit 130 (swlab.run.cleanup)
            raise RunInterrupted(clean_after_interrupt(run, getattr(exc, "worker", None))) from None
        finally:
            safety_stop(run, say)
        result = LabResult(run=run, stages=stages)
        _record_overhead(run, result.stages, books, plan)
        collected = run.load(CollectRecord)
        result.lost = (collected.lost or 0) if collected else 0
    finally:
        runner.release()
    if build_book and all(s.status == "ok" for s in result.stages):  # a loss is still reported in the book
        result.book_html = build_book_stage(run, root, say)
    run.record("total_seconds", round(time.monotonic() - started, 2))
    print_summary(result, say)
    return result


def planned_load_seconds(books: list[Path], plan: dict[str, dict[str, Any]]) -> float:
    """Seconds of arrivals the load-test notebooks (those declaring ``rate_per_s`` and ``duration_s``) plan."""
    total = 0.0
    for nb in books:
        declared = declared_parameters(nb)
        if "rate_per_s" in declared and "duration_s" in declared:
            total += float(plan.get(nb.name, {}).get("duration_s", declared["duration_s"]["default"]))
    return total


def _record_overhead(run: RunDir, stages: list[Stage], books: list[Path], plan: dict[str, dict[str, Any]]) -> None:
    """``overhead_s`` in the manifest: the stages' total minus the planned load of the stages that ran."""
    ran = {s.notebook for s in stages if s.status != "skipped"}
    planned = planned_load_seconds([nb for nb in books if nb.name in ran], plan)
    total = sum(s.seconds or 0.0 for s in stages)
    run.record("stages_seconds", round(total, 2))
    run.record("planned_load_s", planned)
    run.record("overhead_s", round(total - planned, 2))


def prepare_notebooks(
    profile: LabProfile, overrides: dict[str, Any] | None = None, *, run_dir: str | Path = "", root: Path | None = None
) -> RunDir:
    """Parameterized, unexecuted copies of the notebooks in ``<run>/notebooks/`` (papermill ``prepare_only``).

    For executors other than papermill's own run: ``pytest --nbval-lax <run>/notebooks``
    executes them in order, each with the profile's parameters and the run's directory.
    """
    import papermill as pm

    root = root or project_root()
    parameters = {**profile.parameters, **(overrides or {})}
    plan = plan_parameters(parameters, notebooks(root))
    run = start_run(run_dir, profile=profile.name, parameters=parameters, root=root)
    for nb in notebooks(root):
        pm.execute_notebook(
            str(nb),
            str(run.executed_notebook(nb.name)),
            prepare_only=True,
            progress_bar=False,
            parameters={**plan.get(nb.name, {}), "run_dir": str(run.dir)},
        )
    return run


def safety_stop(run: RunDir, say: Callable[[str], None]) -> None:
    """Whatever happened in the notebooks, no process this run started outlives it."""
    try:
        if stop_image_server(run):
            say("stopped the run's image server (the teardown notebook did not)")
        if stop_local_cloud(run):
            say("stopped the run's local cloud (the teardown notebook did not)")
    except LabError as exc:
        say(f"WARNING: {exc}")
    rest = stop(run_processes(run.dir))  # e.g. Lambda environments of a local cloud that died
    if rest:
        say(f"ended {count_kinds(rest)} the run left behind")


def build_book_stage(run: RunDir, root: Path, say: Callable[[str], None]) -> Path | None:
    """Build the book from ``run`` (its status and time recorded in the manifest); None if it failed."""
    say("[book] building ...")
    started = time.monotonic()
    try:
        html = book.build_book(run, root=root)
    except book.BookError as exc:
        say(f"[book] failed in {time.monotonic() - started:.1f} s\nFAILED: {exc}")
        run.save(BookRecord(status="failed", seconds=round(time.monotonic() - started, 2), error=str(exc)))
        return None
    seconds = round(time.monotonic() - started, 2)
    run.save(BookRecord(status="ok", seconds=seconds, index=str(html)))
    say(f"[book] ok in {seconds:.1f} s")
    return html


def print_summary(result: LabResult, say: Callable[[str], None]) -> None:
    """The run's closing table: each stage's status and time, the book, the total, losses and failures."""
    say("\nstage                        status     seconds")
    for s in result.stages:
        say(f"{s.name:<28} {s.status:<8} {'' if s.seconds is None else f'{s.seconds:9.1f}'}")
    book_info = result.run.load(BookRecord)
    if book_info is not None:
        say(f"{'book':<28} {book_info.status:<8} {book_info.seconds:9.1f}")
    manifest = result.run.manifest()
    say(f"{'total':<28} {'':<8} {manifest.get('total_seconds', 0):9.1f}")
    if "overhead_s" in manifest:
        say(
            f"{'lab overhead':<28} {'':<8} {manifest['overhead_s']:9.1f}  "
            f"(stages {manifest['stages_seconds']:.1f} s - planned load {manifest['planned_load_s']:.0f} s)"
        )
    if result.book_html:
        say(f"\nreport: {result.book_html}")
    teardown = manifest.get("teardown") or {}
    if isinstance(teardown, dict) and teardown.get("summary"):
        say(f"\nteardown: {teardown['summary']}")
    collected = result.run.load(CollectRecord)
    if collected is not None and collected.accounted:
        say("\n" + "\n".join(collected.accounted))
    if result.lost:
        say(f"\nLOST: {result.lost} request(s) or object(s) not accounted for (listed above and in the book)")
    for s in result.failed:
        say(f"\nFAILED: {s.error}")
