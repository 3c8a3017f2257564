"""Provenance of results: the lab's git commit and the versions of the tools that produced them.

Used by the run directories (:mod:`swlab.lab`) and by collected telemetry
(:mod:`swlab.analysis.collect`), so both record the same facts the same way.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

TOOLS = ("swlab", "boto3", "botocore", "moto", "awslambdaric", "pandas", "numpy", "pyarrow", "matplotlib",
         "Pillow", "papermill", "nbclient", "ipykernel", "jupyter-book", "sphinx", "nbval", "torch", "torchvision")


def git_info(root: Path) -> dict[str, Any]:
    """Commit, branch and whether the work tree differs from it (``None`` values outside git)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "branch": git("rev-parse", "--abbrev-ref", "HEAD") if commit else None,
            "dirty": bool(status) if status is not None else None}


def tool_versions(names: Iterable[str] = TOOLS) -> dict[str, str | None]:
    """Installed versions of the lab's tools (``None`` when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
