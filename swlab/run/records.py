"""The manifest's records: what each stage of a run writes into ``manifest.json``, as typed dataclasses.

Each record has a ``KEY`` (its key in the manifest; a load test's key names its
workflow), ``as_dict()`` (``None`` fields left out, so a key is present only once
it means something, e.g. ``stopped_at``) and ``from_dict()`` (unknown keys ignored).
The JSON shape is the one the notebooks wrote by hand before, so old runs still read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class Record:
    KEY: ClassVar[str] = ""

    @property
    def key(self) -> str:
        return self.KEY

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ProfileRecord(Record):
    """The profile the run was made with."""

    KEY: ClassVar[str] = "profile"
    name: str = "interactive"
    description: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class LocalCloudRecord(Record):
    """The local cloud of a run on target ``local``: its endpoint, and its process when the run started it."""

    KEY: ClassVar[str] = "localcloud"
    endpoint: str = ""
    started_by_lab: bool = False
    work_dir: str | None = None
    pid: int | None = None
    options: dict[str, Any] | None = None
    # CPU follows memory: the model ("aws" or "off") and how this machine enforces it (cgroup-v1, cgroup-v2,
    # sigstop, or off), as the local cloud's health endpoint reports them
    cpu_model: str | None = None
    cpu_share_mechanism: str | None = None
    init_cpu: str | None = None  # "boost" (init phases on 2 vCPUs whatever the memory, as measured on AWS) or "memory"
    started_at: str | None = None
    stopped_at: str | None = None


@dataclass(frozen=True)
class ImageServerRecord(Record):
    """The run's local image server (a detached process): where Workflow 1 downloads the sample photos."""

    KEY: ClassVar[str] = "image_server"
    pid: int | None = None
    allowed_host: str = ""
    base_url: str = ""
    sample_urls: list[str] = field(default_factory=list)
    started_at: str | None = None
    stopped_at: str | None = None


@dataclass(frozen=True)
class DeployRecord(Record):
    """What ``01_deploy`` deployed: the outputs file, the options, the changes and how long it took."""

    KEY: ClassVar[str] = "deploy"
    outputs: str = ""
    workflow_type: str = ""
    memory_mb: dict[str, int] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class ModelsRecord(Record):
    """The model weights: what was uploaded (``prepared``) and what the functions used (``weights``)."""

    KEY: ClassVar[str] = "models"
    prepared: dict[str, Any] | None = None
    weights: str | None = None  # "pretrained" | "untrained", as the classified item says


@dataclass(frozen=True)
class SmokeTestRecord(Record):
    """One image through both workflows (a measured period: ``started_at``/``ended_at``)."""

    KEY: ClassVar[str] = "smoke_test"
    started_at: str = ""
    ended_at: str = ""
    image_id: str = ""
    status: str = ""
    ingest_ms: float = 0.0
    classify_ms: float = 0.0


@dataclass(frozen=True)
class LoadTestRecord(Record):
    """One workflow's load test (a measured period): the client's summary, its JTL and JMeter's warnings.

    ``mode``: how Workflow 2's requests were made (``sync``: POST /classify, one answer; ``async``: POST
    /classifications, then GET /images/{id} every ``poll_ms`` until the terminal status, a sample being
    submit -> terminal); Workflow 1 is always ``sync`` (``poll_ms`` None).
    """

    KEY: ClassVar[str] = "load_{workflow}"
    workflow: str = ""
    mode: str = "sync"
    poll_ms: int | None = None
    started_at: str = ""
    ended_at: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    jtl: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.KEY.format(workflow=self.workflow)

    @classmethod
    def key_of(cls, workflow: str) -> str:
        return cls.KEY.format(workflow=workflow)


@dataclass(frozen=True)
class CollectRecord(Record):
    """Where the collected telemetry went, and the window it covers."""

    KEY: ClassVar[str] = "collect"
    data: str = ""
    window: list[str] = field(default_factory=list)
    # the reconciliation (swlab.analysis.reconcile): "N of N accounted for" lines, exceptions; None: not done
    accounted: list[str] = field(default_factory=list)
    lost: int | None = None


@dataclass(frozen=True)
class BookRecord(Record):
    """The book's build: ``ok`` with its index page, or ``failed`` with the error."""

    KEY: ClassVar[str] = "book"
    status: str = ""
    seconds: float = 0.0
    index: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class PointRecord(Record):
    """One point of an experiment (``points/<k>/manifest.json``): what it was, how it went, stage by stage.

    ``began``/``finished`` (not ``started_at``/``ended_at``: the point's measured window is its
    load tests' or probes' own); ``measured_from``: when the measured requests began, after the
    warm-up (an analysis of warm behaviour ignores what came before it).
    """

    KEY: ClassVar[str] = "point"
    index: int = 0
    experiment: str = ""
    analysis: str = ""
    mode: str = ""
    repetition: int = 1
    axes: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"  # pending | running | ok | failed
    stage: str | None = None  # the stage that failed
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    measured_from: str | None = None
    # mode load with Workflow 2: the wait for its executions to end before collecting
    # (swlab.run.measure.Drained.as_dict: listed, started, running, running_arns, waited_s)
    drained: dict[str, Any] = field(default_factory=dict)
    began: str | None = None
    finished: str | None = None


@dataclass(frozen=True)
class ProbeRecord(Record):
    """Requests sent one at a time (forced cold starts, then warm ones): a measured period and its CSV."""

    KEY: ClassVar[str] = "probes"
    started_at: str = ""
    ended_at: str = ""
    csv: str = ""
    requests: int = 0
