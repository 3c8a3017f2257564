"""Where the lab is: the checkout, its notebooks and profiles, and where run directories live.

The leaf of :mod:`swlab.run`; it also holds :class:`LabError`, the error every part of a run raises.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from swlab.settings import Settings, load_settings

NOTEBOOK_RE = re.compile(r"^\d\d_[A-Za-z0-9_]+\.ipynb$")


class LabError(RuntimeError):
    """A lab run cannot proceed; the message says what to fix."""


def project_root(start: Path | None = None) -> Path:
    """The lab's checkout: the first directory upward holding ``notebooks/`` and ``pyproject.toml``.

    Jupyter runs a notebook with its own folder as working directory, papermill
    with whatever it is given; both find the same root this way.
    """
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "notebooks").is_dir() and (d / "pyproject.toml").is_file():
            return d
    package_parent = Path(__file__).resolve().parents[2]
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


def profiles_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "profiles"


def new_run_id(profile: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{re.sub(r'[^A-Za-z0-9_-]', '-', profile)}"
