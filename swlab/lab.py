"""The lab as a batch: profiles, run directories with provenance, and the papermill stage runner.

A *run* is one directory, ``runs/<run_id>/``, holding everything a lab run
produced, so that its analysis and its book can be rebuilt from it alone::

    manifest.json      profile, parameters, resolved settings, git commit, target,
                       tool versions, stage times, and what notebooks recorded
    notebooks/         the executed notebooks (papermill's output copies)
    logs/              each stage's stdout/stderr
    localcloud/        the local cloud's state file and log (target local)
    ...                whatever the notebooks write (deploy outputs, JMeter, collected data)
    book/              the book's source tree and HTML, built from notebooks/

A *profile* is a YAML or JSON file (``profiles/<name>.yaml``) with a name, a
description and ``parameters``; each notebook receives the parameters its
``parameters`` cell declares (papermill), plus ``run_dir``. A parameter that
no notebook declares is an error, so a typo cannot pass silently.

Notebooks use :func:`start_run` / :func:`open_run` and :meth:`Run.settings`;
``00_setup`` starts the local cloud with :func:`ensure_local_cloud` and
``NN_teardown`` stops it with :func:`stop_local_cloud`. The runner
(:func:`run_lab`, CLI ``scripts/run-lab``) executes the notebooks in order,
prints each stage's time, names the notebook and cell that failed, always runs
the teardown stage, then builds the book (:mod:`swlab.book`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml

from swlab.provenance import TOOLS, git_info, tool_versions  # noqa: F401 (part of lab's API)
from swlab.settings import Settings, load_settings

MANIFEST = "manifest.json"
LATEST = "latest"
NOTEBOOK_RE = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")
ALWAYS_RUN = ("teardown",)  # stages whose name contains one of these run even after a failure
COMMON_PARAMETERS = ("run_dir",)  # passed to every notebook that declares it
class LabError(RuntimeError):
    """A lab run cannot proceed; the message says what to fix."""


# ----------------------------------------------------------------------------- paths


def project_root(start: Path | None = None) -> Path:
    """The lab's checkout: the first directory upward holding ``notebooks/`` and ``pyproject.toml``.

    Jupyter runs a notebook with its own folder as working directory, papermill
    with whatever it is given; both find the same root this way.
    """
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "notebooks").is_dir() and (d / "pyproject.toml").is_file():
            return d
    package_parent = Path(__file__).resolve().parent.parent
    if (package_parent / "notebooks").is_dir():
        return package_parent
    raise LabError(f"no lab checkout (a folder with notebooks/ and pyproject.toml) above {here}")


def runs_dir(settings: Settings | None = None, root: Path | None = None) -> Path:
    """Where run directories live: ``settings.runs_dir``, relative paths taken from the project root."""
    base = Path((settings or load_settings()).runs_dir)
    return base if base.is_absolute() else (root or project_root()) / base


def notebooks(root: Path | None = None) -> list[Path]:
    """The lab's notebooks in execution order (``NN_name.ipynb``)."""
    folder = (root or project_root()) / "notebooks"
    return sorted(p for p in folder.iterdir() if NOTEBOOK_RE.match(p.name))


def new_run_id(profile: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{re.sub(r'[^A-Za-z0-9_-]', '-', profile)}"


# ----------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    parameters: dict[str, Any]
    source: str = ""


def profiles_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "profiles"


def load_profile(name_or_path: str, root: Path | None = None) -> Profile:
    """A profile by name (``profiles/<name>.yaml|.yml|.json``) or by path."""
    path = Path(name_or_path)
    if not path.is_file():
        candidates = [profiles_dir(root) / f"{name_or_path}{ext}" for ext in (".yaml", ".yml", ".json")]
        path = next((c for c in candidates if c.is_file()), None)  # type: ignore[assignment]
        if path is None:
            known = sorted(p.stem for p in profiles_dir(root).glob("*.y*ml"))
            raise LabError(f"no profile {name_or_path!r}: not a file, and not one of {known}")
    data = yaml.safe_load(path.read_text()) or {}  # YAML is a superset of JSON
    if not isinstance(data, dict) or not isinstance(data.get("parameters", {}), dict):
        raise LabError(f"{path}: a profile is a mapping with a 'parameters' mapping")
    unknown = set(data) - {"name", "description", "parameters"}
    if unknown:
        raise LabError(f"{path}: unknown profile keys {sorted(unknown)} (allowed: name, description, parameters)")
    return Profile(name=str(data.get("name", path.stem)), description=str(data.get("description", "")),
                   parameters=dict(data.get("parameters") or {}), source=str(path))


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``["rate_per_s=2", "target=aws"]`` → ``{"rate_per_s": 2, "target": "aws"}`` (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise LabError(f"parameter {item!r} is not NAME=VALUE")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def declared_parameters(notebook: Path) -> dict[str, dict[str, str]]:
    """The parameters a notebook's ``parameters`` cell declares: name → {type, default, help}."""
    import papermill as pm

    return {name: {"type": p["inferred_type_name"], "default": p["default"], "help": p["help"]}
            for name, p in pm.inspect_notebook(str(notebook)).items()}


def plan_parameters(parameters: dict[str, Any], books: list[Path]) -> dict[str, dict[str, Any]]:
    """Per notebook, the subset of ``parameters`` it declares. Undeclared parameters are an error."""
    declared = {nb.name: declared_parameters(nb) for nb in books}
    known = set().union(*declared.values()) if declared else set()
    stray = sorted(set(parameters) - known)
    if stray:
        raise LabError(f"parameters {stray} are declared by no notebook; known: {sorted(known)}")
    return {name: {k: v for k, v in parameters.items() if k in names} for name, names in declared.items()}


# ----------------------------------------------------------------------------- provenance


def provenance(root: Path | None = None) -> dict[str, Any]:
    root = root or project_root()
    return {"git": git_info(root), "tools": tool_versions(),
            "platform": {"system": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()},
            "recorded_at": _now()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def now() -> datetime:
    """The current UTC time (notebooks stamp the start and end of what they measure with it)."""
    return datetime.now(timezone.utc)


# ----------------------------------------------------------------------------- run directories


def _strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


@dataclass(frozen=True)
class Run:
    """One run directory. The manifest is re-read on every access: notebooks and the runner both write it."""

    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    @property
    def notebooks_dir(self) -> Path:
        return self.dir / "notebooks"

    def path(self, *parts: str) -> Path:
        """A path inside the run (parent folders created)."""
        p = self.dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text()) if self.manifest_path.exists() else {}

    def record(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key`` in the manifest, replacing what was there.

        NaN and infinities (pandas' "no value") are written as ``null``: the manifest is strict JSON.
        """
        data = self.manifest()
        data[key] = _strict_json(value)
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str, allow_nan=False) + "\n")
        tmp.replace(self.manifest_path)

    def window(self, margin_s: float = 5.0) -> tuple[datetime, datetime]:
        """From the earliest ``started_at`` to the latest ``ended_at`` the notebooks recorded, widened by ``margin_s``."""
        stamps = [v for v in self.manifest().values() if isinstance(v, dict) and "started_at" in v and "ended_at" in v]
        if not stamps:
            raise LabError(f"{self.dir}: no measured period recorded yet (run the smoke and load tests first)")
        start = min(datetime.fromisoformat(str(v["started_at"])) for v in stamps)
        end = max(datetime.fromisoformat(str(v["ended_at"])) for v in stamps)
        margin = timedelta(seconds=margin_s)
        return start - margin, end + margin

    def settings(self, **overrides: Any) -> Settings:
        """The settings ``00_setup`` recorded (with the local cloud's endpoint), ``overrides`` last."""
        recorded = dict(self.manifest().get("settings") or {})
        if not recorded:
            raise LabError(f"{self.dir} has no recorded settings: run notebooks/00_setup.ipynb first")
        endpoint = (self.manifest().get("localcloud") or {}).get("endpoint")
        if recorded.get("target") == "local" and endpoint:
            recorded["endpoint_url"] = endpoint
        return load_settings(env={}, **{**recorded, **overrides})


def start_run(run_dir: str | Path = "", settings: Settings | None = None, profile: str = "interactive",
              parameters: dict[str, Any] | None = None, root: Path | None = None) -> Run:
    """Create (or take over) a run directory, record provenance and settings, point ``runs/latest`` at it.

    ``run_dir`` empty → a new ``<runs_dir>/<run_id>``. An existing run keeps
    what it recorded (the batch runner creates it before ``00_setup`` runs).
    """
    root = root or project_root()
    base = runs_dir(settings, root)
    run = Run(Path(run_dir).resolve() if run_dir else base / new_run_id(profile))
    run.dir.mkdir(parents=True, exist_ok=True)
    manifest = run.manifest()
    if "run_id" not in manifest:
        run.record("run_id", run.id)
        run.record("created_at", _now())
        run.record("profile", {"name": profile})
    if parameters is not None:
        run.record("parameters", parameters)
    run.record("provenance", provenance(root))
    if settings is not None:
        run.record("settings", settings.as_dict())
        run.record("target", settings.target)
    _point_latest(base, run.dir)
    return run


def _point_latest(base: Path, target: Path) -> None:
    link = base / LATEST
    if target.parent.resolve() != base.resolve():
        return  # a run outside runs_dir (tests, explicit paths) leaves runs/latest alone
    tmp = base / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.name)
    tmp.replace(link)


def open_run(run_dir: str | Path = "", root: Path | None = None) -> Run:
    """An existing run: ``run_dir``, or the latest one when empty."""
    path = Path(run_dir) if run_dir else runs_dir(root=root) / LATEST
    if not (path / MANIFEST).is_file():
        hint = "" if run_dir else " (no latest run: execute notebooks/00_setup.ipynb first)"
        raise LabError(f"{path} is not a lab run: it has no {MANIFEST}{hint}")
    return Run(path.resolve())


# ----------------------------------------------------------------------------- the local cloud of a run


def _localcloud_cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swlab.localcloud", *args], capture_output=True, text=True,
                          timeout=timeout_s)


def ensure_local_cloud(run: Run, settings: Settings, options: dict[str, Any] | None = None) -> Settings:
    """Target ``local``: use the endpoint in ``settings`` when one answers, else start a local cloud.

    A cloud started here lives in ``<run>/localcloud/`` (state file, log),
    survives the notebook's kernel, and is stopped by :func:`stop_local_cloud`.
    Returns the settings with the endpoint; recorded in the manifest so that
    later notebooks find it. Target ``aws``: nothing to start.
    """
    from swlab.localcloud.server import wait_healthy

    if settings.target != "local":
        run.record("localcloud", None)
        return settings
    if settings.endpoint_url and wait_healthy(settings.endpoint_url, timeout_s=2):
        run.record("localcloud", {"endpoint": settings.endpoint_url, "started_by_lab": False})
        return settings
    work_dir = run.path("localcloud", "state.json").parent
    done = _localcloud_cli("start", "--port", "0", "--work-dir", str(work_dir), "--options", json.dumps(options or {}))
    if done.returncode != 0:
        raise LabError(f"the local cloud did not start:\n{done.stderr.strip()}")
    endpoint = done.stdout.strip().splitlines()[-1]
    state = json.loads((work_dir / "state.json").read_text())
    run.record("localcloud", {"endpoint": endpoint, "started_by_lab": True, "work_dir": str(work_dir),
                              "pid": state.get("pid"), "options": options or {}, "started_at": _now()})
    settings = settings.with_(endpoint_url=endpoint)
    run.record("settings", settings.as_dict())
    return settings


def stop_local_cloud(run: Run) -> bool:
    """Stop the local cloud this run started (if still running). True when one was stopped."""
    info = run.manifest().get("localcloud") or {}
    work_dir = Path(info.get("work_dir") or run.dir / "localcloud")
    if not info.get("started_by_lab") or not (work_dir / "state.json").exists():
        return False
    done = _localcloud_cli("stop", "--work-dir", str(work_dir))
    if done.returncode != 0:
        raise LabError(f"the local cloud of {run.dir} did not stop:\n{done.stderr.strip()}")
    run.record("localcloud", {**info, "stopped_at": _now()})
    return True


def check_target(settings: Settings) -> dict[str, Any]:
    """Ask the target who we are (STS GetCallerIdentity): proves the endpoint and credentials work."""
    from swlab.settings import client

    identity = client(settings, "sts").get_caller_identity()
    return {"target": settings.target, "region": settings.region, "stack": settings.stack,
            "endpoint": settings.endpoint_url or "AWS (default endpoints)",
            "account": identity["Account"], "caller": identity["Arn"]}


# ----------------------------------------------------------------------------- the local image server of a run


def start_image_server(run: Run, timeout_s: float = 30.0) -> dict[str, Any]:
    """Serve the sample photos on 127.0.0.1 from a detached process that lives as long as the run.

    Workflow 1 downloads from it; its ``allowed_host`` goes into the ingest
    function's allow-list at deploy time, so it must keep one port from deploy
    to the last load test (a server inside one notebook's kernel would not).
    """
    state = run.path("imageserver", "state.json")
    state.unlink(missing_ok=True)
    with open(run.path("imageserver", "imageserver.log"), "ab") as log_fh:
        proc = subprocess.Popen([sys.executable, "-m", "swlab.lab", "image-server", "--state-file", str(state)],
                                stdout=log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise LabError(f"the image server did not start; see {state.parent / 'imageserver.log'}")
        time.sleep(0.05)
    info = {**json.loads(state.read_text()), "started_at": _now()}
    run.record("image_server", info)
    return info


def stop_image_server(run: Run, grace_s: float = 10.0) -> bool:
    """Stop the run's image server if it runs. True when one was stopped."""
    info = run.manifest().get("image_server") or {}
    state = run.dir / "imageserver" / "state.json"
    if not info.get("pid") or not state.exists():
        return False
    _terminate(int(info["pid"]), grace_s)
    state.unlink(missing_ok=True)
    run.record("image_server", {**info, "stopped_at": _now()})
    return True


def image_urls(run: Run, given: list[str] | None = None) -> list[str]:
    """The images Workflow 1 ingests: ``given`` (public URLs, needed on AWS), else the run's image server's."""
    urls = list(given or (run.manifest().get("image_server") or {}).get("sample_urls") or [])
    if not urls:
        raise LabError("no image URLs: this run has no local image server (target aws?); pass the parameter "
                       "image_urls=[...] with public http(s) URLs of images")
    return urls


def _terminate(pid: int, grace_s: float) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def serve_images(state_file: Path) -> None:
    """Entry point of the detached image server: serve until SIGTERM, state in ``state_file``."""
    import signal
    import threading

    from swlab.samples import ImageServer

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with ImageServer() as server:
        info = {"pid": os.getpid(), "allowed_host": server.allowed_host, "base_url": server.url("/"),
                "sample_urls": server.sample_urls()}
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(state_file)
        stop.wait()


# ----------------------------------------------------------------------------- the stage runner


@dataclass
class Stage:
    name: str
    notebook: str
    status: str = "pending"  # pending | ok | failed | skipped
    seconds: float | None = None
    error: str | None = None


@dataclass
class LabResult:
    run: Run
    stages: list[Stage] = field(default_factory=list)
    book_html: Path | None = None

    @property
    def ok(self) -> bool:
        return all(s.status == "ok" for s in self.stages)

    @property
    def failed(self) -> list[Stage]:
        return [s for s in self.stages if s.status == "failed"]


def describe_failure(exc: BaseException, notebook: Path, executed: Path) -> str:
    """One message naming the notebook, the cell (numbered as in the notebook, from 1) and the error."""
    from papermill.exceptions import PapermillExecutionError

    if not isinstance(exc, PapermillExecutionError):
        return f"{notebook.name}: {type(exc).__name__}: {_plain_text(str(exc))}"
    cell = _source_cell_number(executed, exc.cell_index)
    lines = [line for line in (exc.source or "").splitlines() if line.strip()]
    source = "\n".join(f"    | {line}" for line in lines[:6]) + ("\n    | ..." if len(lines) > 6 else "")
    return (f"{notebook.name}, cell {cell} (In [{exc.exec_count}]): {exc.ename}: {_plain_text(exc.evalue)}\n"
            f"{source}\n  executed copy with the traceback: {executed}")


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


def execute_stage(notebook: Path, run: Run, parameters: dict[str, Any], verbose: bool = False) -> Stage:
    """Execute one notebook with papermill into ``<run>/notebooks/``; never raises for a notebook error."""
    import papermill as pm

    stage = Stage(name=notebook.stem, notebook=notebook.name)
    executed = run.path("notebooks", notebook.name)
    log_path = run.path("logs", f"{notebook.stem}.log")
    started = time.monotonic()
    with open(log_path, "w") as log_fh, _kernel_stderr_to(None if verbose else log_fh):
        out = _Tee(log_fh, sys.stdout) if verbose else log_fh
        try:
            pm.execute_notebook(str(notebook), str(executed), parameters=parameters, cwd=str(notebook.parent),
                                progress_bar=False, stdout_file=out, stderr_file=out, kernel_name="python3")
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


def run_stages(run: Run, books: list[Path], plan: dict[str, dict[str, Any]], say: Callable[[str], None],
               verbose: bool = False) -> list[Stage]:
    """Execute the notebooks in order; after a failure skip the rest but still run teardown stages."""
    stages: list[Stage] = []
    failed = False
    for nb in books:
        if failed and not _always(nb.stem):
            stages.append(Stage(name=nb.stem, notebook=nb.name, status="skipped"))
            say(f"[{nb.stem}] skipped (an earlier stage failed)")
            continue
        say(f"[{nb.stem}] running ...")
        params = {**plan.get(nb.name, {}), "run_dir": str(run.dir)}
        stage = execute_stage(nb, run, params, verbose=verbose)
        stages.append(stage)
        say(f"[{nb.stem}] {stage.status} in {stage.seconds:.1f} s")
        if stage.status == "failed":
            failed = True
            say(f"FAILED: {stage.error}")
        run.record("stages", [vars(s) for s in stages])
    return stages


def run_lab(profile: Profile, overrides: dict[str, Any] | None = None, *, run_dir: str | Path = "",
            only: list[str] | None = None, build_book: bool = True, verbose: bool = False,
            root: Path | None = None, say: Callable[[str], None] = print) -> LabResult:
    """Run the lab's notebooks for one profile into a run directory, then build the book."""
    root = root or project_root()
    parameters = {**profile.parameters, **(overrides or {})}
    books = [nb for nb in notebooks(root) if not only or any(nb.name.startswith(p) for p in only)]
    if not books:
        raise LabError(f"no notebook in {root / 'notebooks'} matches {only}")
    plan = plan_parameters(parameters, notebooks(root))
    run = start_run(run_dir, profile=profile.name, parameters=parameters, root=root)
    run.record("profile", {"name": profile.name, "description": profile.description, "source": profile.source})
    say(f"run {run.id} ({profile.name}) in {run.dir}")
    started = time.monotonic()
    try:
        result = LabResult(run=run, stages=run_stages(run, books, plan, say, verbose))
    finally:
        _safety_stop(run, say)
    if build_book and result.ok:
        result.book_html = _build_book_stage(run, root, say)
    run.record("total_seconds", round(time.monotonic() - started, 2))
    _summary(result, say)
    return result


def prepare_notebooks(profile: Profile, overrides: dict[str, Any] | None = None, *, run_dir: str | Path = "",
                      root: Path | None = None) -> Run:
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
        pm.execute_notebook(str(nb), str(run.path("notebooks", nb.name)), prepare_only=True, progress_bar=False,
                            parameters={**plan.get(nb.name, {}), "run_dir": str(run.dir)})
    return run


def _safety_stop(run: Run, say: Callable[[str], None]) -> None:
    """Whatever happened in the notebooks, no process this run started outlives it."""
    try:
        if stop_image_server(run):
            say("stopped the run's image server (the teardown notebook did not)")
        if stop_local_cloud(run):
            say("stopped the run's local cloud (the teardown notebook did not)")
    except LabError as exc:
        say(f"WARNING: {exc}")


def _build_book_stage(run: Run, root: Path, say: Callable[[str], None]) -> Path | None:
    from swlab import book

    say("[book] building ...")
    started = time.monotonic()
    try:
        html = book.build_book(run, root=root)
    except book.BookError as exc:
        say(f"[book] failed in {time.monotonic() - started:.1f} s\nFAILED: {exc}")
        run.record("book", {"status": "failed", "seconds": round(time.monotonic() - started, 2), "error": str(exc)})
        return None
    seconds = round(time.monotonic() - started, 2)
    run.record("book", {"status": "ok", "seconds": seconds, "index": str(html)})
    say(f"[book] ok in {seconds:.1f} s")
    return html


def _summary(result: LabResult, say: Callable[[str], None]) -> None:
    say("\nstage                        status     seconds")
    for s in result.stages:
        say(f"{s.name:<28} {s.status:<8} {'' if s.seconds is None else f'{s.seconds:9.1f}'}")
    book_info = result.run.manifest().get("book") or {}
    if book_info:
        say(f"{'book':<28} {book_info['status']:<8} {book_info['seconds']:9.1f}")
    say(f"{'total':<28} {'':<8} {result.run.manifest().get('total_seconds', 0):9.1f}")
    if result.book_html:
        say(f"\nreport: {result.book_html}")
    for s in result.failed:
        say(f"\nFAILED: {s.error}")


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run-lab", description="Run the lab's notebooks with papermill and build the book.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,book,prepare,params}")
    run = sub.add_parser("run", help="run the notebooks for a profile, then build the book (the default)")
    run.add_argument("--profile", default="mission", help="profile name in profiles/ or a YAML/JSON path (default mission)")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="override a parameter (value read as YAML), repeatable")
    run.add_argument("--target", choices=("local", "aws"), help="shortcut for -p target=...")
    run.add_argument("--region", help="shortcut for -p region=...")
    run.add_argument("--run-dir", default="", help="run directory (default runs/<run_id>)")
    run.add_argument("--only", action="append", metavar="PREFIX", help="run only notebooks starting with PREFIX (repeatable, e.g. --only 00 --only 08)")
    run.add_argument("--no-book", action="store_true", help="do not build the book")
    run.add_argument("-v", "--verbose", action="store_true", help="stream the notebooks' output")
    run.set_defaults(func=_cmd_run)
    bk = sub.add_parser("book", help="build the book from an executed run (default: the latest)")
    bk.add_argument("run_dir", nargs="?", default="")
    bk.add_argument("--check", action="store_true", help="open the results pages in headless Chromium; fail on a missing figure")
    bk.set_defaults(func=_cmd_book)
    pr = sub.add_parser("prepare", help="write parameterized, unexecuted notebooks into a run directory (for nbval)")
    pr.add_argument("--profile", default="ci")
    pr.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    pr.add_argument("run_dir", help="the run directory to create")
    pr.set_defaults(func=_cmd_prepare)
    im = sub.add_parser("image-server")  # internal: the detached process of start_image_server
    im.add_argument("--state-file", type=Path, required=True)
    im.set_defaults(func=lambda a: serve_images(a.state_file) or 0)
    ps = sub.add_parser("params", help="list each notebook's parameters and each profile's values")
    ps.set_defaults(func=_cmd_params)
    return p


def _cmd_run(args: argparse.Namespace) -> int:
    overrides = parse_assignments(args.param)
    overrides.update({k: v for k, v in (("target", args.target), ("region", args.region)) if v})
    result = run_lab(load_profile(args.profile), overrides, run_dir=args.run_dir, only=args.only,
                     build_book=not args.no_book, verbose=args.verbose)
    return 0 if result.ok and (args.no_book or result.book_html) else 1


def _cmd_book(args: argparse.Namespace) -> int:
    from swlab import book

    run = open_run(args.run_dir)
    started = time.monotonic()
    try:
        html = book.build_book(run)
        print(f"built in {time.monotonic() - started:.1f} s: {html}")
        if args.check:
            for page in book.check_pages(run):
                print(page.summary())
    except book.BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    run = prepare_notebooks(load_profile(args.profile), parse_assignments(args.param), run_dir=args.run_dir)
    print(run.notebooks_dir)
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    for nb in notebooks():
        print(nb.name)
        for name, p in declared_parameters(nb).items():
            print(f"  {name}: {p['type']} = {p['default']}  # {p['help']}")
    for path in sorted(profiles_dir().glob("*.y*ml")):
        prof = load_profile(str(path))
        print(f"profile {prof.name}: {json.dumps(prof.parameters)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
