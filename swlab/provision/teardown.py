"""Remove everything a deploy created, and prove it.

Resources are found without the outputs file, by the resource modules that
created them: by their deterministic names (:class:`swlab.provision.naming.Names`)
and by listing each service for names starting with ``<stack>-`` whose
``swlab:stack`` tag is this stack (so another stack named ``<stack>-x`` is
never touched). Missing things are fine: teardown is idempotent. The proof is
:func:`remaining`: the Resource Groups Tagging API filtered on the stack tag,
plus direct listings for the services that API does not cover on moto (IAM,
DynamoDB, API Gateway) — both must be empty.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from swlab.provision import api, functions, images, roles, state_machine, storage
from swlab.provision.awserrors import error_code, is_missing
from swlab.provision.changes import Change, ChangeReport, Progress
from swlab.provision.context import ClientFactory, Clients, Finder, stack_names
from swlab.provision.naming import TAG_KEY, Names
from swlab.provision.outputs import default_outputs_path
from swlab.settings import Settings

# The resource modules in reverse order of the deploy (the API references the state machine and the ingest
# function; roles go late). Log groups go before the functions, so the untagged groups a service made for
# them are still recognised.
FINDERS: tuple[Finder, ...] = (
    api.find_usage_plans,
    api.find_api_keys,
    api.find_rest_apis,
    state_machine.find_state_machines,
    storage.find_log_groups,
    functions.find_functions,
    images.find_ecr_repositories,
    roles.find_roles,
    storage.find_tables,
    storage.find_buckets,
)


@dataclass
class TeardownReport:
    stack: str
    deleted: list[Change] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.remaining

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "clean": self.clean,
            "elapsed_s": round(self.elapsed_s, 3),
            "deleted": [c.__dict__ for c in self.deleted],
            "remaining": self.remaining,
        }


def teardown(
    settings: Settings,
    *,
    progress: Progress | None = None,
    client_factory: ClientFactory | None = None,
    outputs_path: str | Path | None = None,
    verify_timeout_s: float | None = None,
) -> TeardownReport:
    """Delete the stack's resources (in dependency order), then list what is left (should be nothing).

    ``outputs_path`` (default: the deploy's) is removed too. On AWS the tagging
    API lags behind deletions, so the check polls up to ``verify_timeout_s``
    (default 120 s on AWS, none locally).
    """
    started = time.monotonic()
    clients, report = Clients(settings, client_factory), ChangeReport(progress)
    names = stack_names(settings, clients)
    for finder in FINDERS:
        for kind, name, delete in finder(clients, names, settings):
            _delete(report, kind, name, delete)
    if verify_timeout_s is None:
        verify_timeout_s = 120.0 if settings.target == "aws" else 0.0
    left = _wait_empty(clients, names, settings, verify_timeout_s)
    for item in left:
        (report.progress or print)(f"REMAINS   {item}")
    Path(outputs_path or default_outputs_path(settings)).unlink(missing_ok=True)
    return TeardownReport(settings.stack, report.changes, left, time.monotonic() - started)


def _delete(report: ChangeReport, kind: str, name: str, delete: Callable[[], None]) -> None:
    try:
        delete()
    except Exception as exc:  # noqa: BLE001 — gone meanwhile is fine; anything else is reported
        if not is_missing(exc):
            report.record(kind, name, "failed", f"{error_code(exc) or type(exc).__name__}: {exc}")
            return
    report.record(kind, name, "deleted")


def remaining(clients: Clients, names: Names, settings: Settings) -> list[str]:
    """What still carries the stack's tag (tagging API) or is listed under its names (direct listings)."""
    tagged = (
        clients("resourcegroupstaggingapi")
        .get_paginator("get_resources")
        .paginate(TagFilters=[{"Key": TAG_KEY, "Values": [names.stack]}])
    )
    left = [f"tagged {r['ResourceARN']}" for page in tagged for r in page["ResourceTagMappingList"]]
    for finder in FINDERS:
        left += [f"{kind} {name}" for kind, name, _ in finder(clients, names, settings)]
    return left


def _wait_empty(clients: Clients, names: Names, settings: Settings, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = remaining(clients, names, settings)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(5.0)
