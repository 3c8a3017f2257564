"""The run directory: the one contract between the notebooks, the runner and the book.

A *run* is one directory, ``runs/<run_id>/``, holding everything a lab run
produced, so that its analysis and its book can be rebuilt from it alone. Every
file has one layout method on :class:`RunDir`; no notebook spells a path::

    manifest.json            manifest_path: profile, parameters, settings, provenance, stage times,
                             and the records below (one key each)
    notebooks/               notebooks_dir: the executed notebooks (papermill's output copies)
    logs/<stage>.log         stage_log(): each stage's stdout/stderr
    localcloud/              localcloud_dir: the local cloud's state file and log (target local)
    imageserver/             image_server_state, image_server_log
    deploy/outputs.json      deploy_outputs
    jmeter/<wf>/             jmeter_dir(wf): results.jtl (jtl(wf)), jmeter.log, dashboard/
    jmeter/<wf>_<field>s.csv data_file(wf): the rows the plan sends
    data/                    data_dir: the collected telemetry (Parquet + its manifest)
    book/                    book_dir: the book's source tree and HTML
    points/<k>/              point(k): an experiment's point k (swlab.run.sweep), itself a run directory
                             (manifest with the point's record and resolved configuration, deploy/,
                             jmeter/, probes.csv, data/)

What a notebook records goes through a typed record (:mod:`swlab.run.records`):
``run.save(record)`` stores it under its key, ``run.load(RecordType)`` reads it back.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from swlab.loadtest.plans import WORKFLOWS
from swlab.run.paths import LabError, new_run_id, project_root, runs_dir
from swlab.run.provenance import collect_provenance
from swlab.run.records import LocalCloudRecord, ProfileRecord, Record
from swlab.settings import Settings, load_settings

MANIFEST = "manifest.json"
LATEST = "latest"

R = TypeVar("R", bound=Record)


def now() -> datetime:
    """The current UTC time (notebooks stamp the start and end of what they measure with it)."""
    return datetime.now(timezone.utc)


def now_iso() -> str:
    return now().isoformat(timespec="seconds")


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
class RunDir:
    """One run directory. The manifest is re-read on every access: notebooks and the runner both write it."""

    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    # ------------------------------------------------------------------ layout

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    @property
    def notebooks_dir(self) -> Path:
        return self.dir / "notebooks"

    def executed_notebook(self, name: str) -> Path:
        return self.path("notebooks", name)

    def stage_log(self, stage: str) -> Path:
        return self.path("logs", f"{stage}.log")

    @property
    def localcloud_dir(self) -> Path:
        return self.dir / "localcloud"

    @property
    def image_server_state(self) -> Path:
        return self.dir / "imageserver" / "state.json"

    @property
    def image_server_log(self) -> Path:
        return self.dir / "imageserver" / "imageserver.log"

    @property
    def deploy_outputs(self) -> Path:
        return self.dir / "deploy" / "outputs.json"

    def jmeter_dir(self, workflow: str) -> Path:
        """Where JMeter writes one workflow's results (results.jtl, jmeter.log, dashboard/)."""
        return self.dir / "jmeter" / workflow

    def jtl(self, workflow: str) -> Path:
        return self.jmeter_dir(workflow) / "results.jtl"

    def data_file(self, workflow: str) -> Path:
        """The rows one workflow's plan sends: ``jmeter/wf1_image_urls.csv``, ``jmeter/wf2_image_ids.csv``."""
        return self.dir / "jmeter" / f"{workflow}_{WORKFLOWS[workflow].field}s.csv"

    @property
    def data_dir(self) -> Path:
        """The collected telemetry (written by the collect stage, read by analysis and cost)."""
        return self.dir / "data"

    @property
    def book_dir(self) -> Path:
        return self.dir / "book"

    @property
    def book_src(self) -> Path:
        return self.book_dir / "src"

    @property
    def book_html(self) -> Path:
        return self.book_dir / "_build" / "html"

    @property
    def points_dir(self) -> Path:
        return self.dir / "points"

    def point(self, index: int) -> RunDir:
        """Point ``index`` (from 1) of an experiments run: ``points/007/``, a run directory of its own."""
        return RunDir(self.points_dir / f"{index:03d}")

    def path(self, *parts: str) -> Path:
        """A path inside the run (parent folders created)."""
        p = self.dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    # ------------------------------------------------------------------ the manifest

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text()) if self.manifest_path.exists() else {}

    def record(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable, or a record) under ``key`` in the manifest, replacing what was there.

        NaN and infinities (pandas' "no value") are written as ``null``: the manifest is strict JSON.
        """
        if isinstance(value, Record):
            value = value.as_dict()
        data = self.manifest()
        data[key] = _strict_json(value)
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str, allow_nan=False) + "\n")
        tmp.replace(self.manifest_path)

    def save(self, record: Record) -> None:
        """Store a typed record under its own key."""
        self.record(record.key, record)

    def load(self, kind: type[R], key: str | None = None) -> R | None:
        """The record of type ``kind`` stored under ``key`` (default: the type's key), or None."""
        data = self.manifest().get(key or kind.KEY)
        return kind.from_dict(data) if isinstance(data, dict) else None

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
        cloud = self.load(LocalCloudRecord)
        if recorded.get("target") == "local" and cloud is not None and cloud.endpoint:
            recorded["endpoint_url"] = cloud.endpoint
        return load_settings(env={}, **{**recorded, **overrides})


def start_run(
    run_dir: str | Path = "",
    settings: Settings | None = None,
    profile: str = "interactive",
    parameters: dict[str, Any] | None = None,
    root: Path | None = None,
) -> RunDir:
    """Create (or take over) a run directory, record provenance and settings, point ``runs/latest`` at it.

    ``run_dir`` empty → a new ``<runs_dir>/<run_id>``. An existing run keeps
    what it recorded (the batch runner creates it before ``00_setup`` runs).
    """
    root = root or project_root()
    base = runs_dir(settings, root)
    if run_dir:
        run = RunDir(Path(run_dir).resolve())
        run.dir.mkdir(parents=True, exist_ok=True)
    else:
        run = RunDir(_new_run_dir(base, new_run_id(profile)))
    if "run_id" not in run.manifest():
        run.record("run_id", run.id)
        run.record("created_at", now_iso())
        run.save(ProfileRecord(name=profile))
    if parameters is not None:
        run.record("parameters", parameters)
    run.record("provenance", collect_provenance(root).as_dict())
    if settings is not None:
        record_settings(run, settings)
    _point_latest(base, run.dir)
    return run


def _new_run_dir(base: Path, run_id: str) -> Path:
    """A directory no other run has: ``run_id``, else ``run_id-2``, ``-3``... (two runs started in the same second)."""
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = base / (run_id if n == 1 else f"{run_id}-{n}")
        try:
            path.mkdir()  # atomic: of two runs, one gets it
            return path
        except FileExistsError:
            continue
    raise LabError(f"{base}: no free run directory for {run_id}")


def record_settings(run: RunDir, settings: Settings) -> None:
    run.record("settings", settings.as_dict())
    run.record("target", settings.target)


def _point_latest(base: Path, target: Path) -> None:
    link = base / LATEST
    if target.parent.resolve() != base.resolve():
        return  # a run outside runs_dir (tests, explicit paths) leaves runs/latest alone
    tmp = base / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.name)
    tmp.replace(link)


def open_run(run_dir: str | Path = "", root: Path | None = None) -> RunDir:
    """An existing run: ``run_dir``, or the latest one when empty."""
    path = Path(run_dir) if run_dir else runs_dir(root=root) / LATEST
    if not (path / MANIFEST).is_file():
        hint = "" if run_dir else " (no latest run: execute notebooks/00_setup.ipynb first)"
        raise LabError(f"{path} is not a lab run: it has no {MANIFEST}{hint}")
    return RunDir(path.resolve())
