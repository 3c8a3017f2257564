"""What a load test sends and where: the API endpoint, the load profile, the plans' properties and data files.

:func:`plan_properties` turns an :class:`ApiEndpoint` and a :class:`LoadProfile`
into the JMeter properties the plans in ``jmeter/`` read (``${__P(name)}``);
the data files are one-column CSVs the plans read row by row.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

PLANS_DIR = Path(__file__).resolve().parent.parent.parent / "jmeter"
# Every property the plans read with ${__P(name,default)}; the launcher passes exactly these.
PLAN_PROPERTIES = (
    "protocol",
    "host",
    "port",
    "base_path",
    "api_key",
    "rate",
    "duration",
    "warmup_s",
    "timeout_ms",
    "data_file",
)
# Properties only one workflow's plan reads (on top of PLAN_PROPERTIES).
WORKFLOW_PROPERTIES: dict[str, tuple[str, ...]] = {"wf1": (), "wf2": ("mode", "poll_ms")}
# Workflow 2's request modes: ``sync`` posts /classify (StartSyncExecution, one answer); ``async`` posts
# /classifications (202) and polls GET /images/{id} until this submission's terminal status.
MODES = ("sync", "async")


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


@dataclass(frozen=True)
class ApiEndpoint:
    """Where the lab's HTTP API answers and the API key it wants."""

    host: str
    port: int
    protocol: str = "http"
    base_path: str = ""
    api_key: str = ""

    @classmethod
    def from_url(cls, url: str, api_key: str = "") -> "ApiEndpoint":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.hostname, port, parts.scheme, parts.path.rstrip("/"), api_key)

    @classmethod
    def from_file(cls, path: Path) -> "ApiEndpoint":
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
    timeout_ms: int = 35_000  # API Gateway answers within 29 s; the plans wait at most this long after the last arrival
    warmup_s: float = 1.0  # arrival-free pause before the first arrival (after the plans' setUp)
    mode: str = "sync"  # Workflow 2 only: sync (POST /classify) or async (POST /classifications, then polling)
    poll_ms: int = 500  # Workflow 2 async: pause between two GET /images/{id}

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.poll_ms <= 0:
            raise ValueError(f"poll_ms must be positive, got {self.poll_ms!r}")

    @property
    def samples_planned(self) -> int:
        return round(self.rate_per_s * self.duration_s)


def plan_path(workflow: str, plans_dir: Path | None = None) -> Path:
    return (plans_dir or PLANS_DIR) / WORKFLOWS[workflow].plan


def plan_properties(
    endpoint: ApiEndpoint, profile: LoadProfile, data_file: Path, workflow: str | None = None
) -> dict[str, str]:
    """The JMeter properties (``-Jname=value``) a plan reads: PLAN_PROPERTIES, plus ``workflow``'s own ones."""
    base = endpoint.base_path.strip("/")
    extra = {"mode": profile.mode, "poll_ms": str(int(profile.poll_ms))}
    common = {
        "protocol": endpoint.protocol,
        "host": endpoint.host,
        "port": str(endpoint.port),
        "base_path": f"/{base}" if base else "",
        "api_key": endpoint.api_key,
        "rate": f"{profile.rate_per_s:g}",
        "duration": str(int(profile.duration_s)),
        "warmup_s": f"{profile.warmup_s:g}",
        "data_file": str(Path(data_file).resolve()),
        "timeout_ms": str(int(profile.timeout_ms)),
    }
    return common | {name: extra[name] for name in WORKFLOW_PROPERTIES.get(workflow or "", ())}


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
