"""Precompiled bytecode for a zip package: what a function imports itself, compiled once at packaging.

On AWS the function's code (``/var/task``) is read-only, so Python cannot write ``__pycache__`` and
compiles every source module it imports at every cold start, at the CPU share the memory size gives.
A package that ships the bytecode skips that: measured for ``alexnet_onnx`` (``python -S -B``, its
handler, numpy and onnxruntime imported; median of 3, this 2-core machine, load ~6): 764 ms of CPU
from source, 426 ms with bytecode, i.e. ~0.4 s of Init Duration at 1,536 MB (0.87 of a core).

What is compiled: the function's own modules and ``_shared`` ones (top level of the zip), and the
top-level packages of the function's *direct* requirements (``requirements.txt``: Pillow → ``PIL``,
numpy, onnxruntime), without their ``tests``/``testing`` folders. Transitive dependencies the
function does not import at run time (onnxruntime's sympy: 48 MB of bytecode) stay source only, so
the ONNX zips stay well within Lambda's 250 MB unzipped limit. The ``.pyc`` files are hash-based
and unchecked (PEP 552): deterministic (no timestamps), valid whatever the zip's fixed mtimes, and
Python loads them without reading the source. Only when the packaging interpreter runs the
function's Python version (``cpython-311`` bytecode for ``python3.11``); otherwise nothing is added.
"""

from __future__ import annotations

import py_compile
import re
import sys
import tempfile
from pathlib import Path
from typing import Mapping

SKIPPED_DIRS = frozenset({"tests", "testing", "__pycache__"})


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(lines: list[str]) -> set[str]:
    """``Pillow==12.2.0`` → ``pillow`` (normalised distribution names of requirement lines)."""
    names = set()
    for line in lines:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if match:
            names.add(_normalise(match.group(1)))
    return names


def top_level_names(deps_dir: Path, distributions: set[str]) -> set[str]:
    """Top-level importable names of ``distributions`` installed in ``deps_dir`` (from their dist-info)."""
    names: set[str] = set()
    for info in Path(deps_dir).glob("*.dist-info"):
        if _normalise(info.name.removesuffix(".dist-info").rsplit("-", 1)[0]) not in distributions:
            continue
        top_level = info / "top_level.txt"
        if top_level.is_file():
            names.update(n.strip() for n in top_level.read_text().splitlines() if n.strip())
            continue
        record = info / "RECORD"
        for row in record.read_text().splitlines() if record.is_file() else []:
            first = row.split(",", 1)[0].split("/", 1)[0]
            if first and not first.endswith((".dist-info", ".libs", ".pth", ".data")) and first not in ("..", "bin"):
                names.add(first.removesuffix(".py"))
    return names


def matches_runtime(python_version: str) -> bool:
    return python_version == "%d.%d" % sys.version_info[:2]


def compiled_entries(
    files: Mapping[str, Path], deps_dir: Path | None, requirements: list[str], python_version: str
) -> dict[str, bytes]:
    """Archive name of each ``.pyc`` → its bytes, for the zip's own modules and its direct requirements' packages."""
    if not matches_runtime(python_version):
        return {}
    roots = top_level_names(deps_dir, requirement_names(requirements)) if deps_dir else set()
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="swlab-pyc-") as tmp:
        for arcname, path in sorted(files.items()):
            parts = arcname.split("/")
            if not arcname.endswith(".py") or SKIPPED_DIRS.intersection(parts[:-1]):
                continue
            own = deps_dir is None or not Path(path).is_relative_to(deps_dir)
            if not (own and len(parts) == 1) and parts[0].removesuffix(".py") not in roots:
                continue
            target = "/".join([*parts[:-1], "__pycache__", f"{parts[-1][:-3]}.{sys.implementation.cache_tag}.pyc"])
            cfile = Path(tmp) / target
            try:
                py_compile.compile(
                    str(path),
                    cfile=str(cfile),
                    dfile=arcname,
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                )
            except py_compile.PyCompileError:
                continue  # not valid Python for this version (a template, a py2 leftover): stays source only
            out[target] = cfile.read_bytes()
    return out
