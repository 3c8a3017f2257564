"""Resource names and tags of a stack, and the URL its API answers on.

Every resource of a stack is named ``<stack>-...`` and tagged
``{"swlab:stack": <stack>}``; names are computed here and nowhere else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping

from swlab.settings import Settings

TAG_KEY = "swlab:stack"
STAGE = "lab"


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


def is_ours(tags: Mapping[str, str] | None, stack: str) -> bool:
    """True if ``tags`` carry this stack's tag."""
    return (tags or {}).get(TAG_KEY) == stack


def invoke_url(settings: Settings, api_id: str, stage: str = STAGE, path: str = "") -> str:
    """The URL a client calls for ``path`` of a deployed REST API stage, on either target."""
    path = path.lstrip("/")
    if settings.target == "aws":
        return f"https://{api_id}.execute-api.{settings.region}.amazonaws.com/{stage}/{path}"
    if not settings.endpoint_url:
        raise ValueError("the local target needs settings.endpoint_url to compute invoke URLs")
    return f"{settings.endpoint_url.rstrip('/')}/restapis/{api_id}/{stage}/_user_request_/{path}"
