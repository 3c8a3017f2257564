"""Provenance of results: the lab's git commit, the versions of the tools that produced them, the machine.

One record, :class:`Provenance`, used by the run directories (:mod:`swlab.run.rundir`)
and by collected telemetry (:mod:`swlab.analysis`), so both record the same facts the
same way. A leaf: it imports nothing else of the lab.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

TOOLS = (
    "swlab",
    "boto3",
    "botocore",
    "moto",
    "awslambdaric",
    "pandas",
    "numpy",
    "pyarrow",
    "matplotlib",
    "Pillow",
    "papermill",
    "nbclient",
    "ipykernel",
    "jupyter-book",
    "sphinx",
    "nbval",
    "torch",
    "torchvision",
)
REPO_ROOT = Path(__file__).resolve().parents[2]  # the checkout this package runs from


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
    return {
        "commit": commit,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD") if commit else None,
        "dirty": bool(status) if status is not None else None,
    }


def tool_versions(names: Iterable[str] = TOOLS) -> dict[str, str | None]:
    """Installed versions of the lab's tools (``None`` when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def platform_info() -> dict[str, Any]:
    return {"system": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()}


@dataclass(frozen=True)
class Provenance:
    """What produced a set of results: ``git`` (commit, branch, dirty), ``tools``, ``platform``, when recorded."""

    git: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str | None] = field(default_factory=dict)
    platform: dict[str, Any] = field(default_factory=dict)
    recorded_at: str = ""

    @property
    def commit_label(self) -> str | None:
        """The commit, with ``-dirty`` appended when the work tree had changes; None outside git."""
        commit = self.git.get("commit")
        return commit and commit + ("-dirty" if self.git.get("dirty") else "")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Provenance":
        return cls(**{k: data[k] for k in ("git", "tools", "platform", "recorded_at") if k in data})


def collect_provenance(root: Path | None = None, tools: Iterable[str] = TOOLS) -> Provenance:
    """The provenance of results produced now from the checkout at ``root`` (default: this package's)."""
    return Provenance(
        git=git_info(root or REPO_ROOT),
        tools=tool_versions(tools),
        platform=platform_info(),
        recorded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
