"""The typed record of a deploy's outputs, and its JSON file (the format every reader relies on).

Layout ``OUTPUTS_SCHEMA`` (one field of :class:`DeployOutputs` per key)::

    schema, stack, target, region, account_id, endpoint_url, deployed_at,
    bucket, bucket_tls_only, table, changes {created|updated|unchanged|deleted: n},
    functions {<name>: {function_name, arn, role_arn, code_sha256, packaging,
                        code_bytes, memory_mb, timeout_s, architecture, log_group,
                        reserved_concurrency (int or null), invoke_arn (the alias ARN where
                        provisioned_concurrency (int or null) is set, else arn), version}},
    state_machine {name, arn, type, role_arn, log_group},
    api {id, name, stage, role_arn, base_url, endpoints {ingest, classify},
         api_key_id, api_key, usage_plan_id, throttle {rate, burst}}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from swlab.settings import Settings

OUTPUTS_SCHEMA = "swlab.deploy.outputs/1"


@dataclass(frozen=True)
class DeployOutputs:
    """What a deploy made: names, ARNs, endpoints, API key. ``functions``, ``state_machine``, ``api`` and
    ``changes`` are plain dicts with the keys listed in the module's docstring (``outputs.api["url"]``)."""

    schema: str
    stack: str
    target: str
    region: str
    account_id: str
    endpoint_url: str | None
    deployed_at: str
    bucket: str
    bucket_tls_only: bool
    table: str
    functions: dict[str, dict[str, Any]]
    state_machine: dict[str, Any]
    api: dict[str, Any]
    changes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeployOutputs:
        """The record of an outputs document; refuses another schema or missing/unknown keys."""
        if data.get("schema") != OUTPUTS_SCHEMA:
            raise ValueError(f"outputs schema {data.get('schema')!r} is not {OUTPUTS_SCHEMA!r}")
        names = {f.name for f in fields(cls)}
        if set(data) != names:
            raise ValueError(
                f"outputs keys differ from {OUTPUTS_SCHEMA}: missing {sorted(names - set(data))}, "
                f"unknown {sorted(set(data) - names)}"
            )
        return cls(**data)


def default_outputs_path(settings: Settings) -> Path:
    return Path(settings.runs_dir) / "deploy" / f"{settings.stack}-{settings.target}.json"


def write_outputs(outputs: DeployOutputs, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(outputs.to_dict(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def load_outputs(path: str | Path) -> DeployOutputs:
    """The outputs a deploy recorded; refuses files of another schema."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no deployment outputs at {path}: deploy the stack first (scripts/deploy)") from None
    try:
        return DeployOutputs.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
