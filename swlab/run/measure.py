"""The measured stages of a run: the smoke test (``02``) and the load tests (``03``, ``04``).

Each records a measured period (``started_at``/``ended_at``) in the manifest;
the collect stage takes the telemetry of the window they span. After a load,
:func:`wait_executions_done` lets the executions it started finish before that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import pandas as pd
from botocore.exceptions import ClientError
from matplotlib.figure import Figure

from swlab.analysis.collect import fetch_executions
from swlab.loadtest.jtl import parse_jtl, returned_ids, summarize_jtl
from swlab.loadtest.plans import WORKFLOWS, ApiEndpoint, LoadProfile, write_data_file
from swlab.loadtest.progress import Progress, default_progress
from swlab.loadtest.runner import JMeterRun, run_workflow
from swlab.run import smoke
from swlab.run.paths import LabError
from swlab.run.progress import ProgressFile
from swlab.run.provisioning import api_endpoint, deployed_outputs
from swlab.run.records import LoadTestRecord, ModelsRecord, SmokeTestRecord
from swlab.run.rundir import RunDir, now
from swlab.run.services import image_urls
from swlab.settings import client

# ----------------------------------------------------------------------------- the smoke test


@dataclass
class SmokeTest:
    """One image through both workflows over HTTP, as JMeter will send them (``02_smoke_test``)."""

    run: RunDir
    image_urls: list[str] = field(default_factory=list)  # public URLs on AWS; empty: the run's image server

    def __post_init__(self) -> None:
        self.settings = self.run.settings()
        self.outputs = deployed_outputs(self.run)
        self.url = image_urls(self.run, self.image_urls)[0]
        self.started_at: datetime = now()
        self.ended_at: datetime | None = None
        self.ingested: smoke.Answer | None = None
        self.classified: smoke.Answer | None = None
        self.item: dict[str, Any] = {}

    def ingest(self) -> smoke.Answer:
        api = self.outputs.api
        self.ingested = smoke.post(api["endpoints"]["ingest"], {"image_url": self.url}, api["api_key"])
        return self.ingested

    def classify(self) -> dict[str, Any]:
        """``POST /classify``, then the image's item once Workflow 2 has written its outcome."""
        if self.ingested is None:
            raise RuntimeError("ingest() first")
        api, image_id = self.outputs.api, self.ingested.body["image_id"]
        self.classified = smoke.post(api["endpoints"]["classify"], {"image_id": image_id}, api["api_key"])
        self.item = smoke.wait_for_outcome(client(self.settings, "dynamodb"), self.outputs.table, image_id)
        self.ended_at = now()
        return self.item

    def outcome(self) -> dict[str, Any]:
        return {
            k: self.item.get(k) for k in ("image_id", "status", "consensus", "models_contributing", "weights", "error")
        }

    def step_images_figure(self) -> Figure:
        return smoke.step_images_figure(client(self.settings, "s3"), self.outputs.bucket, self.item["image_id"])

    def record(self) -> SmokeTestRecord:
        """The measured period and the timings; the weights the models used (for the book's banner)."""
        if self.ingested is None or self.classified is None or self.ended_at is None:
            raise RuntimeError("ingest() and classify() first")
        record = SmokeTestRecord(
            started_at=self.started_at.isoformat(),
            ended_at=self.ended_at.isoformat(),
            image_id=self.item["image_id"],
            status=self.item["status"],
            ingest_ms=self.ingested.elapsed_ms,
            classify_ms=self.classified.elapsed_ms,
        )
        self.run.save(record)
        models = self.run.load(ModelsRecord) or ModelsRecord()
        self.run.save(ModelsRecord(prepared=models.prepared, weights=self.item.get("weights")))
        return record

    def labels(self) -> pd.DataFrame:
        return smoke.labels_table(self.item).pivot(index="rank", columns="model", values=["label", "probability"])


# ----------------------------------------------------------------------------- the load tests


def workflow_rows(run: RunDir, workflow: str, given_urls: list[str] | None = None) -> list[str]:
    """What a workflow's plan sends: image URLs (wf1), or the ids Workflow 1's load test got back (wf2)."""
    if workflow == "wf1":
        return image_urls(run, given_urls)
    return returned_ids(parse_jtl(run.jtl("wf1")))


@dataclass
class LoadTest:
    """One workflow load-tested with JMeter at a fixed rate (``03``/``04``)."""

    run: RunDir
    workflow: str
    profile: LoadProfile
    endpoint: ApiEndpoint
    rows: int
    result: JMeterRun | None = None
    samples: pd.DataFrame | None = None

    @property
    def mode(self) -> str:
        """``sync`` or ``async``: Workflow 2's request mode (Workflow 1 is always ``sync``)."""
        return self.profile.mode if self.workflow == "wf2" else "sync"

    def mode_text(self) -> str:
        """One sentence for the load-test page: the mode, and what a sample's latency then measures."""
        base = self.endpoint.base_path
        if self.workflow == "wf1":
            return f"Mode **sync**: `POST {base}/ingest` answers when the image is stored; a sample is that request."
        if self.mode == "async":
            return (
                f"Mode **async**: `POST {base}/classifications` answers `202` with the execution's id at once, then "
                f"`GET {base}/images/{{image_id}}` every {self.profile.poll_ms} ms until a terminal status; a "
                "sample's latency is submit → terminal, so it does not depend on API Gateway's 29 s limit."
            )
        return (
            f"Mode **sync**: `POST {base}/classify` answers when the execution ends (`StartSyncExecution` with "
            "Express); a sample's latency is that request's, and an execution past API Gateway's 29 s is a 504."
        )

    def describe(self) -> str:
        what = "URLs" if self.workflow == "wf1" else "ingested images"
        asynchronous = self.mode == "async"
        path = f"{self.endpoint.base_path}/{'classifications' if asynchronous else WORKFLOWS[self.workflow].label}"
        polling = (
            f", each polling {self.endpoint.base_path}/images/{{image_id}} every {self.profile.poll_ms} ms until its "
            "terminal status (a sample is submit -> terminal)"
            if asynchronous
            else ""
        )
        return (
            f"{self.profile.samples_planned} requests to {self.endpoint.protocol}://{self.endpoint.host}:"
            f"{self.endpoint.port}{path} over {self.profile.duration_s} s, from {self.rows} {what}{polling}"
        )

    def execute(self, progress: Callable[[Progress], None] | None = None) -> JMeterRun:
        """Run JMeter, then record the measured period, the client's summary and JMeter's warnings."""
        started_at = now()
        shown, to_runner = progress or default_progress(), ProgressFile(self.run.dir)

        def report(p: Progress) -> None:
            shown(p)
            to_runner(p.line(), force=p.done)  # the batch runner's live line (swlab.run.progress)

        self.result = run_workflow(
            self.workflow,
            self.endpoint,
            self.run.data_file(self.workflow),
            self.run.jmeter_dir(self.workflow),
            self.profile,
            progress=report,
        )
        ended_at = now()
        self.samples = parse_jtl(self.result.jtl)
        self.run.save(
            LoadTestRecord(
                workflow=self.workflow,
                mode=self.mode,
                poll_ms=self.profile.poll_ms if self.mode == "async" else None,
                started_at=started_at.isoformat(),
                ended_at=ended_at.isoformat(),
                summary=self.summary(),
                jtl=str(self.result.jtl),
                warnings=list(self.result.warnings),
            )
        )
        return self.result

    def summary(self) -> dict[str, float]:
        if self.result is None or self.samples is None:
            raise RuntimeError("execute() first")
        return summarize_jtl(self.samples, self.result.samples_planned)

    def first_samples(self, n: int = 10) -> pd.DataFrame:
        if self.samples is None:
            raise RuntimeError("execute() first")
        return self.samples[["timeStamp", "elapsed", "responseCode", "success", "sample_id", "failureMessage"]].head(n)


def prepare_load_test(
    run: RunDir,
    workflow: str,
    rate_per_s: float,
    duration_s: int,
    given_urls: list[str] | None = None,
    mode: str = "sync",
    poll_ms: int = 500,
) -> LoadTest:
    """The endpoint, the load profile and the data file of one workflow's load test.

    ``mode`` (Workflow 2): ``sync`` posts /classify; ``async`` posts /classifications and polls
    /images/{id} every ``poll_ms`` until the submission's terminal status.
    """
    profile = LoadProfile(rate_per_s=rate_per_s, duration_s=duration_s, mode=mode, poll_ms=poll_ms)
    rows = workflow_rows(run, workflow, given_urls)
    write_data_file(run.data_file(workflow), rows, WORKFLOWS[workflow].field)
    return LoadTest(run, workflow, profile, api_endpoint(run), len(rows))


def client_samples(run: RunDir) -> pd.DataFrame:
    """The load tests' samples, as JMeter recorded them (a workflow the run did not load has none)."""
    frames = [parse_jtl(run.jtl(wf)) for wf in WORKFLOWS if run.jtl(wf).is_file()]
    if not frames:
        raise LabError(f"{run.dir}: no JMeter results (jmeter/<workflow>/results.jtl): run a load test first")
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- after a load: let it finish


@dataclass
class Drained:
    """What :func:`wait_executions_done` saw: executions started since the load began, and those still running."""

    listed: bool  # False: the state machine's executions cannot be listed (AWS Express): nothing waited for
    started: int = 0
    running: list[str] = field(default_factory=list)  # execution ARNs still RUNNING when the wait ended
    waited_s: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "started": self.started,
            "running": len(self.running),
            "running_arns": list(self.running),
            "waited_s": round(self.waited_s, 2),
            **({"error": self.error} if self.error else {}),
        }


def wait_executions_done(
    sfn: Any,
    state_machine_arn: str,
    since: datetime,
    timeout_s: float,
    progress: Callable[[str], None] | None = None,
    poll_s: float = 1.0,
    every_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Drained:
    """Poll until every execution of ``state_machine_arn`` started since ``since`` is terminal, at most ``timeout_s``.

    At a high arrival rate the cloud lags the offered load: when JMeter stops, executions it started are
    still RUNNING, and collecting then would miss their ends (and their latency). This waits for them;
    those still running after ``timeout_s`` are returned (the caller records them as such). A line goes to
    ``progress`` every ``every_s`` while some run. An Express state machine on AWS cannot be listed: then
    nothing is waited for (``listed`` False, the error kept).
    """
    started_at = clock()
    last_said = -every_s
    while True:
        try:
            executions = fetch_executions(sfn, state_machine_arn, since, now())
        except ClientError as err:
            return Drained(listed=False, waited_s=clock() - started_at, error=" ".join(str(err).split())[:300])
        running = [e["executionArn"] for e in executions if e.get("status") == "RUNNING"]
        waited = clock() - started_at
        if not running or waited >= timeout_s:
            return Drained(listed=True, started=len(executions), running=running, waited_s=waited)
        if progress is not None and waited - last_said >= every_s:
            last_said = waited
            progress(
                f"{len(running)} of {len(executions)} executions still running ({waited:.0f}/{timeout_s:.0f} s waited)"
            )
        sleep(min(poll_s, max(timeout_s - waited, 0.0)))
