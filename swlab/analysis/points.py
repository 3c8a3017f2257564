"""Read an experiments run's points back from its directory alone (``runs/<id>/points/<k>/``).

I/O only: each point's ``manifest.json`` (its record: experiment, axes, resolved
configuration, status, stage times), its ``probes.csv`` (mode cold) and its
collected telemetry (``data/``, :func:`swlab.analysis.dataset.load_run`). The
tables built from them are the ``swlab.analysis.experiment_*`` modules' (:mod:`swlab.analysis.experiment_common`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from swlab.analysis.dataset import RunData, load_run


@dataclass
class PointData:
    """One point: its record (``point`` in its manifest), its stack name, its probes and telemetry."""

    dir: Path
    record: dict[str, Any]
    stack: str
    probes: pd.DataFrame
    data: RunData | None  # None: the point failed before collecting

    @property
    def ok(self) -> bool:
        return self.record.get("status") == "ok" and self.data is not None

    @property
    def axes(self) -> dict[str, Any]:
        return dict(self.record.get("axes") or {})

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.record.get("config") or {})

    def table(self, name: str) -> pd.DataFrame:
        return self.data[name] if self.data is not None else pd.DataFrame()


def load_points(run_dir: str | Path, experiment: str | None = None) -> list[PointData]:
    """The points of the run in ``run_dir`` (of one ``experiment`` if given), in run order."""
    folder = Path(run_dir) / "points"
    out: list[PointData] = []
    for d in sorted(folder.iterdir() if folder.is_dir() else [], key=lambda p: p.name):
        manifest_path = d / "manifest.json"
        if not manifest_path.is_file():
            continue
        manifest = json.loads(manifest_path.read_text())
        record = manifest.get("point") or {}
        if experiment and record.get("experiment") != experiment:
            continue
        probes = pd.read_csv(d / "probes.csv") if (d / "probes.csv").is_file() else pd.DataFrame()
        data = load_run(d / "data") if (d / "data" / "manifest.json").is_file() else None
        stack = str((manifest.get("settings") or {}).get("stack", ""))
        out.append(PointData(dir=d, record=record, stack=stack, probes=probes, data=data))
    return out


def experiment_info(run_dir: str | Path, experiment: str) -> dict[str, Any]:
    """What the profile declared for ``experiment`` (title, description, axes...), from the run's manifest."""
    manifest = json.loads((Path(run_dir) / "manifest.json").read_text())
    declared = (manifest.get("experiments") or {}).get("declared") or []
    return next((e for e in declared if e.get("name") == experiment), {"name": experiment, "title": experiment})


def run_manifest(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "manifest.json").read_text())
