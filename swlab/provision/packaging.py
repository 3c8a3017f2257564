"""Lambda packages built from ``lambdas/<name>/`` by convention.

A function is a folder ``lambdas/<name>/`` with a ``function.json`` (folders
whose name starts with ``_`` are not functions). Its zip holds, at top level:

* the function folder's ``.py`` files,
* every ``lambdas/_shared/*.py`` module,
* its ``requirements.txt`` installed for the Lambda platform (``pip install
  --target --platform manylinux2014_<arch> --only-binary=:all: --python-version
  3.11 --implementation cp``), cached under a directory keyed by the hash of
  the requirements and the platform, so a redeploy does not run pip again.

Zips are deterministic (sorted entries, fixed timestamps and permissions):
the same sources give the same bytes, hence the same ``CodeSha256``, and a
second deploy sees nothing to update.

Environment values in ``function.json`` may hold placeholders such as
``${Bucket}``; :func:`resolve_environment` substitutes them and refuses unknown
ones.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from swlab.provision import bytecode

FUNCTION_FILE = "function.json"
SHARED_DIR = "_shared"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
PACKAGING_KINDS = ("zip", "image")
OVERRIDABLE = ("memory_mb", "timeout_s", "architecture")
_EXCLUDED_PARTS = {"__pycache__"}
_CACHE_FORMAT = "swlab-deps-v1"
_ZIP_FORMAT = "swlab-zip-pyc-v2"  # zips with bytecode (the dependency folders' key stays _CACHE_FORMAT)


class PackagingError(RuntimeError):
    """A function folder, its configuration or its dependencies cannot be packaged; says why."""


@dataclass(frozen=True)
class FunctionConfig:
    """One function as described by its folder's ``function.json``."""

    name: str
    directory: Path
    handler: str = "handler.handler"
    runtime: str = "python3.11"
    memory_mb: int = 128
    timeout_s: int = 3
    architecture: str = "x86_64"
    packaging: str = "zip"
    description: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    access: Mapping[str, Any] = field(default_factory=dict)

    @property
    def python_version(self) -> str:
        """``python3.11`` → ``3.11``."""
        return self.runtime.removeprefix("python")

    @property
    def requirements(self) -> Path:
        return self.directory / "requirements.txt"


def load_function_config(directory: Path) -> FunctionConfig:
    """Read and check ``<directory>/function.json``."""
    path = Path(directory) / FUNCTION_FILE
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PackagingError(f"{path}: cannot read function configuration: {exc}") from exc
    known = set(FunctionConfig.__dataclass_fields__) - {"name", "directory"}
    spec = FunctionConfig(
        name=Path(directory).name, directory=Path(directory).resolve(), **{k: v for k, v in raw.items() if k in known}
    )
    _check_config(spec, path)
    return spec


def _check_config(spec: FunctionConfig, path: Path) -> None:
    if spec.packaging not in PACKAGING_KINDS:
        raise PackagingError(f"{path}: packaging must be one of {PACKAGING_KINDS}, got {spec.packaging!r}")
    if spec.architecture not in ARCHITECTURES:
        raise PackagingError(f"{path}: architecture must be one of {sorted(ARCHITECTURES)}, got {spec.architecture!r}")
    if not re.fullmatch(r"python3\.\d+", spec.runtime):
        raise PackagingError(f"{path}: runtime must be a Python runtime such as python3.11, got {spec.runtime!r}")
    module = spec.handler.rpartition(".")[0]
    if not (spec.directory / f"{module}.py").is_file():
        raise PackagingError(f"{path}: handler {spec.handler!r} needs {module}.py in {spec.directory}")
    if not isinstance(spec.environment, Mapping) or not all(isinstance(v, str) for v in spec.environment.values()):
        raise PackagingError(f"{path}: environment must map names to strings")


def discover_functions(lambdas_dir: Path) -> list[FunctionConfig]:
    """Every ``lambdas_dir/<name>/function.json``, sorted by name (``_*`` folders skipped)."""
    lambdas_dir = Path(lambdas_dir)
    if not lambdas_dir.is_dir():
        raise PackagingError(f"no functions folder at {lambdas_dir}")
    specs = [
        load_function_config(d)
        for d in sorted(lambdas_dir.iterdir())
        if d.is_dir() and not d.name.startswith(("_", ".")) and (d / FUNCTION_FILE).is_file()
    ]
    if not specs:
        raise PackagingError(f"no functions found in {lambdas_dir} (expected <name>/{FUNCTION_FILE})")
    return specs


def apply_overrides(spec: FunctionConfig, overrides: Mapping[str, Mapping[str, Any]] | None) -> FunctionConfig:
    """Per-deploy overrides: ``{"*": {"memory_mb": 512}, "resnet": {"memory_mb": 3008}}``.

    The function's own entry wins over ``"*"``; only memory, timeout and architecture may change.
    """
    merged = {**(overrides or {}).get("*", {}), **(overrides or {}).get(spec.name, {})}
    unknown = set(merged) - set(OVERRIDABLE)
    if unknown:
        raise PackagingError(f"cannot override {sorted(unknown)} of {spec.name}; overridable: {OVERRIDABLE}")
    return replace(spec, **merged)


# -- environment placeholders ---------------------------------------------------------


def substitute(template: str, values: Mapping[str, str], where: str = "value") -> str:
    """Replace ``${Name}`` by ``values[Name]``; an unknown name is an error."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise PackagingError(f"{where}: unknown placeholder ${{{name}}}; known: {sorted(values)}")
        return str(values[name])

    return PLACEHOLDER_RE.sub(one, template)


def resolve_environment(
    spec: FunctionConfig, values: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The function's environment: its ``function.json`` values substituted, then ``extra`` (which wins)."""
    env = {k: substitute(v, values, f"{spec.name}: environment {k}") for k, v in spec.environment.items()}
    env.update({k: substitute(str(v), values, f"{spec.name}: extra environment {k}") for k, v in (extra or {}).items()})
    return dict(sorted(env.items()))


# -- dependencies -----------------------------------------------------------------------


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of ``path`` (comments and blanks dropped); none if it is missing."""
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def pip_platform(architecture: str) -> str:
    """The wheel platform of the Lambda runtime (Amazon Linux 2, glibc 2.26) for an architecture."""
    return f"manylinux2014_{ARCHITECTURES[architecture]}"


def dependencies_key(lines: list[str], platform: str, python_version: str) -> str:
    text = "\n".join([_CACHE_FORMAT, platform, python_version, "cp", *sorted(lines)])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def install_dependencies(spec: FunctionConfig, cache_dir: Path, python: str = sys.executable) -> Path | None:
    """Install ``spec``'s requirements for its Lambda platform into a cached folder; ``None`` if it has none."""
    lines = requirement_lines(spec.requirements)
    if not lines:
        return None
    platform = pip_platform(spec.architecture)
    target = Path(cache_dir) / dependencies_key(lines, platform, spec.python_version)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("\n".join(lines) + "\n")
        cmd = [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(Path(tmp) / "site"),
            "--platform",
            platform,
            "--only-binary=:all:",
            "--python-version",
            spec.python_version,
            "--implementation",
            "cp",
            "-r",
            str(req),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise PackagingError(
                f"{spec.name}: installing {spec.requirements} for {platform} / Python {spec.python_version} "
                "failed. Every requirement needs a binary wheel for that platform: Lambda's python3.11 runtime "
                "is Amazon Linux 2 (glibc 2.26), so pin versions that ship manylinux2014 wheels "
                f"(e.g. Pillow 12.2.0; Pillow 13 needs glibc 2.27).\n{proc.stderr.strip()}"
            )
        try:
            (Path(tmp) / "site").rename(target)
        except OSError:
            if not target.is_dir():  # else another deploy installed the same set meanwhile
                raise
    return target


# -- zip ----------------------------------------------------------------------------------


def _tree_files(root: Path) -> dict[str, Path]:
    files = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and not _EXCLUDED_PARTS.intersection(rel.parts) and path.suffix != ".pyc":
            files[rel.as_posix()] = path
    return files


def package_files(spec: FunctionConfig, shared_dir: Path | None, deps_dir: Path | None) -> dict[str, Path]:
    """Archive name → source file. The function's modules win over shared ones, both over dependencies."""
    files = _tree_files(deps_dir) if deps_dir else {}
    if shared_dir is not None and Path(shared_dir).is_dir():
        files.update({p.name: p for p in sorted(Path(shared_dir).glob("*.py"))})
    files.update({p.name: p for p in sorted(spec.directory.glob("*.py"))})
    return dict(sorted(files.items()))


def deterministic_zip(files: Mapping[str, Path], generated: Mapping[str, bytes] | None = None) -> bytes:
    """A zip of ``files`` (and ``generated`` entries: name → bytes, mode 644) with sorted entries, a fixed
    timestamp and fixed permissions."""
    entries: dict[str, Path | bytes] = {**files, **(generated or {})}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for arcname in sorted(entries):
            source = entries[arcname]
            info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr carries the mode
            mode = 0o755 if isinstance(source, Path) and source.stat().st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, source.read_bytes() if isinstance(source, Path) else source, compresslevel=6)
    return buf.getvalue()


def code_sha256(data: bytes) -> str:
    """Lambda's ``CodeSha256`` of a zip: base64 of its SHA-256."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass(frozen=True)
class CodeSource:
    """Deployable code: a zip (bytes, or an S3 location for large zips) or a container image."""

    kind: str  # "zip" | "image"
    sha256: str  # what Lambda reports as CodeSha256
    code: Mapping[str, Any]  # the ``Code`` argument of create_function
    size_bytes: int = 0


@dataclass(frozen=True)
class Package:
    """A built zip and what went into it."""

    function: str
    zip_bytes: bytes
    code_sha256: str
    files: tuple[str, ...]
    dependencies: Path | None

    @property
    def size_bytes(self) -> int:
        return len(self.zip_bytes)


def build_zip_package(
    spec: FunctionConfig, shared_dir: Path | None, cache_dir: Path, with_dependencies: bool = True
) -> Package:
    """Build ``spec``'s deterministic zip (dependencies installed unless ``with_dependencies`` is false).

    Zips are cached under ``cache_dir/zips`` by the hash of their inputs (the
    dependency folder's key and every source file's bytes), so a redeploy of
    unchanged functions does not compress their dependencies again. They carry the
    bytecode of what the function imports itself (:mod:`swlab.provision.bytecode`).
    """
    deps = install_dependencies(spec, cache_dir) if with_dependencies else None
    files = package_files(spec, shared_dir, deps)
    pyc = bytecode.matches_runtime(spec.python_version)
    cached = Path(cache_dir) / "zips" / f"{_inputs_key(files, deps, spec.requirements if pyc else None)}.zip"
    if cached.is_file():
        data = cached.read_bytes()
    else:
        lines = requirement_lines(spec.requirements) if with_dependencies else []
        data = deterministic_zip(files, bytecode.compiled_entries(files, deps, lines, spec.python_version))
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(cached)
    return Package(spec.name, data, code_sha256(data), tuple(files), deps)


def _inputs_key(files: Mapping[str, Path], deps: Path | None, requirements: Path | None = None) -> str:
    """Hash of a zip's inputs; files of the (immutable, content-keyed) dependency folder count by that key.

    With ``requirements`` the zip carries bytecode: the interpreter's cache tag and the requirement
    lines (which packages are compiled) count too."""
    pyc = f"{_ZIP_FORMAT}\n{sys.implementation.cache_tag}\n{requirement_lines(requirements)}" if requirements else ""
    digest = hashlib.sha256(f"{_CACHE_FORMAT}\n{deps.name if deps else ''}\n{pyc}\n".encode())
    for arcname, path in sorted(files.items()):
        if deps is not None and path.is_relative_to(deps):
            continue
        mode = "x" if path.stat().st_mode & 0o111 else "-"
        digest.update(f"{arcname}\0{mode}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


def default_cache_dir() -> Path:
    """``~/.cache/swlab/lambda-deps``: installed dependencies, keyed by requirements and platform."""
    return Path.home() / ".cache" / "swlab" / "lambda-deps"


def clear_cache(cache_dir: Path) -> None:
    shutil.rmtree(cache_dir, ignore_errors=True)
