"""What deploy and teardown share: resource names, the stack tag, the change report, AWS helpers.

Every resource of a stack is named ``<stack>-...`` and tagged
``{"swlab:stack": <stack>}``; names are computed here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from botocore.exceptions import ClientError

from swlab.settings import Settings, client

TAG_KEY = "swlab:stack"
STAGE = "lab"
log = logging.getLogger("swlab.deploy")
Progress = Callable[[str], None]
ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class Names:
    """The names of a stack's resources (deterministic: teardown finds them without the outputs file)."""

    stack: str
    account_id: str
    region: str

    @property
    def bucket(self) -> str:
        name = f"{self.stack}-images-{self.account_id}-{self.region}"
        if len(name) <= 63:
            return name
        digest = hashlib.sha256(f"{self.account_id}/{self.region}".encode()).hexdigest()[:10]
        return f"{self.stack}-images-{digest}"

    @property
    def table(self) -> str:
        return f"{self.stack}-images"

    def function(self, name: str) -> str:
        return f"{self.stack}-{name}"

    def function_log_group(self, name: str) -> str:
        return f"/aws/lambda/{self.function(name)}"

    def lambda_role(self, name: str) -> str:
        return f"{self.stack}-lambda-{name}"[:64]

    @property
    def states_role(self) -> str:
        return f"{self.stack}-states"

    @property
    def apigw_role(self) -> str:
        return f"{self.stack}-apigateway"

    @property
    def state_machine(self) -> str:
        return f"{self.stack}-classify"

    @property
    def state_machine_log_group(self) -> str:
        return f"/aws/vendedlogs/states/{self.stack}-classify"

    @property
    def api(self) -> str:
        return f"{self.stack}-api"

    @property
    def api_key(self) -> str:
        return f"{self.stack}-key"

    @property
    def usage_plan(self) -> str:
        return f"{self.stack}-plan"

    def ecr_repository(self, name: str) -> str:
        return f"{self.stack}-{name}"

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account_id}:{resource}"


def stack_tags(stack: str) -> dict[str, str]:
    return {TAG_KEY: stack}


# -- change report ---------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What happened to one resource: created, updated, unchanged, deleted, absent or failed."""

    kind: str
    name: str
    action: str
    detail: str = ""


@dataclass
class ChangeReport:
    """Every resource touched, in order, each reported to ``progress`` as it happens (one line each)."""

    progress: Progress | None = None
    changes: list[Change] = field(default_factory=list)

    def record(self, kind: str, name: str, action: str, detail: str = "") -> Change:
        change = Change(kind, name, action, detail)
        self.changes.append(change)
        line = f"{action:<9} {kind:<20} {name}" + (f"  ({detail})" if detail else "")
        (self.progress or log.info)(line)
        return change

    def by_action(self, action: str) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    @property
    def all_unchanged(self) -> bool:
        return all(c.action == "unchanged" for c in self.changes)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.action] = out.get(c.action, 0) + 1
        return out

    def as_list(self) -> list[dict[str, str]]:
        return [asdict(c) for c in self.changes]

    def summary(self) -> str:
        return ", ".join(f"{n} {a}" for a, n in sorted(self.counts().items())) or "nothing"


def outcome(created: bool, updated: Iterable[str]) -> tuple[str, str]:
    """``(action, detail)`` for a resource that was created, or updated in the listed aspects, or neither."""
    updated = list(updated)
    if created:
        return "created", ""
    return ("updated", ", ".join(updated)) if updated else ("unchanged", "")


# -- AWS helpers -----------------------------------------------------------------------------


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def is_missing(exc: BaseException) -> bool:
    """True for the "no such resource" errors of the services the lab uses."""
    code = error_code(exc)
    return code in {
        "NoSuchEntity", "ResourceNotFoundException", "NotFoundException", "NoSuchBucket", "404",
        "StateMachineDoesNotExist", "NoSuchBucketPolicy", "NoSuchTagSet", "NoSuchTagSetError",
        "NoSuchPublicAccessBlockConfiguration", "ServerSideEncryptionConfigurationNotFoundError",
        "RepositoryNotFoundException", "NoSuchLifecycleConfiguration",
    } or (code == "InvalidParameterValueException" and "does not exist" in str(exc))


def retry(call: Callable[[], Any], when: Callable[[ClientError], bool], timeout_s: float = 90.0,
          what: str = "", progress: Progress | None = None) -> Any:
    """``call()``, retried with backoff while it raises a ClientError that ``when`` accepts.

    Used where AWS needs time (a new IAM role is usable by Lambda and Step
    Functions only after a few seconds); the local cloud succeeds at once.
    """
    deadline, delay, told = time.monotonic() + timeout_s, 1.0, False
    while True:
        try:
            return call()
        except ClientError as exc:
            if not when(exc) or time.monotonic() + delay > deadline:
                raise
            if not told and what:
                (progress or log.info)(f"waiting   {what}: {error_code(exc)}, retrying")
                told = True
            time.sleep(delay)
            delay = min(delay * 1.6, 8.0)


def canonical(doc: Any) -> str:
    """A JSON document (or its text) in one canonical spelling, for comparisons."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


class Clients:
    """boto3 clients made on first use, from ``factory(service)`` or from the settings."""

    def __init__(self, settings: Settings, factory: ClientFactory | None = None) -> None:
        self._factory = factory or (lambda service: client(settings, service))
        self._cache: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = self._factory(service)
        return self._cache[service]


def account_id(clients: Clients) -> str:
    return clients("sts").get_caller_identity()["Account"]


def invoke_url(settings: Settings, api_id: str, stage: str = STAGE, path: str = "") -> str:
    """The URL a client calls for ``path`` of a deployed REST API stage, on either target."""
    path = path.lstrip("/")
    if settings.target == "aws":
        return f"https://{api_id}.execute-api.{settings.region}.amazonaws.com/{stage}/{path}"
    if not settings.endpoint_url:
        raise ValueError("the local target needs settings.endpoint_url to compute invoke URLs")
    return f"{settings.endpoint_url.rstrip('/')}/restapis/{api_id}/{stage}/_user_request_/{path}"
