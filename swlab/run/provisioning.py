"""The run's stack: deploy it (``01_deploy``), read what was deployed, delete it (``08_teardown``).

The one place where a run calls :mod:`swlab.provision`; the notebooks call these.
What ``08_teardown`` removes is decided by :func:`swlab.run.services.plan_teardown`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

from swlab.loadtest.plans import ApiEndpoint
from swlab.provision.deploy import PLANNED, DeployResult, deploy
from swlab.provision.model_weights import onnx_substitutions, prepare_models, prepare_onnx, weights_substitutions
from swlab.provision.options import target_defaults
from swlab.provision.outputs import DeployOutputs, load_outputs
from swlab.provision.teardown import TeardownReport, teardown
from swlab.run.progress import ProgressFile
from swlab.run.records import DeployRecord, ModelsRecord
from swlab.run.rundir import RunDir
from swlab.run.services import allowed_hosts, local_cloud_gone, plan_teardown
from swlab.settings import Settings, client


def deployed_outputs(run: RunDir) -> DeployOutputs:
    """What ``01_deploy`` deployed for this run."""
    return load_outputs(run.deploy_outputs)


def api_endpoint(run: RunDir) -> ApiEndpoint:
    """The run's HTTP API, as the load tests address it."""
    api = deployed_outputs(run).api
    return ApiEndpoint.from_url(api["base_url"], api["api_key"])


def merged_overrides(given: dict[str, Any] | None, memory_mb: dict[str, int]) -> dict[str, dict[str, Any]]:
    """``deploy_options["function_overrides"]`` (e.g. ``{"*": {"architecture": "arm64"}}``) with ``memory_mb`` on top."""
    out: dict[str, dict[str, Any]] = {name: dict(values) for name, values in (given or {}).items()}
    for name, mb in memory_mb.items():
        out.setdefault(name, {})["memory_mb"] = mb
    return out


class ChangeCounter:
    """A deploy's or teardown's change lines, shown as before and counted into the run's progress line
    (:mod:`swlab.run.progress`): "functions deployed 3 of 9" or "resources deleted 12"."""

    DONE = re.compile(r"^(created|updated|unchanged)\s+lambda function\s")
    DELETED = re.compile(r"^deleted\s")

    def __init__(self, run: RunDir, show: Callable[[str], None] | None, teardown: bool = False) -> None:
        self.show, self.teardown, self.file = show, teardown, ProgressFile(run.dir, every_s=0.0)
        self.planned: int | None = None
        self.done = 0

    def __call__(self, line: str) -> None:
        if self.show is not None:
            self.show(line)
        planned = re.match(rf"^{PLANNED}\s+(\d+) lambda functions", line)
        if planned:
            self.planned = int(planned.group(1))
        elif (self.DELETED if self.teardown else self.DONE).match(line):
            self.done += 1
        self.file(self.line())

    def line(self) -> str:
        if self.teardown:
            return f"resources deleted {self.done}"
        return f"functions deployed {self.done}" + ("" if self.planned is None else f" of {self.planned}")


@dataclass
class Deployment:
    """``01_deploy``: the stack deployed with the run's settings, the image server's allow-list and the options."""

    run: RunDir
    workflow_type: str = "EXPRESS"
    memory_mb: dict[str, int] = field(default_factory=dict)
    # deploy options over the target's defaults (swlab.provision.options.TARGET_DEFAULTS)
    deploy_options: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] | None = print
    settings: Settings = field(init=False)
    result: DeployResult | None = field(default=None, init=False)
    prepared: dict[str, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.settings = self.run.settings()

    def describe(self) -> str:
        s = self.settings
        return f"deploying stack {s.stack} on {s.target} ({s.region}), Workflow 2 as {self.workflow_type}"

    def deploy(self, **placeholders: str) -> DeployResult:
        """Create or update the stack; ``placeholders`` are added to the allow-list placeholder."""
        self.run.deploy_outputs.parent.mkdir(parents=True, exist_ok=True)
        options = {**target_defaults(self.settings.target), **self.deploy_options}
        overrides = merged_overrides(options.pop("function_overrides", None), self.memory_mb)
        self.result = deploy(
            self.settings,
            progress=ChangeCounter(self.run, self.progress),
            **options,
            placeholders={"AllowedHosts": allowed_hosts(self.run), **placeholders},
            workflow_type=self.workflow_type,
            outputs_path=self.run.deploy_outputs,
            function_overrides=overrides,
        )
        return self.result

    @property
    def outputs(self) -> DeployOutputs:
        if self.result is None:
            raise RuntimeError("deploy() first")
        return self.result.outputs

    def prepare_model_weights(self) -> dict[str, Any]:
        """Upload the cached pretrained weights; redeploy with their keys when there are any. Recorded."""
        s3, options = client(self.settings, "s3"), self.deploy_options
        self.prepared = prepare_models(s3, self.outputs.bucket, weights=options.get("weights", "auto"))
        keys = weights_substitutions(self.prepared)
        if options.get("inference") == "onnx":  # the ONNX models exported with the same weights
            exported = prepare_onnx(s3, self.outputs.bucket, self.prepared)
            keys.update(onnx_substitutions(exported))
            for name, model in exported.items():
                self.prepared[name] = {**self.prepared[name], "onnx_key": model["key"], "onnx_sha256": model["sha256"]}
        if any(keys.values()):
            self.deploy(**keys)
        self.run.save(ModelsRecord(prepared=self.prepared))
        return self.prepared

    def record(self) -> DeployRecord:
        result = self.result
        if result is None:
            raise RuntimeError("deploy() first")
        record = DeployRecord(
            outputs=str(result.outputs_path),
            workflow_type=self.workflow_type,
            memory_mb=dict(self.memory_mb),
            options={**target_defaults(self.settings.target), **self.deploy_options},
            changes=result.report.counts(),
            seconds=round(result.elapsed_s, 2),
        )
        self.run.save(record)
        return record

    def summary(self) -> dict[str, Any]:
        o = self.outputs
        return {
            "state machine": o.state_machine.get("arn"),
            "API": o.api["base_url"],
            "bucket": o.bucket,
            "table": o.table,
        }


def delete_stack(
    run: RunDir, keep_local_cloud: bool = False, progress: Callable[[str], None] | None = print
) -> TeardownReport | None:
    """``08_teardown``: delete the stack unless :func:`plan_teardown` keeps it; the report (None when kept).

    When the cloud is gone nothing can be deleted: the manifest's ``teardown`` then carries
    ``cloud_gone`` and a one-line ``summary`` of what is left (the runner prints it): nothing on the
    local target (the local cloud's state died with it), the deployed resources on AWS.
    """
    settings = run.settings()
    if not plan_teardown(settings.target, keep_local_cloud).delete_stack:
        return None
    if local_cloud_gone(run):
        return _cloud_gone(run, TeardownReport(settings.stack), LOCAL_CLOUD_GONE, progress)
    try:
        report = teardown(
            settings, progress=ChangeCounter(run, progress, teardown=True), outputs_path=run.deploy_outputs
        )
    except (BotoConnectionError, HTTPClientError) as exc:
        where = "the local cloud" if settings.target == "local" else f"AWS ({settings.region})"
        left = deployed_resources(run) or [f"whatever stack {settings.stack} had created"]
        line = (
            f"{where} did not answer the teardown ({type(exc).__name__}), nothing was deleted; left: "
            f"{', '.join(left)}; delete them with scripts/teardown --stack {settings.stack} "
            f"--target {settings.target} once it answers"
        )
        return _cloud_gone(run, TeardownReport(settings.stack, remaining=left), line, progress)
    run.record("teardown", report.as_dict())
    return report


LOCAL_CLOUD_GONE = (
    "the local cloud is gone (it died during the run): its state died with it, so nothing is left on the local target"
)


def _cloud_gone(
    run: RunDir, report: TeardownReport, line: str, progress: Callable[[str], None] | None
) -> TeardownReport:
    run.record("teardown", {**report.as_dict(), "cloud_gone": True, "summary": line})
    if progress is not None:
        progress(line)
    return report


def deployed_resources(run: RunDir) -> list[str]:
    """The resources the run's deploy outputs name (what is left when nothing could be deleted)."""
    try:
        o = deployed_outputs(run)
    except (OSError, ValueError, LookupError):
        return []
    return [
        f"bucket {o.bucket}",
        f"table {o.table}",
        *(f"function {f.get('function_name', name)}" for name, f in o.functions.items()),
        *([f"state machine {o.state_machine['arn']}"] if o.state_machine.get("arn") else []),
        *([f"API {o.api['id']}"] if o.api.get("id") else []),
        f"the IAM roles of stack {o.stack}",
    ]
